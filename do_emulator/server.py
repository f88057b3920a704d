"""The HTTP side of the emulator: DigitalOcean API v2 routes over :class:`~.state.State` (stdlib only).

Cross-cutting behaviour, as DigitalOcean does it:

* ``Authorization: Bearer <token>`` on every ``/v2`` request, else 401 ``unauthorized``;
* error bodies ``{"id", "message", "request_id"}`` and an ``x-request-id`` header on every answer;
* ``ratelimit-limit`` / ``ratelimit-remaining`` / ``ratelimit-reset`` on every answer, from a real
  per-token limiter (requests per minute); over it: 429 ``too_many_requests`` with ``Retry-After``;
* lists are paginated (``page``, ``per_page`` up to 200) with absolute ``links.pages`` URLs.

Paths are taken from their ``/v2/`` on, so an ``api_endpoint`` with a path prefix works too, and a
request line without the leading slash (``GET v2/droplets``) is read as ``/v2/droplets``.

Outside ``/v2``, for tests and only for loopback clients, without auth: ``/_emulator/faults``
(inject error answers), ``/_emulator/state``, ``/_emulator/requests`` and ``/_emulator/jobs``.

Here: :class:`Emulator` (life cycle, the route table, materialization, control endpoints).
``protocol.py`` has the request, reply, pagination, fault and rate-limit plumbing, ``handler.py``
the stdlib HTTP request handler, ``jobs.py`` the background work queue.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from do_emulator import catalogue
from do_emulator.handler import RequestHandler, Server6
from do_emulator.jobs import Jobs
from do_emulator.protocol import (
    DEFAULT_RATE_LIMIT,
    SEG,
    Fault,
    Handler,
    RateLimiter,
    Reply,
    Request,
    empty,
    paginate,
    parse_fault,
)
from do_emulator.state import ApiError, Json, State, invalid, not_found, public

if TYPE_CHECKING:
    from do_emulator.materialize import Materializer

log = logging.getLogger("do_emulator")

#: Requests kept for ``GET /_emulator/requests``.
REQUEST_LOG_MAX = 100_000


class Emulator:
    """The emulator: an HTTP server in a background thread over one :class:`State`.

    Args:
        tokens: the API tokens that authenticate.
        materializer: builds real local droplets (``materialize.Materializer``); None for API only.
        state_file: JSON file the state is loaded from and saved to after every change.
        host, port: where to listen (port 0: any free port).
        droplet_limit: the account's droplet limit.
        rate_limit: requests per minute and token.
    """

    def __init__(self, tokens: list[str], materializer: Materializer | None = None,
                 state_file: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 droplet_limit: int = 25, rate_limit: int = DEFAULT_RATE_LIMIT) -> None:
        if not tokens:
            raise ValueError("at least one token is needed")
        self.tokens = set(tokens)
        self.materializer = materializer
        self.state_file = state_file
        self.host, self.port = host, port
        auto = materializer is None
        self.state = (State.load(state_file, droplet_limit, auto) if state_file
                      else State(droplet_limit=droplet_limit, auto_activate=auto))
        self.lock = threading.RLock()
        self.limiter = RateLimiter(rate_limit)
        self.faults: list[Fault] = []
        self.requests: list[Json] = []
        self.jobs = Jobs()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._build_routes()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> str:
        """Listen and serve in a background thread; returns the base URL ``http://host:port``."""
        emulator = self

        class _Handler(RequestHandler):
            pass

        _Handler.emulator = emulator
        server_class = Server6 if ":" in self.host else ThreadingHTTPServer
        self._httpd = server_class((self.host, self.port), _Handler)
        self._httpd.daemon_threads = True
        port = self._httpd.server_address[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}"
        if self.materializer is not None:
            self._reconcile()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="emulator-http", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self.lock:
            self._save()

    def _save(self) -> None:
        if self.state_file is not None and self.state.dirty:
            self.state.save(self.state_file)

    # -- dispatch --------------------------------------------------------------------------------
    def _build_routes(self) -> None:
        def add(method: str, pattern: str, handler: Handler) -> None:
            self.routes.append((method, re.compile(f"^/v2/{pattern}$"), handler))

        add("GET", "account", lambda r: (200, {"account": self.state.account()}))
        add("GET", "sizes", lambda r: paginate(r, "sizes", list(catalogue.SIZES.values())))
        add("GET", "regions", lambda r: paginate(r, "regions", list(catalogue.REGIONS.values())))
        add("GET", "images", lambda r: paginate(r, "images", list(catalogue.IMAGES.values())))
        add("GET", f"images/{SEG}", self._get_image)
        add("GET", "actions", lambda r: paginate(r, "actions", [public(a) for a in self.state.actions.values()]))
        add("GET", r"actions/(\d+)", lambda r: (200, {"action": public(self.state.get_action(r.params[0]))}))
        # droplets
        add("POST", "droplets", self._create_droplet)
        add("GET", "droplets", self._list_droplets)
        add("DELETE", "droplets", self._delete_droplets_by_tag)
        add("GET", r"droplets/(\d+)", lambda r: (200, {"droplet": public(self.state.read_droplet(r.params[0]))}))
        add("DELETE", r"droplets/(\d+)", self._delete_droplet)
        add("POST", r"droplets/(\d+)/actions", self._droplet_action)
        add("GET", r"droplets/(\d+)/actions", self._list_droplet_actions)
        add("GET", r"droplets/(\d+)/actions/(\d+)", self._get_droplet_action)
        add("GET", r"droplets/(\d+)/firewalls", lambda r: paginate(
            r, "firewalls", [public(f) for f in self.state.firewalls_of(int(r.params[0]))]))
        add("GET", r"droplets/(\d+)/(snapshots|backups|neighbors)", self._droplet_empty_list)
        # volumes
        add("POST", "volumes", self._create_volume)
        add("GET", "volumes", lambda r: paginate(r, "volumes", [public(v) for v in self.state.list_volumes(
            r.query.get("name", ""), r.query.get("region", ""))]))
        add("DELETE", "volumes", self._delete_volume_by_name)
        add("POST", "volumes/actions", self._volume_action_by_name)
        add("GET", f"volumes/{SEG}", lambda r: (200, {"volume": public(self.state.volume(r.params[0]))}))
        add("DELETE", f"volumes/{SEG}", self._delete_volume)
        add("POST", f"volumes/{SEG}/actions", self._volume_action)
        add("GET", f"volumes/{SEG}/actions", self._list_volume_actions)
        add("GET", rf"volumes/{SEG}/actions/(\d+)", self._get_volume_action)
        add("GET", f"volumes/{SEG}/snapshots", self._volume_snapshots)
        # VPCs
        add("POST", "vpcs", self._create_vpc)
        add("GET", "vpcs", lambda r: paginate(r, "vpcs", [public(v) for v in self.state.vpcs.values()]))
        add("GET", f"vpcs/{SEG}", lambda r: (200, {"vpc": public(self.state.vpc(r.params[0]))}))
        add("PUT", f"vpcs/{SEG}", lambda r: (200, {"vpc": public(
            self.state.update_vpc(r.params[0], r.json(), partial=False))}))
        add("PATCH", f"vpcs/{SEG}", lambda r: (200, {"vpc": public(
            self.state.update_vpc(r.params[0], r.json(), partial=True))}))
        add("DELETE", f"vpcs/{SEG}", self._delete_vpc)
        add("GET", f"vpcs/{SEG}/members", lambda r: paginate(r, "members", self.state.vpc_members(r.params[0])))
        # firewalls
        add("POST", "firewalls", lambda r: (202, {"firewall": public(self.state.create_firewall(r.json()))}))
        add("GET", "firewalls", lambda r: paginate(r, "firewalls", [public(f) for f in self.state.firewalls.values()]))
        add("GET", f"firewalls/{SEG}", lambda r: (200, {"firewall": public(self.state.firewall(r.params[0]))}))
        add("PUT", f"firewalls/{SEG}", lambda r: (200, {"firewall": public(
            self.state.update_firewall(r.params[0], r.json()))}))
        add("DELETE", f"firewalls/{SEG}", empty(lambda r: self.state.delete_firewall(r.params[0])))
        add("POST", f"firewalls/{SEG}/droplets", empty(lambda r: self.state.firewall_droplets(
            r.params[0], r.json(), add=True)))
        add("DELETE", f"firewalls/{SEG}/droplets", empty(lambda r: self.state.firewall_droplets(
            r.params[0], r.json(), add=False)))
        add("POST", f"firewalls/{SEG}/tags", empty(lambda r: self.state.firewall_tags(
            r.params[0], r.json(), add=True)))
        add("DELETE", f"firewalls/{SEG}/tags", empty(lambda r: self.state.firewall_tags(
            r.params[0], r.json(), add=False)))
        add("POST", f"firewalls/{SEG}/rules", empty(lambda r: self._firewall_rules(r, add=True)))
        add("DELETE", f"firewalls/{SEG}/rules", empty(lambda r: self._firewall_rules(r, add=False)))
        # SSH keys
        add("POST", "account/keys", lambda r: (201, {"ssh_key": public(self.state.create_key(r.json()))}))
        add("GET", "account/keys", lambda r: paginate(r, "ssh_keys", [public(k) for k in self.state.keys.values()]))
        add("GET", f"account/keys/{SEG}", lambda r: (200, {"ssh_key": public(self.state.key(r.params[0]))}))
        add("PUT", f"account/keys/{SEG}", lambda r: (200, {"ssh_key": public(
            self.state.update_key(r.params[0], r.json()))}))
        add("DELETE", f"account/keys/{SEG}", empty(lambda r: self.state.delete_key(r.params[0])))
        # tags
        add("POST", "tags", lambda r: (201, {"tag": self.state.create_tag(r.json())}))
        add("GET", "tags", lambda r: paginate(r, "tags", self.state.list_tags()))
        add("GET", f"tags/{SEG}", lambda r: (200, {"tag": self.state.tag(r.params[0])}))
        add("DELETE", f"tags/{SEG}", empty(lambda r: self.state.delete_tag(r.params[0])))
        add("POST", f"tags/{SEG}/resources", empty(lambda r: self.state.tag_resources(r.params[0], r.json())))
        add("DELETE", f"tags/{SEG}/resources", empty(lambda r: self.state.untag_resources(r.params[0], r.json())))
        # projects
        add("POST", "projects", lambda r: (201, {"project": public(self.state.create_project(r.json()))}))
        add("GET", "projects", lambda r: paginate(r, "projects", [public(p) for p in self.state.projects.values()]))
        add("GET", f"projects/{SEG}", lambda r: (200, {"project": public(self.state.project(r.params[0]))}))
        add("PATCH", f"projects/{SEG}", lambda r: (200, {"project": public(
            self.state.update_project(r.params[0], r.json(), partial=True))}))
        add("PUT", f"projects/{SEG}", lambda r: (200, {"project": public(
            self.state.update_project(r.params[0], r.json(), partial=False))}))
        add("DELETE", f"projects/{SEG}", empty(lambda r: self.state.delete_project(r.params[0])))
        add("GET", f"projects/{SEG}/resources", self._list_project_resources)
        add("POST", f"projects/{SEG}/resources", self._assign_project_resources)

    def dispatch(self, req: Request) -> Reply:
        allowed = []
        for method, pattern, handler in self.routes:
            match = pattern.match(req.path)
            if match is None:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            req.params = match.groups()
            with self.lock:
                try:
                    return handler(req)
                finally:
                    self._save()
        if allowed:
            raise ApiError(405, f"{req.method} is not allowed here; use {', '.join(sorted(set(allowed)))}")
        raise not_found()

    # -- handlers: images ------------------------------------------------------------------------
    def _get_image(self, req: Request) -> Reply:
        ref = req.params[0]
        for image in catalogue.IMAGES.values():
            if ref in (image["slug"], str(image["id"])):
                return 200, {"image": image}
        raise not_found()

    # -- handlers: droplets ----------------------------------------------------------------------
    def _busy_networks(self) -> list[str]:
        return self.materializer.busy_networks() if self.materializer is not None else []

    def _create_droplet(self, req: Request) -> Reply:
        body = req.json()
        avoid = self._busy_networks()
        plans = self.state.check_droplet_create(body, avoid)
        if self.materializer is not None:
            self.materializer.check_create(
                [catalogue.SIZES[p["size"]]["memory"] for p in plans], self.state.memory_reserved_mb(),
                [p["image"]["slug"] for p in plans])
        droplets = [self.state.create_droplet(plan, avoid) for plan in plans]
        if self.materializer is not None:
            for droplet in droplets:
                self._materialize_droplet(droplet)
        links = {"actions": [{"id": d["_create_action"], "rel": "create",
                              "href": f"{req.base}/v2/actions/{d['_create_action']}"} for d in droplets]}
        if "names" in body:
            return 202, {"droplets": [public(d) for d in droplets], "links": links}
        return 202, {"droplet": public(droplets[0]), "links": links}

    def _list_droplets(self, req: Request) -> Reply:
        found = self.state.list_droplets(req.query.get("tag_name", ""), req.query.get("name", ""))
        return paginate(req, "droplets", [public(d) for d in found])

    def _delete_droplet(self, req: Request) -> Reply:
        self._remove_droplet(self.state.droplet(req.params[0]))
        return 204, None

    def _delete_droplets_by_tag(self, req: Request) -> Reply:
        tag = req.query.get("tag_name")
        if not tag:
            raise invalid("tag_name is required to delete Droplets in bulk")
        for droplet in self.state.list_droplets(tag=tag):
            self._remove_droplet(droplet)
        return 204, None

    def _remove_droplet(self, droplet: Json) -> None:
        volume_ids = list(droplet["volume_ids"])
        self.state.delete_droplet(str(droplet["id"]))
        if self.materializer is not None:
            materializer, droplet_id = self.materializer, droplet["id"]
            keys = (f"droplet:{droplet_id}", *(f"volume:{v}" for v in volume_ids))
            self.jobs.submit(keys, lambda: materializer.delete_droplet(droplet_id), name=f"delete-{droplet_id}")

    def _droplet_action(self, req: Request) -> Reply:
        body = req.json()
        if self.materializer is not None and body.get("type") == "resize" and body.get("size") in catalogue.SIZES:
            grows = catalogue.SIZES[body["size"]]["memory"] - self.state.droplet(req.params[0])["memory"]
            if grows > 0:
                self.materializer.check_create([grows], self.state.memory_reserved_mb(), [])
        action, droplet = self.state.droplet_action(req.params[0], body, self.materializer is not None)
        if self.materializer is not None and action["completed_at"] is None:
            self._materialize_action(action, droplet)
        return 201, {"action": public(action)}

    def _list_droplet_actions(self, req: Request) -> Reply:
        droplet = self.state.droplet(req.params[0])
        owner = f"droplet:{droplet['id']}"
        found = [public(a) for a in self.state.actions.values()
                 if a.get("_owner") == owner or a.get("_droplet") == droplet["id"]]
        return paginate(req, "actions", found)

    def _get_droplet_action(self, req: Request) -> Reply:
        droplet = self.state.droplet(req.params[0])
        action = self.state.get_action(req.params[1])
        if action.get("_owner") != f"droplet:{droplet['id']}" and action.get("_droplet") != droplet["id"]:
            raise not_found()
        return 200, {"action": public(action)}

    # -- handlers: volumes -----------------------------------------------------------------------
    def _create_volume(self, req: Request) -> Reply:
        volume = self.state.create_volume(req.json())
        if self.materializer is not None:
            materializer, snapshot = self.materializer, public(volume)
            self.jobs.submit((f"volume:{volume['id']}",), lambda: materializer.create_volume(snapshot),
                             name=f"volume-{volume['name']}")
        return 201, {"volume": public(volume)}

    def _delete_volume(self, req: Request) -> Reply:
        self._remove_volume(self.state.volume(req.params[0]))
        return 204, None

    def _delete_volume_by_name(self, req: Request) -> Reply:
        name, region = req.query.get("name", ""), req.query.get("region", "")
        if not name or not region:
            raise invalid("name and region are required to delete a volume by name")
        self._remove_volume(self.state.find_volume(name, region))
        return 204, None

    def _remove_volume(self, volume: Json) -> None:
        self.state.delete_volume(volume["id"])
        if self.materializer is not None:
            materializer, volume_id = self.materializer, volume["id"]
            self.jobs.submit((f"volume:{volume_id}",), lambda: materializer.delete_volume(volume_id),
                             name=f"delete-volume-{volume['name']}")

    def _volume_action(self, req: Request) -> Reply:
        return self._run_volume_action(self.state.volume(req.params[0]), req.json())

    def _volume_action_by_name(self, req: Request) -> Reply:
        body = req.json()
        name, region = body.get("volume_name"), body.get("region")
        if not isinstance(name, str) or not isinstance(region, str):
            raise invalid("volume_name and region are required")
        return self._run_volume_action(self.state.find_volume(name, region), body)

    def _run_volume_action(self, volume: Json, body: Json) -> Reply:
        materialized = self.materializer is not None
        action, droplet = self.state.volume_action(volume, body, materialized)
        if self.materializer is not None:
            self._materialize_volume_action(action, public(volume), droplet)
        return 202, {"action": public(action)}

    def _list_volume_actions(self, req: Request) -> Reply:
        volume = self.state.volume(req.params[0])
        return paginate(req, "actions", [public(a) for a in self.state.actions_of(f"volume:{volume['id']}")])

    def _get_volume_action(self, req: Request) -> Reply:
        volume = self.state.volume(req.params[0])
        action = self.state.get_action(req.params[1])
        if action.get("_owner") != f"volume:{volume['id']}":
            raise not_found()
        return 200, {"action": public(action)}

    # -- handlers: VPCs, firewalls, projects -----------------------------------------------------
    def _create_vpc(self, req: Request) -> Reply:
        return 201, {"vpc": public(self.state.create_vpc(req.json(), self._busy_networks()))}

    def _delete_vpc(self, req: Request) -> Reply:
        vpc = self.state.delete_vpc(req.params[0])
        if self.materializer is not None:
            materializer, vpc_id = self.materializer, vpc["id"]
            # After every job already queued: the members' containers must be gone first.
            self.jobs.submit((f"vpc:{vpc_id}",), lambda: materializer.delete_network(vpc_id), after_all=True,
                             name=f"delete-vpc-{vpc['name']}")
        return 204, None

    def _droplet_empty_list(self, req: Request) -> Reply:
        self.state.droplet(req.params[0])
        return paginate(req, "droplets" if req.params[1] == "neighbors" else req.params[1], [])

    def _volume_snapshots(self, req: Request) -> Reply:
        self.state.volume(req.params[0])
        return paginate(req, "snapshots", [])

    def _firewall_rules(self, req: Request, add: bool) -> None:
        firewall = self.state.firewall(req.params[0])
        body = req.json()
        rules = {
            "inbound_rules": self.state._check_rules(body.get("inbound_rules"), "inbound_rules", "sources"),
            "outbound_rules": self.state._check_rules(body.get("outbound_rules"), "outbound_rules", "destinations"),
        }
        for key, items in rules.items():
            for rule in items:
                if add and rule not in firewall[key]:
                    firewall[key].append(rule)
                elif not add and rule in firewall[key]:
                    firewall[key].remove(rule)
        self.state.dirty = True

    def _list_project_resources(self, req: Request) -> Reply:
        project = self.state.project(req.params[0])
        items = [{**r, "links": {"self": self._urn_link(req.base, r["urn"])}}
                 for r in self.state.project_resources(project["id"])]
        return paginate(req, "resources", items)

    def _assign_project_resources(self, req: Request) -> Reply:
        project = self.state.project(req.params[0])
        assigned = self.state.assign(project["id"], req.json())
        items = [{**r, "links": {"self": self._urn_link(req.base, r["urn"])}} for r in assigned]
        return 200, {"resources": items, "links": {}, "meta": {"total": len(items)}}

    @staticmethod
    def _urn_link(base: str, urn: str) -> str:
        _, kind, rid = urn.split(":", 2)
        return f"{base}/v2/{kind}s/{rid}"

    # -- materialization -------------------------------------------------------------------------
    def _in_background(self, keys: tuple[str, ...], work: Callable[[], None],
                       done: Callable[[bool, str], None], name: str) -> None:
        """Run ``work`` off the lock, then ``done(ok, error)`` under it, then save."""

        def job() -> None:
            try:
                work()
                ok, error = True, ""
            except Exception as exc:
                log.exception("%s failed", name)
                ok, error = False, f"{exc.__class__.__name__}: {exc}"
            with self.lock:
                done(ok, error)
                self._save()

        self.jobs.submit(keys, job, name=name)

    def _droplet_spec(self, droplet: Json) -> Json:
        """What the materializer needs of a droplet, copied while the lock is held."""
        vpc = self.state.vpcs[droplet["vpc_uuid"]]
        return {
            "id": droplet["id"], "name": droplet["name"], "memory": droplet["memory"], "vcpus": droplet["vcpus"],
            "address": droplet["_ipv4"], "user_data": droplet["_user_data"], "ssh_keys": list(droplet["_ssh_keys"]),
            "vpc": public(vpc),
            "volumes": [public(self.state.volumes[v]) for v in droplet["volume_ids"] if v in self.state.volumes],
        }

    def _materialize_droplet(self, droplet: Json) -> None:
        assert self.materializer is not None
        materializer, spec = self.materializer, self._droplet_spec(droplet)
        keys = (f"droplet:{droplet['id']}", *(f"volume:{v['id']}" for v in spec["volumes"]))
        started = time.monotonic()

        def done(ok: bool, error: str) -> None:
            self.state.finish_droplet(spec["id"], ok, error)
            log.info("droplet %s (%s) %s after %.1fs", spec["id"], spec["name"], "active" if ok else "errored",
                     time.monotonic() - started)

        self._in_background(keys, lambda: materializer.create_droplet(spec), done, name=f"create-{droplet['name']}")

    def _materialize_action(self, action: Json, droplet: Json) -> None:
        assert self.materializer is not None
        materializer, spec, kind = self.materializer, self._droplet_spec(droplet), action["type"]
        work: Callable[[], None]
        status = droplet["status"]
        if kind in ("power_off", "shutdown"):
            work, status = (lambda: materializer.stop(spec["id"], graceful=kind == "shutdown")), "off"
        elif kind == "power_on":
            work, status = (lambda: materializer.start(spec)), "active"
        elif kind in ("reboot", "power_cycle"):
            work, status = (lambda: materializer.restart(spec)), "active"
        else:  # resize
            work = lambda: materializer.resize(spec)  # noqa: E731

        def done(ok: bool, error: str) -> None:
            if ok:
                self.state.set_droplet_status(spec["id"], status)
            self.state.finish_action(action["id"], ok)

        self._in_background((f"droplet:{spec['id']}",), work, done, name=f"{kind}-{spec['name']}")

    def _materialize_volume_action(self, action: Json, volume: Json, droplet: Json | None) -> None:
        assert self.materializer is not None
        materializer, kind = self.materializer, action["type"]
        keys: tuple[str, ...] = (f"volume:{volume['id']}",)
        work: Callable[[], None]
        if kind == "resize_volume":
            work = lambda: materializer.resize_volume(volume)  # noqa: E731
        elif droplet is None or action["completed_at"] is not None:
            return  # the droplet is off: its nodes are made when it starts
        else:
            keys += (f"droplet:{droplet['id']}",)
            droplet_id = droplet["id"]
            if kind == "attach_volume":
                work = lambda: materializer.attach(volume, droplet_id)  # noqa: E731
            else:
                work = lambda: materializer.detach(volume, droplet_id)  # noqa: E731
        self._in_background(keys, work, lambda ok, _error: self.state.finish_action(action["id"], ok),
                            name=f"{kind}-{volume['name']}")

    def _reconcile(self) -> None:
        """After a restart: rebuild what the state says exists (containers, loop devices)."""
        assert self.materializer is not None
        with self.lock:
            volumes = [public(v) for v in self.state.volumes.values()]
            droplets = [(d["status"], self._droplet_spec(d)) for d in self.state.droplets.values()]
        materializer = self.materializer
        for volume in volumes:
            self.jobs.submit((f"volume:{volume['id']}",), partial(materializer.create_volume, volume),
                             name=f"volume-{volume['name']}")
        for status, spec in droplets:
            if status == "new":
                self._in_background((f"droplet:{spec['id']}",), partial(materializer.create_droplet, spec),
                                    partial(self._finish_droplet, spec["id"]), name=f"create-{spec['name']}")
            elif status == "active":
                self.jobs.submit((f"droplet:{spec['id']}",), partial(materializer.ensure_running, spec),
                                 name=f"resume-{spec['name']}")

    def _finish_droplet(self, droplet_id: int, ok: bool, error: str) -> None:
        self.state.finish_droplet(droplet_id, ok, error)

    # -- control endpoints -----------------------------------------------------------------------
    def control(self, req: Request) -> Reply:
        route = req.path.removeprefix("/_emulator").strip("/")
        handlers: dict[tuple[str, str], Handler] = {
            ("POST", "faults"): self._add_faults,
            ("DELETE", "faults"): empty(lambda r: self.faults.clear()),
            ("GET", "faults"): lambda r: (200, {"faults": [f.describe() for f in self.faults]}),
            ("GET", "state"): lambda r: (200, self.state.view()),
            ("GET", "requests"): lambda r: (200, list(self.requests)),
            ("DELETE", "requests"): empty(lambda r: self.requests.clear()),
        }
        if (req.method, route) == ("GET", "jobs"):
            wait = float(req.query.get("wait") or 0)
            idle = self.jobs.wait_idle(wait) if wait else self.jobs.pending() == 0
            return 200, {"pending": self.jobs.pending(), "idle": idle}
        handler = handlers.get((req.method, route))
        if handler is None:
            raise not_found()
        with self.lock:
            return handler(req)

    def _add_faults(self, req: Request) -> Reply:
        items = req.body if isinstance(req.body, list) else [req.body]
        faults = [parse_fault(item) for item in items]
        self.faults.extend(faults)
        return 201, {"faults": [f.describe() for f in faults]}

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.method in (None, method)) and fault.path.search(path):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def record(self, method: str, path: str, query: str, status: int) -> None:
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "status": status,
                                  "time": round(time.time(), 3)})
            if len(self.requests) > REQUEST_LOG_MAX:
                del self.requests[: len(self.requests) - REQUEST_LOG_MAX]

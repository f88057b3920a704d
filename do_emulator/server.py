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
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from do_emulator import catalogue
from do_emulator.state import (
    ApiError,
    Json,
    State,
    invalid,
    not_found,
    public,
)

if TYPE_CHECKING:
    from do_emulator.materialize import Materializer

log = logging.getLogger("do_emulator")

DEFAULT_RATE_LIMIT = 5000
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20
REQUEST_LOG_MAX = 100_000


# --------------------------------------------------------------------------------------------------
# Rate limiting, faults, background jobs
# --------------------------------------------------------------------------------------------------


class RateLimiter:
    """Fixed one-minute windows per token: ``limit`` requests, then 429 until the window ends."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, count: bool = True) -> tuple[bool, int, float]:
        """Count one request; returns (allowed, remaining, reset as epoch seconds)."""
        with self._lock:
            now = time.time()
            start, used = self._windows.get(key, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            allowed = used < self.limit
            if allowed and count:
                used += 1
            self._windows[key] = (start, used)
            return allowed, max(0, self.limit - used), start + self.window


@dataclass
class Fault:
    path: re.Pattern[str]
    status: int
    method: str | None = None
    times: int | None = 1
    retry_after: int | None = None
    message: str | None = None
    error_id: str | None = None
    delay: float = 0.0
    hits: int = 0

    def describe(self) -> Json:
        return {"method": self.method, "path": self.path.pattern, "status": self.status, "times": self.times,
                "retry_after": self.retry_after, "message": self.message, "id": self.error_id,
                "delay": self.delay, "hits": self.hits}


def parse_fault(body: Any) -> Fault:
    if not isinstance(body, dict):
        raise ApiError(400, "a fault is an object with at least path and status")
    try:
        path = re.compile(str(body["path"]))
        status = int(body["status"])
    except (KeyError, ValueError, re.error) as exc:
        raise ApiError(400, f"a fault needs a valid path regex and status: {exc}") from None
    if not 100 <= status <= 599:
        raise ApiError(400, "status must be an HTTP status")
    times = body.get("times", 1)
    retry = body.get("retry_after")
    return Fault(
        path=path, status=status, method=str(body["method"]).upper() if body.get("method") else None,
        times=None if times is None else int(times), retry_after=None if retry is None else int(retry),
        message=body.get("message"), error_id=body.get("id"), delay=float(body.get("delay") or 0),
    )


class Jobs:
    """Background work, ordered per key: a job runs after every earlier job that shares a key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, threading.Event] = {}
        self._pending: set[threading.Event] = set()

    def submit(self, keys: tuple[str, ...], fn: Callable[[], None], after_all: bool = False,
               name: str = "job") -> None:
        done = threading.Event()
        with self._lock:
            waits = list(self._pending) if after_all else [self._last[k] for k in keys if k in self._last]
            for key in keys:
                self._last[key] = done
            self._pending.add(done)

        def run() -> None:
            for event in waits:
                event.wait()
            try:
                fn()
            except Exception:
                log.exception("background job %s failed", name)
            finally:
                done.set()
                with self._lock:
                    self._pending.discard(done)
                    for key in [k for k, v in self._last.items() if v is done]:
                        del self._last[key]

        threading.Thread(target=run, name=f"emulator-{name}", daemon=True).start()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                events = list(self._pending)
            if not events:
                return True
            events[0].wait(max(0.0, deadline - time.monotonic()))
        return self.pending() == 0


# --------------------------------------------------------------------------------------------------
# Requests and routes
# --------------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    base: str  # scheme://host[:port] as the client addressed us
    params: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Json:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise invalid("the request body must be a JSON object")
        return self.body


Reply = tuple[int, Json | list[Json] | None]
Handler = Callable[[Request], Reply]


def paginate(req: Request, key: str, items: list[Json], extra: Json | None = None) -> Reply:
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(req.query.get("per_page") or DEFAULT_PER_PAGE)))
        page = max(1, int(req.query.get("page") or 1))
    except ValueError:
        raise invalid("page and per_page must be integers") from None
    total = len(items)
    last = max(1, math.ceil(total / per_page))
    others = {k: v for k, v in req.query.items() if k not in ("page", "per_page")}

    def url(n: int) -> str:
        return f"{req.base}{req.path}?{urlencode({**others, 'page': n, 'per_page': per_page})}"

    pages: Json = {}
    if page > 1:
        pages.update(first=url(1), prev=url(min(page - 1, last)))
    if page < last:
        pages.update(next=url(page + 1), last=url(last))
    chunk = items[(page - 1) * per_page: page * per_page]
    body: Json = {key: chunk, "links": {"pages": pages} if pages else {}, "meta": {"total": total}}
    body.update(extra or {})
    return 200, body


_SEG = r"([^/]+)"


def _empty(call: Callable[[Request], object]) -> Handler:
    """A handler answering 204 with no body after ``call``."""

    def handler(req: Request) -> Reply:
        call(req)
        return 204, None

    return handler


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

        class _Handler(_RequestHandler):
            pass

        _Handler.emulator = emulator
        server_class = _Server6 if ":" in self.host else ThreadingHTTPServer
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
        add("GET", f"images/{_SEG}", self._get_image)
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
        add("GET", f"volumes/{_SEG}", lambda r: (200, {"volume": public(self.state.volume(r.params[0]))}))
        add("DELETE", f"volumes/{_SEG}", self._delete_volume)
        add("POST", f"volumes/{_SEG}/actions", self._volume_action)
        add("GET", f"volumes/{_SEG}/actions", self._list_volume_actions)
        add("GET", rf"volumes/{_SEG}/actions/(\d+)", self._get_volume_action)
        add("GET", f"volumes/{_SEG}/snapshots", self._volume_snapshots)
        # VPCs
        add("POST", "vpcs", self._create_vpc)
        add("GET", "vpcs", lambda r: paginate(r, "vpcs", [public(v) for v in self.state.vpcs.values()]))
        add("GET", f"vpcs/{_SEG}", lambda r: (200, {"vpc": public(self.state.vpc(r.params[0]))}))
        add("PUT", f"vpcs/{_SEG}", lambda r: (200, {"vpc": public(
            self.state.update_vpc(r.params[0], r.json(), partial=False))}))
        add("PATCH", f"vpcs/{_SEG}", lambda r: (200, {"vpc": public(
            self.state.update_vpc(r.params[0], r.json(), partial=True))}))
        add("DELETE", f"vpcs/{_SEG}", self._delete_vpc)
        add("GET", f"vpcs/{_SEG}/members", lambda r: paginate(r, "members", self.state.vpc_members(r.params[0])))
        # firewalls
        add("POST", "firewalls", lambda r: (202, {"firewall": public(self.state.create_firewall(r.json()))}))
        add("GET", "firewalls", lambda r: paginate(r, "firewalls", [public(f) for f in self.state.firewalls.values()]))
        add("GET", f"firewalls/{_SEG}", lambda r: (200, {"firewall": public(self.state.firewall(r.params[0]))}))
        add("PUT", f"firewalls/{_SEG}", lambda r: (200, {"firewall": public(
            self.state.update_firewall(r.params[0], r.json()))}))
        add("DELETE", f"firewalls/{_SEG}", _empty(lambda r: self.state.delete_firewall(r.params[0])))
        add("POST", f"firewalls/{_SEG}/droplets", _empty(lambda r: self.state.firewall_droplets(
            r.params[0], r.json(), add=True)))
        add("DELETE", f"firewalls/{_SEG}/droplets", _empty(lambda r: self.state.firewall_droplets(
            r.params[0], r.json(), add=False)))
        add("POST", f"firewalls/{_SEG}/tags", _empty(lambda r: self.state.firewall_tags(
            r.params[0], r.json(), add=True)))
        add("DELETE", f"firewalls/{_SEG}/tags", _empty(lambda r: self.state.firewall_tags(
            r.params[0], r.json(), add=False)))
        add("POST", f"firewalls/{_SEG}/rules", _empty(lambda r: self._firewall_rules(r, add=True)))
        add("DELETE", f"firewalls/{_SEG}/rules", _empty(lambda r: self._firewall_rules(r, add=False)))
        # SSH keys
        add("POST", "account/keys", lambda r: (201, {"ssh_key": public(self.state.create_key(r.json()))}))
        add("GET", "account/keys", lambda r: paginate(r, "ssh_keys", [public(k) for k in self.state.keys.values()]))
        add("GET", f"account/keys/{_SEG}", lambda r: (200, {"ssh_key": public(self.state.key(r.params[0]))}))
        add("PUT", f"account/keys/{_SEG}", lambda r: (200, {"ssh_key": public(
            self.state.update_key(r.params[0], r.json()))}))
        add("DELETE", f"account/keys/{_SEG}", _empty(lambda r: self.state.delete_key(r.params[0])))
        # tags
        add("POST", "tags", lambda r: (201, {"tag": self.state.create_tag(r.json())}))
        add("GET", "tags", lambda r: paginate(r, "tags", self.state.list_tags()))
        add("GET", f"tags/{_SEG}", lambda r: (200, {"tag": self.state.tag(r.params[0])}))
        add("DELETE", f"tags/{_SEG}", _empty(lambda r: self.state.delete_tag(r.params[0])))
        add("POST", f"tags/{_SEG}/resources", _empty(lambda r: self.state.tag_resources(r.params[0], r.json())))
        add("DELETE", f"tags/{_SEG}/resources", _empty(lambda r: self.state.untag_resources(r.params[0], r.json())))
        # projects
        add("POST", "projects", lambda r: (201, {"project": public(self.state.create_project(r.json()))}))
        add("GET", "projects", lambda r: paginate(r, "projects", [public(p) for p in self.state.projects.values()]))
        add("GET", f"projects/{_SEG}", lambda r: (200, {"project": public(self.state.project(r.params[0]))}))
        add("PATCH", f"projects/{_SEG}", lambda r: (200, {"project": public(
            self.state.update_project(r.params[0], r.json(), partial=True))}))
        add("PUT", f"projects/{_SEG}", lambda r: (200, {"project": public(
            self.state.update_project(r.params[0], r.json(), partial=False))}))
        add("DELETE", f"projects/{_SEG}", _empty(lambda r: self.state.delete_project(r.params[0])))
        add("GET", f"projects/{_SEG}/resources", self._list_project_resources)
        add("POST", f"projects/{_SEG}/resources", self._assign_project_resources)

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
            ("DELETE", "faults"): _empty(lambda r: self.faults.clear()),
            ("GET", "faults"): lambda r: (200, {"faults": [f.describe() for f in self.faults]}),
            ("GET", "state"): lambda r: (200, self.state.view()),
            ("GET", "requests"): lambda r: (200, list(self.requests)),
            ("DELETE", "requests"): _empty(lambda r: self.requests.clear()),
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


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _normalize(raw_path: str) -> str:
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    path = re.sub(r"/{2,}", "/", path)
    at = path.find("/v2/")
    if at > 0:
        path = path[at:]
    elif path.endswith("/v2") and at < 0:
        path = "/v2"
    return path.rstrip("/") or "/"


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class _RequestHandler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "do-emulator"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        emulator = self.emulator
        request_id = str(uuid.uuid4())
        raw = self._read_body()
        split = urlsplit(self.path if self.path.startswith("/") else "/" + self.path)
        path = _normalize(split.path)
        headers: dict[str, str] = {"x-request-id": request_id}
        try:
            status, payload = self._answer(path, split.query, raw, headers)
        except ApiError as exc:
            status = exc.status
            payload = {"id": exc.error_id, "message": exc.message, "request_id": request_id}
            headers.update(exc.headers)
        except Exception as exc:
            log.exception("%s %s failed", self.command, path)
            status = 500
            payload = {"id": "server_error", "message": f"emulator error: {exc.__class__.__name__}: {exc}",
                       "request_id": request_id}
        if "ratelimit-limit" not in headers:
            _, remaining, reset = emulator.limiter.hit("", count=False)
            headers.update({"ratelimit-limit": str(emulator.limiter.limit),
                            "ratelimit-remaining": str(remaining), "ratelimit-reset": str(int(reset))})
        # Logged before answering: a client that has its answer must find the request in the log.
        if not path.startswith("/_emulator"):
            emulator.record(self.command, path, split.query, status)
        self._send(status, payload, headers)

    def _answer(self, path: str, query: str, raw: bytes, headers: dict[str, str]) -> Reply:
        """Authenticate, rate-limit, inject faults, then route; raises ApiError for error answers."""
        emulator = self.emulator
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        host = self.headers.get("Host") or f"{emulator.host}:{emulator.port}"
        req = Request(self.command, path, dict(parse_qsl(query, keep_blank_values=True)), body, f"http://{host}",
                      headers={k.lower(): v for k, v in self.headers.items()})
        if path == "/_emulator" or path.startswith("/_emulator/"):
            if not _loopback(self.client_address[0]):
                raise not_found()
            return emulator.control(req)
        if path != "/v2" and not path.startswith("/v2/"):
            raise not_found()
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        allowed, remaining, reset = emulator.limiter.hit(token if token in emulator.tokens else "")
        headers.update({"ratelimit-limit": str(emulator.limiter.limit),
                        "ratelimit-remaining": str(remaining), "ratelimit-reset": str(int(reset))})
        if scheme.lower() != "bearer" or token not in emulator.tokens:
            raise ApiError(401, "Unable to authenticate you.")
        if not allowed:
            raise ApiError(429, "API rate limit exceeded.",
                           headers={"Retry-After": str(max(1, math.ceil(reset - time.time())))})
        fault = emulator.take_fault(self.command, path)
        if fault is not None:
            return self._fault(fault, headers)
        return emulator.dispatch(req)

    @staticmethod
    def _fault(fault: Fault, headers: dict[str, str]) -> Reply:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status == 429:
            headers["ratelimit-remaining"] = "0"
        if fault.status < 400:
            return fault.status, {}
        extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        raise ApiError(fault.status, fault.message or _default_message(fault.status), error_id=fault.error_id,
                       headers=extra)

    def _send(self, status: int, payload: Json | list[Json] | None, headers: dict[str, str]) -> None:
        data = b"" if status == 204 or payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)



for _verb in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
    setattr(_RequestHandler, f"do_{_verb}", _RequestHandler._handle)


def _default_message(status: int) -> str:
    return {
        429: "API rate limit exceeded.", 401: "Unable to authenticate you.", 404: "The resource you were accessing "
        "could not be found.", 500: "Server was unable to give you a response.",
        503: "Service is temporarily unavailable.", 422: "The request could not be processed.",
    }.get(status, "Injected fault.")

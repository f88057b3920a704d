"""The emulated DigitalOcean account: a pure in-memory model, saved as JSON.

Every public method takes and returns plain JSON-compatible data shaped like DigitalOcean's API v2
bodies, and raises :class:`ApiError` with DigitalOcean's status, error id and message wording where
the real API would refuse. Nothing here does I/O except :meth:`State.save` / :meth:`State.load`; the
HTTP layer (``server.py``) serialises calls with one lock and the materializer (``materialize.py``)
is told what to build by the server.

Records are kept in their API shape; keys starting with ``_`` are the emulator's own bookkeeping
(the droplet's user data, its resolved SSH keys, ...) and are stripped by :func:`public`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import ipaddress
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platform_ctl.infra.local import FIRST_HOST_OFFSET
from platform_ctl.spec import DO_REGIONS, DO_RESERVED_NETWORKS, SIZES, VPC_PREFIX_MAX, VPC_PREFIX_MIN

Json = dict[str, Any]

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

ERROR_IDS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 412: "precondition_failed", 422: "unprocessable_entity", 429: "too_many_requests",
    500: "server_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}  # fmt: skip
NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."
PENDING_EVENT = "Droplet already has a pending event."


class ApiError(Exception):
    """An answer other than 2xx, in DigitalOcean's error shape ``{"id", "message", "request_id"}``."""

    def __init__(self, status: int, message: str, error_id: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_id = error_id or ERROR_IDS.get(status, "error")
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(422, message)


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND_MESSAGE)


# --------------------------------------------------------------------------------------------------
# Tables: sizes, regions, images
# --------------------------------------------------------------------------------------------------

# slug -> (disk GB, price per month USD); vCPUs and memory come from platform_ctl.spec.SIZES.
_SIZE_DISK_PRICE: dict[str, tuple[int, float]] = {
    "s-1vcpu-1gb": (25, 6.0), "s-1vcpu-2gb": (50, 12.0), "s-2vcpu-2gb": (60, 18.0),
    "s-2vcpu-4gb": (80, 24.0), "s-4vcpu-8gb": (160, 48.0), "s-8vcpu-16gb": (320, 96.0),
    "g-2vcpu-8gb": (25, 63.0), "g-4vcpu-16gb": (50, 126.0), "g-8vcpu-32gb": (100, 252.0),
    "m-2vcpu-16gb": (50, 84.0), "m-4vcpu-32gb": (100, 168.0),
    "c-2": (25, 42.0), "c-4": (50, 84.0), "c-8": (100, 168.0),
}  # fmt: skip
# Sizes DigitalOcean offers that platform-ctl does not plan with: slug -> (vcpus, memory MiB, disk, price).
_EXTRA_SIZES: dict[str, tuple[int, int, int, float]] = {
    "s-1vcpu-512mb-10gb": (1, 512, 10, 4.0),
    "s-4vcpu-16gb-amd": (4, 16384, 200, 84.0),
    "s-8vcpu-32gb-amd": (8, 32768, 400, 168.0),
    "m-8vcpu-64gb": (8, 65536, 200, 336.0),
    "c-16": (16, 32768, 200, 336.0),
}


def _size_table() -> dict[str, Json]:
    rows: dict[str, Json] = {}
    specs = [(s.slug, s.vcpus, s.memory_mb, *_SIZE_DISK_PRICE.get(s.slug, (25, 6.0 * s.vcpus)))
             for s in SIZES.values()]
    specs += [(slug, *row) for slug, row in _EXTRA_SIZES.items()]
    for slug, vcpus, memory, disk, monthly in specs:
        rows[slug] = {
            "slug": slug, "memory": memory, "vcpus": vcpus, "disk": disk, "transfer": float(max(1, memory // 1024)),
            "price_monthly": monthly, "price_hourly": round(monthly / 672, 5),
            "regions": list(DO_REGIONS), "available": True,
            "description": "Basic" if slug.startswith("s-") else "Premium",
        }
    return rows


SIZE_TABLE: dict[str, Json] = _size_table()

_REGION_NAMES = {
    "nyc1": "New York 1", "nyc3": "New York 3", "sfo2": "San Francisco 2", "sfo3": "San Francisco 3",
    "ams3": "Amsterdam 3", "sgp1": "Singapore 1", "lon1": "London 1", "fra1": "Frankfurt 1",
    "tor1": "Toronto 1", "blr1": "Bangalore 1", "syd1": "Sydney 1", "atl1": "Atlanta 1",
}  # fmt: skip
REGION_TABLE: dict[str, Json] = {
    slug: {
        "slug": slug, "name": _REGION_NAMES.get(slug, slug), "sizes": list(SIZE_TABLE), "available": True,
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
    }
    for slug in DO_REGIONS
}

# (id, slug, distribution, name, min disk); debian-12-x64 is the release the local droplet image has.
_IMAGES = (
    (138000001, "debian-12-x64", "Debian", "12 x64", 15),
    (138000002, "debian-11-x64", "Debian", "11 x64", 15),
    (138000003, "ubuntu-22-04-x64", "Ubuntu", "22.04 (LTS) x64", 15),
    (138000004, "ubuntu-24-04-x64", "Ubuntu", "24.04 (LTS) x64", 15),
    (138000005, "rockylinux-9-x64", "Rocky Linux", "9 x64", 15),
)
IMAGE_TABLE: dict[str, Json] = {
    slug: {
        "id": image_id, "name": name, "distribution": distro, "slug": slug, "public": True,
        "regions": list(DO_REGIONS), "created_at": "2024-01-01T00:00:00Z", "min_disk_size": disk,
        "type": "base", "size_gigabytes": 2.36, "description": f"{distro} {name}", "tags": [],
        "status": "available", "error_message": "",
    }
    for image_id, slug, distro, name, disk in _IMAGES
}

PROJECT_PURPOSES = (
    "Just trying out DigitalOcean", "Class project / Educational purposes", "Website or blog",
    "Web Application", "Service or API", "Mobile Application", "Machine learning / AI / Data processing",
    "IoT", "Operational / Developer tooling",
)
PROJECT_ENVIRONMENTS = ("Development", "Staging", "Production")

DROPLET_ACTIONS = (
    "power_off", "power_on", "shutdown", "reboot", "power_cycle", "rename", "resize", "enable_ipv6",
    "enable_private_networking", "enable_backups", "disable_backups", "change_backup_policy",
)
MAX_VOLUMES_PER_DROPLET = 7
VOLUME_LIMIT = 100
VOLUME_GB_MAX = 16384
USER_DATA_MAX = 64 * 1024

_HOSTNAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$")
_VOLUME_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_TAG_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,255}$")
_VPC_NAME = re.compile(r"^[a-zA-Z0-9.-]{1,64}$")
_PORTS = re.compile(r"^(all|\d{1,5}|\d{1,5}-\d{1,5})$")
_URN = re.compile(r"^do:([a-z_]+):(.+)$")


def now() -> str:
    """RFC 3339 in UTC, the form godo's time.Time and Timestamp decode."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(record: Json) -> Json:
    """A record without the emulator's ``_`` bookkeeping keys, deep-copied."""
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


def fingerprint(public_key: str) -> str:
    """DigitalOcean's key fingerprint: MD5 of the decoded key blob, colon-separated hex."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise invalid("Key invalid, key should be of the form 'ssh-<type> <base64 key> [comment]'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Key invalid, the key data is not valid base64") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{field} must be an integer")
    return value


def _str(body: Json, field: str, required: bool = False) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise invalid(f"{field} is required")
        return ""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string")
    return value


def _str_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{field} must be a list of strings")
    return list(value)


# --------------------------------------------------------------------------------------------------
# The account
# --------------------------------------------------------------------------------------------------

_COLLECTIONS = ("droplets", "volumes", "vpcs", "firewalls", "keys", "tags", "projects", "actions")


class State:
    """One DigitalOcean account. Not thread-safe: the server holds one lock around every call.

    Args:
        droplet_limit: the account's droplet limit (``--droplet-limit``).
        auto_activate: without a materializer a droplet turns ``active`` on the first GET after
            its create; with one, the server calls :meth:`finish_droplet` when the container is up.
    """

    def __init__(self, droplet_limit: int = 25, auto_activate: bool = True) -> None:
        self.droplet_limit = droplet_limit
        self.auto_activate = auto_activate
        self.dirty = False
        self.droplets: dict[str, Json] = {}
        self.volumes: dict[str, Json] = {}
        self.vpcs: dict[str, Json] = {}
        self.firewalls: dict[str, Json] = {}
        self.keys: dict[str, Json] = {}
        self.tags: dict[str, Json] = {}
        self.projects: dict[str, Json] = {}
        self.actions: dict[str, Json] = {}
        self.counters = {"droplet": 400000000, "action": 2000000000, "key": 41000000}
        self.account_uuid = str(uuid.uuid4())
        self.owner_id = 7100001
        self._default_project()

    # -- persistence -----------------------------------------------------------------------------
    def to_json(self) -> Json:
        data: Json = {name: getattr(self, name) for name in _COLLECTIONS}
        data.update(version=1, counters=self.counters, account_uuid=self.account_uuid, owner_id=self.owner_id)
        return data

    def view(self) -> Json:
        """Everything, as lists of API-shaped records (``GET /_emulator/state``).

        Projects carry their ``resources`` as a list of URNs; a droplet that could not be
        materialized carries the reason as ``error``.
        """
        def shown(record: Json) -> Json:
            item = public(record)
            if record.get("_error"):
                item["error"] = record["_error"]
            return item

        projects = [{**public(p), "resources": [r["urn"] for r in p["_resources"]]} for p in self.projects.values()]
        keys = [public(k) for k in self.keys.values()]
        return {
            "droplets": [shown(d) for d in self.droplets.values()],
            "volumes": [public(v) for v in self.volumes.values()],
            "vpcs": [public(v) for v in self.vpcs.values()],
            "firewalls": [public(f) for f in self.firewalls.values()],
            "ssh_keys": keys, "keys": copy.deepcopy(keys),
            "tags": [self.tag(name) for name in self.tags],
            "projects": projects,
            "actions": [public(a) for a in self.actions.values()],
            "account": self.account(),
        }

    @classmethod
    def from_json(cls, data: Json, droplet_limit: int = 25, auto_activate: bool = True) -> State:
        state = cls(droplet_limit=droplet_limit, auto_activate=auto_activate)
        for name in _COLLECTIONS:
            setattr(state, name, dict(data.get(name) or {}))
        state.counters.update(data.get("counters") or {})
        state.account_uuid = data.get("account_uuid") or state.account_uuid
        state.owner_id = int(data.get("owner_id") or state.owner_id)
        if not any(p.get("is_default") for p in state.projects.values()):
            state._default_project()
        return state

    def save(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file); mode 0600, it may hold user data."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_json(), f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.dirty = False

    @classmethod
    def load(cls, path: Path, droplet_limit: int = 25, auto_activate: bool = True) -> State:
        if path.exists() and path.stat().st_size:
            return cls.from_json(json.loads(path.read_text()), droplet_limit, auto_activate)
        return cls(droplet_limit=droplet_limit, auto_activate=auto_activate)

    def _next(self, counter: str) -> int:
        self.counters[counter] += 1
        self.dirty = True
        return self.counters[counter]

    # -- account, sizes, regions -----------------------------------------------------------------
    def account(self) -> Json:
        return {
            "droplet_limit": self.droplet_limit, "floating_ip_limit": 3, "reserved_ip_limit": 3,
            "volume_limit": VOLUME_LIMIT, "email": "emulator@example.invalid", "uuid": self.account_uuid,
            "email_verified": True, "status": "active", "status_message": "",
            "team": {"uuid": self.account_uuid, "name": "My Team"},
        }

    # -- actions ---------------------------------------------------------------------------------
    def new_action(self, kind: str, resource_type: str, resource_id: int | None, region: str,
                   done: bool = True, owner: str = "") -> Json:
        """An action in the global store; ``done`` completes it at once (else :meth:`finish_action`)."""
        action_id = self._next("action")
        stamp = now()
        action = {
            "id": action_id, "status": "completed" if done else "in-progress", "type": kind,
            "started_at": stamp, "completed_at": stamp if done else None,
            "resource_id": resource_id, "resource_type": resource_type,
            "region": copy.deepcopy(REGION_TABLE.get(region)), "region_slug": region, "_owner": owner,
        }
        self.actions[str(action_id)] = action
        self.dirty = True
        return action

    def finish_action(self, action_id: int, ok: bool = True) -> None:
        action = self.actions.get(str(action_id))
        if action is None or action["completed_at"] is not None:
            return
        action["status"] = "completed" if ok else "errored"
        action["completed_at"] = now()
        self.dirty = True

    def get_action(self, action_id: str) -> Json:
        action = self.actions.get(action_id)
        if action is None:
            raise not_found()
        return action

    def actions_of(self, owner: str) -> list[Json]:
        return [a for a in self.actions.values() if a.get("_owner") == owner]

    def _pending(self, owner: str) -> bool:
        return any(a["completed_at"] is None for a in self.actions_of(owner))

    # -- tags (shared) ---------------------------------------------------------------------------
    def _ensure_tags(self, names: Iterable[str]) -> None:
        for name in names:
            if not _TAG_NAME.match(name):
                raise invalid(f"tag name {name!r} is invalid: use 1-255 characters of a-z, A-Z, 0-9, ':', '-' "
                              "and '_'")
            if name not in self.tags:
                self.tags[name] = {"name": name, "_created_at": now()}
                self.dirty = True

    def create_tag(self, body: Json) -> Json:
        name = _str(body, "name", required=True)
        self._ensure_tags([name])
        return self.tag(name)

    def tag(self, name: str) -> Json:
        if name not in self.tags:
            raise not_found()
        droplets = [d for d in self.droplets.values() if name in d["tags"]]
        volumes = [v for v in self.volumes.values() if name in v["tags"]]
        resources: Json = {
            "count": len(droplets) + len(volumes),
            "droplets": {"count": len(droplets)},
            "images": {"count": 0}, "volumes": {"count": len(volumes)},
            "volume_snapshots": {"count": 0}, "databases": {"count": 0},
        }
        if droplets:
            resources["droplets"]["last_tagged_uri"] = f"/v2/droplets/{droplets[-1]['id']}"
        if volumes:
            resources["volumes"]["last_tagged_uri"] = f"/v2/volumes/{volumes[-1]['id']}"
        return {"name": name, "resources": resources}

    def list_tags(self) -> list[Json]:
        return [self.tag(name) for name in self.tags]

    def delete_tag(self, name: str) -> None:
        if name not in self.tags:
            raise not_found()
        del self.tags[name]
        for record in (*self.droplets.values(), *self.volumes.values(), *self.firewalls.values()):
            if name in record["tags"]:
                record["tags"].remove(name)
        self.dirty = True

    def _tag_targets(self, body: Json) -> list[Json]:
        resources = body.get("resources")
        if not isinstance(resources, list) or not resources:
            raise invalid("resources must be a non-empty list of {resource_id, resource_type}")
        targets = []
        for item in resources:
            if not isinstance(item, dict):
                raise invalid("resources must be a list of {resource_id, resource_type}")
            kind, rid = item.get("resource_type"), str(item.get("resource_id", ""))
            table = {"droplet": self.droplets, "volume": self.volumes}.get(str(kind))
            if table is None:
                raise invalid(f"resource_type {kind!r} cannot be tagged here: use droplet or volume")
            if rid not in table:
                raise ApiError(404, f"{kind} {rid} not found")
            targets.append(table[rid])
        return targets

    def tag_resources(self, name: str, body: Json) -> None:
        if name not in self.tags:
            raise not_found()
        for record in self._tag_targets(body):
            if name not in record["tags"]:
                record["tags"].append(name)
                self.dirty = True

    def untag_resources(self, name: str, body: Json) -> None:
        if name not in self.tags:
            raise not_found()
        for record in self._tag_targets(body):
            if name in record["tags"]:
                record["tags"].remove(name)
                self.dirty = True

    # -- SSH keys --------------------------------------------------------------------------------
    def create_key(self, body: Json) -> Json:
        name = _str(body, "name", required=True)
        public_key = _str(body, "public_key", required=True)
        fp = fingerprint(public_key)
        if any(k["fingerprint"] == fp for k in self.keys.values()):
            raise invalid("SSH Key is already in use on your account")
        key = {"id": self._next("key"), "fingerprint": fp, "public_key": public_key, "name": name}
        self.keys[str(key["id"])] = key
        return key

    def key(self, ref: str) -> Json:
        if ref in self.keys:
            return self.keys[ref]
        for key in self.keys.values():
            if key["fingerprint"] == ref:
                return key
        raise not_found()

    def update_key(self, ref: str, body: Json) -> Json:
        key = self.key(ref)
        if "name" in body:
            key["name"] = _str(body, "name", required=True)
            self.dirty = True
        return key

    def delete_key(self, ref: str) -> None:
        del self.keys[str(self.key(ref)["id"])]
        self.dirty = True

    # -- VPCs ------------------------------------------------------------------------------------
    def _free_range(self, prefix: int = 20, avoid: Iterable[str] = ()) -> str:
        """The first /prefix in 10.100.0.0-10.199.255.255 overlapping no VPC and nothing in ``avoid``."""
        taken = [ipaddress.ip_network(v["ip_range"]) for v in self.vpcs.values()]
        taken += [ipaddress.ip_network(a, strict=False) for a in avoid]
        for second in range(100, 200):
            for net in ipaddress.ip_network(f"10.{second}.0.0/16").subnets(new_prefix=prefix):
                if not any(net.overlaps(t) for t in taken):
                    return str(net)
        raise invalid("no free private range left for a VPC")

    def _check_range(self, ip_range: str, avoid: Iterable[str]) -> str:
        try:
            net = ipaddress.IPv4Network(ip_range)
        except ValueError:
            raise invalid(f"ip_range {ip_range!r} is not a valid IPv4 network in CIDR notation") from None
        if not net.is_private:
            raise invalid(f"ip_range {ip_range} must be within a private (RFC 1918) range")
        if not VPC_PREFIX_MIN <= net.prefixlen <= VPC_PREFIX_MAX:
            raise invalid(f"ip_range {ip_range}: the network size must be between /{VPC_PREFIX_MIN} and "
                          f"/{VPC_PREFIX_MAX}")
        for reserved in DO_RESERVED_NETWORKS:
            if net.overlaps(reserved):
                raise invalid(f"ip_range {ip_range} overlaps {reserved}, a range reserved by DigitalOcean")
        for other in self.vpcs.values():
            if net.overlaps(ipaddress.ip_network(other["ip_range"])):
                raise invalid(f"ip_range {ip_range} overlaps the range {other['ip_range']} of VPC "
                              f"{other['name']} ({other['id']})")
        for busy in avoid:
            if net.overlaps(ipaddress.ip_network(busy, strict=False)):
                raise invalid(f"ip_range {ip_range} overlaps {busy}, a network in use on this machine")
        return str(net)

    def create_vpc(self, body: Json, avoid: Iterable[str] = ()) -> Json:
        name = _str(body, "name", required=True)
        if not _VPC_NAME.match(name):
            raise invalid("name: VPC names may contain only letters, numbers, '.' and '-' (at most 64)")
        if any(v["name"] == name for v in self.vpcs.values()):
            raise invalid(f"name: a VPC named {name} already exists")
        region = _str(body, "region", required=True)
        if region not in REGION_TABLE:
            raise invalid(f"region: {region!r} is not a valid region")
        avoid = list(avoid)
        ip_range = body.get("ip_range") or ""
        ip_range = self._check_range(ip_range, avoid) if ip_range else self._free_range(avoid=avoid)
        return self._add_vpc(name, region, ip_range, _str(body, "description"), default=False)

    def _add_vpc(self, name: str, region: str, ip_range: str, description: str, default: bool) -> Json:
        vpc_id = str(uuid.uuid4())
        vpc = {
            "id": vpc_id, "urn": f"do:vpc:{vpc_id}", "name": name, "description": description,
            "region": region, "ip_range": ip_range, "created_at": now(), "default": default,
        }
        self.vpcs[vpc_id] = vpc
        self.dirty = True
        return vpc

    def default_vpc(self, region: str, avoid: Iterable[str] = ()) -> Json:
        """The region's default VPC, made on first use like DigitalOcean does."""
        for vpc in self.vpcs.values():
            if vpc["region"] == region and vpc["default"]:
                return vpc
        name = f"default-{region}"
        while any(v["name"] == name for v in self.vpcs.values()):
            name += "-1"
        return self._add_vpc(name, region, self._free_range(avoid=avoid), "", default=True)

    def vpc(self, vpc_id: str) -> Json:
        if vpc_id not in self.vpcs:
            raise not_found()
        return self.vpcs[vpc_id]

    def update_vpc(self, vpc_id: str, body: Json, partial: bool) -> Json:
        vpc = self.vpc(vpc_id)
        if "name" in body or not partial:
            name = _str(body, "name", required=True)
            if not _VPC_NAME.match(name):
                raise invalid("name: VPC names may contain only letters, numbers, '.' and '-' (at most 64)")
            if any(v["name"] == name and v["id"] != vpc_id for v in self.vpcs.values()):
                raise invalid(f"name: a VPC named {name} already exists")
            vpc["name"] = name
        if "description" in body or not partial:
            vpc["description"] = _str(body, "description")
        # `default: false` is what every client sends when it does not mean to change it.
        if body.get("default") is True and not vpc["default"]:
            for other in self.vpcs.values():
                if other["region"] == vpc["region"]:
                    other["default"] = False
            vpc["default"] = True
        self.dirty = True
        return vpc

    def vpc_members(self, vpc_id: str) -> list[Json]:
        self.vpc(vpc_id)
        return [{"urn": f"do:droplet:{d['id']}", "name": d["name"], "created_at": d["created_at"]}
                for d in self.droplets.values() if d["vpc_uuid"] == vpc_id]

    def delete_vpc(self, vpc_id: str) -> Json:
        vpc = self.vpc(vpc_id)
        if vpc["default"]:
            raise ApiError(403, "Cannot delete the default VPC of a region.")
        if self.vpc_members(vpc_id):
            # DigitalOcean answers 403 here (API reference, "Delete a VPC"); provider v1.22.2 retries
            # only a 403, later versions a 403 or a 409.
            raise ApiError(403, "Can not delete VPC with members")
        del self.vpcs[vpc_id]
        self.dirty = True
        return vpc

    # -- droplets --------------------------------------------------------------------------------
    def droplet(self, droplet_id: str) -> Json:
        droplet = self.droplets.get(droplet_id)
        if droplet is None:
            raise not_found()
        return droplet

    def read_droplet(self, droplet_id: str) -> Json:
        """GET: a fresh droplet turns active here when nothing materializes it."""
        droplet = self.droplet(droplet_id)
        self._maybe_activate(droplet)
        return droplet

    def _maybe_activate(self, droplet: Json) -> None:
        if self.auto_activate and droplet["status"] == "new":
            self.finish_droplet(droplet["id"], ok=True)

    def list_droplets(self, tag: str = "", name: str = "") -> list[Json]:
        found = [d for d in self.droplets.values()
                 if (not tag or tag in d["tags"]) and (not name or d["name"] == name)]
        for droplet in found:
            self._maybe_activate(droplet)
        return found

    def _resolve_keys(self, refs: Any) -> list[str]:
        if refs is None:
            return []
        if not isinstance(refs, list):
            raise invalid("ssh_keys must be a list of key IDs or fingerprints")
        keys = []
        for ref in refs:
            if isinstance(ref, bool) or not isinstance(ref, int | str):
                raise invalid("Key invalid, key should be either a valid fingerprint or an integer ID")
            try:
                keys.append(self.key(str(ref))["public_key"])
            except ApiError:
                raise invalid(f"ssh_keys: no SSH key with ID or fingerprint {ref} on this account") from None
        return keys

    def _image(self, ref: Any) -> Json:
        if isinstance(ref, str) and ref in IMAGE_TABLE:
            return IMAGE_TABLE[ref]
        if isinstance(ref, int) and not isinstance(ref, bool):
            for image in IMAGE_TABLE.values():
                if image["id"] == ref:
                    return image
        raise invalid("You specified an invalid image for Droplet creation.")

    def _free_address(self, vpc: Json) -> str:
        net = ipaddress.ip_network(vpc["ip_range"])
        taken = {d["_ipv4"] for d in self.droplets.values() if d["vpc_uuid"] == vpc["id"]}
        for number, address in enumerate(net.hosts(), start=1):
            if number >= FIRST_HOST_OFFSET and str(address) not in taken:
                return str(address)
        raise invalid(f"VPC {vpc['name']} ({vpc['ip_range']}) has no free IP address left")

    def check_droplet_create(self, body: Json, avoid: Iterable[str] = ()) -> list[Json]:
        """Validate a droplet create (single or ``names``); returns one resolved plan per droplet."""
        names = body.get("names") if "names" in body else [body.get("name")]
        if not isinstance(names, list) or not names:
            raise invalid("names must be a non-empty list of droplet names")
        for name in names:
            if not isinstance(name, str) or not name:
                raise invalid("name is required")
            if not _HOSTNAME.match(name):
                raise invalid(f"name {name!r}: Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
        size = body.get("size")
        if not isinstance(size, str) or size.lower() not in SIZE_TABLE:
            raise invalid("You specified an invalid size for Droplet creation.")
        size = size.lower()
        vpc_uuid = body.get("vpc_uuid") or ""
        region = body.get("region") or ""
        if not isinstance(region, str) or not isinstance(vpc_uuid, str):
            raise invalid("region and vpc_uuid must be strings")
        region = region.lower()
        vpc = None
        if vpc_uuid:
            vpc = self.vpcs.get(vpc_uuid)
            if vpc is None:
                raise invalid(f"vpc_uuid: VPC {vpc_uuid} was not found")
            region = region or vpc["region"]
            if vpc["region"] != region:
                raise invalid(f"vpc_uuid: VPC {vpc['name']} is in {vpc['region']}, not in {region}")
        region = region or DO_REGIONS[0]
        if region not in REGION_TABLE:
            raise invalid("You specified an invalid region for Droplet creation.")
        image = self._image(body.get("image"))
        keys = self._resolve_keys(body.get("ssh_keys"))
        tags = _str_list(body.get("tags"), "tags")
        user_data = body.get("user_data") or ""
        if not isinstance(user_data, str):
            raise invalid("user_data must be a string")
        if len(user_data.encode()) > USER_DATA_MAX:
            raise invalid("user_data is too long (maximum is 64 KiB)")
        volume_ids = []
        for ref in body.get("volumes") or []:
            volume = None
            if isinstance(ref, dict) and ref.get("id"):
                volume = self.volumes.get(str(ref["id"]))
            elif isinstance(ref, dict) and ref.get("name"):
                volume = next((v for v in self.volumes.values()
                               if v["name"] == ref["name"] and v["region"]["slug"] == region), None)
            if volume is None:
                raise invalid(f"volumes: volume {ref} was not found")
            if volume["region"]["slug"] != region:
                raise invalid(f"volumes: volume {volume['name']} is in {volume['region']['slug']}, not in {region}")
            if volume["droplet_ids"]:
                raise invalid(f"volumes: volume {volume['name']} is already attached to a Droplet")
            volume_ids.append(volume["id"])
        if len(names) > 1 and volume_ids:
            raise invalid("volumes cannot be attached when creating several Droplets at once")
        if len(volume_ids) > MAX_VOLUMES_PER_DROPLET:
            raise invalid(f"a Droplet can have at most {MAX_VOLUMES_PER_DROPLET} volumes attached")
        if len(self.droplets) + len(names) > self.droplet_limit:
            raise invalid("creating this/these droplet(s) will exceed your droplet limit")
        for flag in ("backups", "ipv6", "private_networking", "monitoring"):
            if body.get(flag) is not None and not isinstance(body.get(flag), bool):
                raise invalid(f"{flag} must be a boolean")
        for tag in tags:
            if not _TAG_NAME.match(tag):
                raise invalid(f"tag name {tag!r} is invalid: use 1-255 characters of a-z, A-Z, 0-9, ':', '-' "
                              "and '_'")
        if vpc is None and not any(v["region"] == region and v["default"] for v in self.vpcs.values()):
            self._free_range(avoid=avoid)  # the default VPC is made only when the create goes ahead
        return [{
            "name": name, "size": size, "region": region, "vpc": vpc, "image": image, "keys": keys, "tags": tags,
            "user_data": user_data, "volume_ids": volume_ids if i == 0 else [],
            "features": [f for f in ("backups", "ipv6", "private_networking", "monitoring") if body.get(f)],
            "public": body.get("public_networking") is not False,
        } for i, name in enumerate(names)]

    def create_droplet(self, plan: Json, avoid: Iterable[str] = ()) -> Json:
        vpc = plan["vpc"] or self.default_vpc(plan["region"], avoid)
        size = SIZE_TABLE[plan["size"]]
        address = self._free_address(vpc)
        net = ipaddress.ip_network(vpc["ip_range"])
        gateway = str(next(net.hosts()))
        droplet_id = self._next("droplet")
        self._ensure_tags(plan["tags"])
        # One network here: the VPC address is the public address too (unless public_networking=false).
        v4 = [{"ip_address": address, "netmask": str(net.netmask), "gateway": gateway, "type": kind}
              for kind in ("private", "public") if kind == "private" or plan.get("public", True)]
        droplet: Json = {
            "id": droplet_id, "name": plan["name"], "memory": size["memory"], "vcpus": size["vcpus"],
            "disk": size["disk"], "locked": False, "status": "new", "kernel": None, "created_at": now(),
            "features": list(plan["features"]), "backup_ids": [], "next_backup_window": None, "snapshot_ids": [],
            "image": copy.deepcopy(plan["image"]), "volume_ids": [], "size": copy.deepcopy(size),
            "size_slug": size["slug"], "networks": {"v4": v4, "v6": []},
            "region": copy.deepcopy(REGION_TABLE[plan["region"]]), "tags": list(dict.fromkeys(plan["tags"])),
            "vpc_uuid": vpc["id"],
            "_ipv4": address, "_user_data": plan["user_data"], "_ssh_keys": plan["keys"],
        }
        if "ipv6" in plan["features"]:
            droplet["networks"]["v6"] = [self._ipv6(droplet_id)]
        self.droplets[str(droplet_id)] = droplet
        for volume_id in plan["volume_ids"]:
            self._couple(self.volumes[volume_id], droplet)
        action = self.new_action("create", "droplet", droplet_id, plan["region"], done=False,
                                 owner=f"droplet:{droplet_id}")
        droplet["_create_action"] = action["id"]
        self.assign_default_project(f"do:droplet:{droplet_id}")
        return droplet

    @staticmethod
    def _ipv6(droplet_id: int) -> Json:
        return {"ip_address": f"2001:db8:1::{droplet_id % 0xFFFF:x}", "netmask": 64, "gateway": "2001:db8:1::1",
                "type": "public"}

    def finish_droplet(self, droplet_id: int, ok: bool, error: str = "") -> None:
        """The droplet is up (``active``) or could not be built (``errored``, with the reason)."""
        droplet = self.droplets.get(str(droplet_id))
        if droplet is None:
            return
        if droplet["status"] == "new":
            droplet["status"] = "active" if ok else "errored"
        if error:
            droplet["_error"] = error
        self.finish_action(droplet.get("_create_action", 0), ok)
        self.dirty = True

    def set_droplet_status(self, droplet_id: int, status: str) -> None:
        droplet = self.droplets.get(str(droplet_id))
        if droplet is not None:
            droplet["status"] = status
            self.dirty = True

    def delete_droplet(self, droplet_id: str) -> Json:
        """Gone at once for every reader: volumes detached, firewalls, projects and tags forget it."""
        droplet = self.droplet(droplet_id)
        for volume_id in list(droplet["volume_ids"]):
            self._decouple(self.volumes[volume_id], droplet)
        for firewall in self.firewalls.values():
            if droplet["id"] in firewall["droplet_ids"]:
                firewall["droplet_ids"].remove(droplet["id"])
            for rule in firewall["inbound_rules"] + firewall["outbound_rules"]:
                for ends in (rule.get("sources"), rule.get("destinations")):
                    if isinstance(ends, dict) and droplet["id"] in (ends.get("droplet_ids") or []):
                        ends["droplet_ids"].remove(droplet["id"])
        self._unassign(f"do:droplet:{droplet['id']}")
        for action in self.actions_of(f"droplet:{droplet['id']}"):
            if action["completed_at"] is None:
                self.finish_action(action["id"], ok=False)
        del self.droplets[droplet_id]
        self.dirty = True
        return droplet

    def droplet_action(self, droplet_id: str, body: Json, materialized: bool) -> tuple[Json, Json]:
        """Validate and apply a droplet action; returns (action, droplet).

        Without a materializer the state changes at once and the action is completed; with one,
        power changes are left to the materializer (which calls :meth:`set_droplet_status` and
        :meth:`finish_action`) and the action stays in progress.
        """
        droplet = self.droplet(droplet_id)
        kind = body.get("type")
        if kind not in DROPLET_ACTIONS:
            raise invalid(f"type {kind!r} is not a Droplet action this emulator supports: {', '.join(DROPLET_ACTIONS)}")
        owner = f"droplet:{droplet['id']}"
        if droplet["status"] == "new" or self._pending(owner):
            raise invalid(PENDING_EVENT)
        status = droplet["status"]
        deferred = False
        if kind in ("power_off", "shutdown"):
            if status == "off":
                raise invalid("Droplet is already powered off.")
            deferred = materialized
            if not materialized:
                droplet["status"] = "off"
        elif kind == "power_on":
            if status == "active":
                raise invalid("Droplet is already powered on.")
            deferred = materialized
            if not materialized:
                droplet["status"] = "active"
        elif kind in ("reboot", "power_cycle"):
            deferred = materialized and status == "active"
            if kind == "power_cycle" and not materialized:
                droplet["status"] = "active"
        elif kind == "rename":
            name = body.get("name")
            if not isinstance(name, str) or not _HOSTNAME.match(name):
                raise invalid("name: Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
            droplet["name"] = name
        elif kind == "resize":
            self._resize(droplet, body)
            deferred = materialized
        elif kind == "enable_ipv6":
            if "ipv6" not in droplet["features"]:
                droplet["features"].append("ipv6")
                droplet["networks"]["v6"] = [self._ipv6(droplet["id"])]
        elif kind == "enable_private_networking":
            if "private_networking" not in droplet["features"]:
                droplet["features"].append("private_networking")
        elif kind == "enable_backups":
            if "backups" not in droplet["features"]:
                droplet["features"].append("backups")
        elif kind == "disable_backups" and "backups" in droplet["features"]:
            droplet["features"].remove("backups")
        action = self.new_action(kind, "droplet", droplet["id"], droplet["region"]["slug"], done=not deferred,
                                 owner=owner)
        self.dirty = True
        return action, droplet

    def _resize(self, droplet: Json, body: Json) -> None:
        slug = body.get("size")
        if not isinstance(slug, str) or slug.lower() not in SIZE_TABLE:
            raise invalid("You specified an invalid size for Droplet resize.")
        if droplet["status"] != "off":
            raise invalid("Droplet must be powered off before it can be resized.")
        size = SIZE_TABLE[slug.lower()]
        grow_disk = body.get("disk") is True
        if size["disk"] < droplet["disk"]:
            raise invalid("This size is not available because it has a smaller disk.")
        droplet["size"] = copy.deepcopy(size)
        droplet["size_slug"] = size["slug"]
        droplet["memory"], droplet["vcpus"] = size["memory"], size["vcpus"]
        if grow_disk:
            droplet["disk"] = size["disk"]

    # -- volumes ---------------------------------------------------------------------------------
    def volume(self, volume_id: str) -> Json:
        if volume_id not in self.volumes:
            raise not_found()
        return self.volumes[volume_id]

    def list_volumes(self, name: str = "", region: str = "") -> list[Json]:
        return [v for v in self.volumes.values()
                if (not name or v["name"] == name) and (not region or v["region"]["slug"] == region)]

    def create_volume(self, body: Json) -> Json:
        name = _str(body, "name", required=True)
        if not _VOLUME_NAME.match(name):
            raise invalid("name: volume names must start with a lowercase letter and contain only lowercase "
                          "letters, numbers and hyphens (at most 64 characters)")
        region = _str(body, "region", required=True).lower()
        if region not in REGION_TABLE:
            raise invalid("You specified an invalid region for volume creation.")
        if _str(body, "snapshot_id"):
            raise invalid("snapshot_id: this emulator has no volume snapshots")
        size = body.get("size_gigabytes")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= VOLUME_GB_MAX:
            raise invalid(f"size_gigabytes must be a whole number of GiB between 1 and {VOLUME_GB_MAX}")
        fs_type = _str(body, "filesystem_type")
        if fs_type not in ("", "ext4", "xfs"):
            raise invalid("filesystem_type must be ext4 or xfs")
        label = _str(body, "filesystem_label")
        if len(label) > (12 if fs_type == "xfs" else 16):
            raise invalid("filesystem_label is too long (16 characters for ext4, 12 for xfs)")
        if any(v["name"] == name and v["region"]["slug"] == region for v in self.volumes.values()):
            raise invalid(f"a volume named {name} already exists in {region}")
        if len(self.volumes) >= VOLUME_LIMIT:
            raise invalid("creating this volume will exceed your volume limit")
        tags = _str_list(body.get("tags"), "tags")
        self._ensure_tags(tags)
        volume_id = str(uuid.uuid4())
        volume = {
            "id": volume_id, "region": copy.deepcopy(REGION_TABLE[region]), "droplet_ids": [], "name": name,
            "description": _str(body, "description"), "size_gigabytes": size, "created_at": now(),
            "filesystem_type": fs_type, "filesystem_label": label, "tags": list(dict.fromkeys(tags)),
        }
        self.volumes[volume_id] = volume
        self.assign_default_project(f"do:volume:{volume_id}")
        self.dirty = True
        return volume

    def delete_volume(self, volume_id: str) -> Json:
        volume = self.volume(volume_id)
        if volume["droplet_ids"]:
            raise ApiError(409, "Volume is currently attached to a Droplet; detach it before deleting it.")
        self._unassign(f"do:volume:{volume_id}")
        del self.volumes[volume_id]
        self.dirty = True
        return volume

    def find_volume(self, name: str, region: str) -> Json:
        for volume in self.volumes.values():
            if volume["name"] == name and volume["region"]["slug"] == region:
                return volume
        raise not_found()

    def _couple(self, volume: Json, droplet: Json) -> None:
        volume["droplet_ids"] = [droplet["id"]]
        if volume["id"] not in droplet["volume_ids"]:
            droplet["volume_ids"].append(volume["id"])
        self.dirty = True

    def _decouple(self, volume: Json, droplet: Json) -> None:
        volume["droplet_ids"] = [i for i in volume["droplet_ids"] if i != droplet["id"]]
        droplet["volume_ids"] = [i for i in droplet["volume_ids"] if i != volume["id"]]
        self.dirty = True

    def volume_action(self, volume: Json, body: Json, materialized: bool) -> tuple[Json, Json | None]:
        """attach / detach / resize; returns (action, droplet or None)."""
        kind = body.get("type")
        region = volume["region"]["slug"]
        owner = f"volume:{volume['id']}"
        if kind in ("attach", "detach"):
            raw = body.get("droplet_id")
            if raw is None and kind == "detach" and volume["droplet_ids"]:
                raw = volume["droplet_ids"][0]
            droplet_id = _int(raw, "droplet_id")
            droplet = self.droplets.get(str(droplet_id))
            if droplet is None:
                raise invalid(f"droplet_id: Droplet {droplet_id} was not found")
            if self._pending(f"droplet:{droplet_id}") or droplet["status"] == "new":
                raise invalid(PENDING_EVENT)
            if kind == "attach":
                if droplet["region"]["slug"] != region:
                    raise invalid("Droplet and volume must be in the same region.")
                if volume["droplet_ids"] == [droplet_id]:
                    action = self.new_action("attach_volume", "volume", None, region, owner=owner)
                    return action, droplet
                if volume["droplet_ids"]:
                    raise invalid("Volume is already attached to another Droplet.")
                if len(droplet["volume_ids"]) >= MAX_VOLUMES_PER_DROPLET:
                    raise invalid(f"a Droplet can have at most {MAX_VOLUMES_PER_DROPLET} volumes attached")
                self._couple(volume, droplet)
            else:
                if droplet_id not in volume["droplet_ids"]:
                    raise invalid("Attachment not found")
                self._decouple(volume, droplet)
            action = self.new_action(f"{kind}_volume", "volume", None, region,
                                     done=not (materialized and droplet["status"] == "active"), owner=owner)
            # Also listed among the droplet's actions, as DigitalOcean does.
            action["_droplet"] = droplet_id
            return action, droplet
        if kind == "resize":
            size = body.get("size_gigabytes")
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= VOLUME_GB_MAX:
                raise invalid(f"size_gigabytes must be a whole number of GiB between 1 and {VOLUME_GB_MAX}")
            if size < volume["size_gigabytes"]:
                raise invalid("Volumes can only be resized to a larger size.")
            volume["size_gigabytes"] = size
            self.dirty = True
            return self.new_action("resize_volume", "volume", None, region, done=not materialized, owner=owner), None
        raise invalid(f"type {kind!r} is not a volume action: use attach, detach or resize")

    # -- firewalls -------------------------------------------------------------------------------
    def _check_rules(self, rules: Any, field: str, ends: str) -> list[Json]:
        if rules is None:
            return []
        if not isinstance(rules, list):
            raise invalid(f"{field} must be a list")
        for i, rule in enumerate(rules):
            where = f"{field}[{i}]"
            if not isinstance(rule, dict):
                raise invalid(f"{where} must be an object")
            protocol = rule.get("protocol")
            if protocol not in ("tcp", "udp", "icmp"):
                raise invalid(f"{where}.protocol must be tcp, udp or icmp")
            ports = rule.get("ports")
            if protocol != "icmp":
                if not isinstance(ports, str) or not _PORTS.match(ports):
                    raise invalid(f"{where}.ports must be a port, a range like 8000-9000, or all")
                for number in ports.split("-") if ports != "all" else ():
                    if not 0 <= int(number) <= 65535:
                        raise invalid(f"{where}.ports: {number} is not a port")
            target = rule.get(ends)
            if not isinstance(target, dict) or not any(target.get(k) for k in (
                    "addresses", "tags", "droplet_ids", "load_balancer_uids", "kubernetes_ids")):
                raise invalid(f"{where}.{ends} must name at least one address, tag, Droplet or load balancer")
            for address in target.get("addresses") or []:
                try:
                    ipaddress.ip_network(address, strict=False)
                except ValueError:
                    raise invalid(f"{where}.{ends}.addresses: {address!r} is not an IP address or CIDR") from None
            self._check_droplet_ids(target.get("droplet_ids"), f"{where}.{ends}.droplet_ids")
            for tag in _str_list(target.get("tags"), f"{where}.{ends}.tags"):
                if not _TAG_NAME.match(tag):
                    raise invalid(f"{where}.{ends}.tags: tag name {tag!r} is invalid")
        return copy.deepcopy(rules)

    def _check_droplet_ids(self, ids: Any, field: str) -> list[int]:
        if ids is None:
            return []
        if not isinstance(ids, list):
            raise invalid(f"{field} must be a list of Droplet IDs")
        for raw in ids:
            if str(_int(raw, field)) not in self.droplets:
                raise invalid(f"{field}: Droplet {raw} was not found")
        return list(dict.fromkeys(ids))

    def _firewall_body(self, body: Json) -> Json:
        name = _str(body, "name", required=True)
        if len(name) > 255 or any(c.isspace() for c in name):
            raise invalid("name: firewall names are 1-255 characters without spaces")
        tags = _str_list(body.get("tags"), "tags")
        inbound = self._check_rules(body.get("inbound_rules"), "inbound_rules", "sources")
        outbound = self._check_rules(body.get("outbound_rules"), "outbound_rules", "destinations")
        droplet_ids = self._check_droplet_ids(body.get("droplet_ids"), "droplet_ids")
        self._ensure_tags(tags)
        return {"name": name, "inbound_rules": inbound, "outbound_rules": outbound, "droplet_ids": droplet_ids,
                "tags": list(dict.fromkeys(tags))}

    def create_firewall(self, body: Json) -> Json:
        fields = self._firewall_body(body)
        firewall_id = str(uuid.uuid4())
        firewall = {"id": firewall_id, "status": "succeeded", "created_at": now(), "pending_changes": [], **fields}
        self.firewalls[firewall_id] = firewall
        self.dirty = True
        return firewall

    def firewall(self, firewall_id: str) -> Json:
        if firewall_id not in self.firewalls:
            raise not_found()
        return self.firewalls[firewall_id]

    def update_firewall(self, firewall_id: str, body: Json) -> Json:
        firewall = self.firewall(firewall_id)
        firewall.update(self._firewall_body(body))
        self.dirty = True
        return firewall

    def delete_firewall(self, firewall_id: str) -> None:
        self.firewall(firewall_id)
        del self.firewalls[firewall_id]
        self.dirty = True

    def firewall_droplets(self, firewall_id: str, body: Json, add: bool) -> None:
        firewall = self.firewall(firewall_id)
        ids = self._check_droplet_ids(body.get("droplet_ids"), "droplet_ids") if add else body.get("droplet_ids")
        for droplet_id in ids or []:
            if add and droplet_id not in firewall["droplet_ids"]:
                firewall["droplet_ids"].append(droplet_id)
            elif not add and droplet_id in firewall["droplet_ids"]:
                firewall["droplet_ids"].remove(droplet_id)
        self.dirty = True

    def firewall_tags(self, firewall_id: str, body: Json, add: bool) -> None:
        firewall = self.firewall(firewall_id)
        tags = _str_list(body.get("tags"), "tags")
        if add:
            self._ensure_tags(tags)
        for tag in tags:
            if add and tag not in firewall["tags"]:
                firewall["tags"].append(tag)
            elif not add and tag in firewall["tags"]:
                firewall["tags"].remove(tag)
        self.dirty = True

    def firewalls_of(self, droplet_id: int) -> list[Json]:
        droplet = self.droplet(str(droplet_id))
        return [f for f in self.firewalls.values()
                if droplet_id in f["droplet_ids"] or set(f["tags"]) & set(droplet["tags"])]

    # -- projects --------------------------------------------------------------------------------
    def _default_project(self) -> None:
        stamp = now()
        project_id = str(uuid.uuid4())
        self.projects[project_id] = {
            "id": project_id, "owner_uuid": self.account_uuid, "owner_id": self.owner_id, "name": "first-project",
            "description": "Update your project information under Settings",
            "purpose": "Just trying out DigitalOcean", "environment": "Development", "is_default": True,
            "created_at": stamp, "updated_at": stamp, "_resources": [],
        }
        self.dirty = True

    def project(self, project_id: str) -> Json:
        if project_id == "default":
            return next(p for p in self.projects.values() if p["is_default"])
        if project_id not in self.projects:
            raise not_found()
        return self.projects[project_id]

    @staticmethod
    def _purpose(value: str) -> str:
        if not value or value in PROJECT_PURPOSES or value.startswith("Other: "):
            return value
        return f"Other: {value}"

    @staticmethod
    def _environment(value: str) -> str:
        if not value:
            return ""
        for known in PROJECT_ENVIRONMENTS:
            if known.lower() == value.lower():
                return known
        raise invalid(f"environment must be one of {', '.join(PROJECT_ENVIRONMENTS)}")

    def create_project(self, body: Json) -> Json:
        name = _str(body, "name", required=True)
        if len(name) > 175:
            raise invalid("name is too long (maximum is 175 characters)")
        if any(p["name"] == name for p in self.projects.values()):
            raise ApiError(409, f"a project named {name} already exists")
        purpose = _str(body, "purpose", required=True)
        stamp = now()
        project_id = str(uuid.uuid4())
        project = {
            "id": project_id, "owner_uuid": self.account_uuid, "owner_id": self.owner_id, "name": name,
            "description": _str(body, "description"), "purpose": self._purpose(purpose),
            "environment": self._environment(_str(body, "environment")), "is_default": False,
            "created_at": stamp, "updated_at": stamp, "_resources": [],
        }
        self.projects[project_id] = project
        self.dirty = True
        return project

    def update_project(self, project_id: str, body: Json, partial: bool) -> Json:
        project = self.project(project_id)
        for field in ("name", "description", "purpose", "environment"):
            if field not in body and partial:
                continue
            value = body.get(field)
            if value is None and partial:
                continue
            if value is not None and not isinstance(value, str):
                raise invalid(f"{field} must be a string")
            value = value or ""
            if field in ("name", "purpose") and not value:
                raise invalid(f"{field} is required")
            if field == "name" and any(p["name"] == value and p["id"] != project["id"]
                                       for p in self.projects.values()):
                raise ApiError(409, f"a project named {value} already exists")
            project[field] = {"purpose": self._purpose, "environment": self._environment}.get(
                field, lambda v: v)(value)
        if body.get("is_default") is True and not project["is_default"]:
            for other in self.projects.values():
                other["is_default"] = False
            project["is_default"] = True
        project["updated_at"] = now()
        self.dirty = True
        return project

    def delete_project(self, project_id: str) -> None:
        project = self.project(project_id)
        if project["is_default"]:
            raise ApiError(412, "cannot delete the default project")
        if project["_resources"]:
            raise ApiError(412, "cannot delete a project with resources. move or remove the resources first")
        del self.projects[project["id"]]
        self.dirty = True

    def _exists(self, urn: str) -> bool:
        match = _URN.match(urn)
        if match is None:
            raise invalid(f"{urn!r} is not a resource URN like do:droplet:123")
        kind, rid = match.groups()
        table = {"droplet": self.droplets, "volume": self.volumes, "vpc": self.vpcs}.get(kind)
        # Kinds this emulator does not model (domains, buckets, ...) are recorded as given.
        return table is None or rid in table

    def _unassign(self, urn: str) -> None:
        for project in self.projects.values():
            kept = [r for r in project["_resources"] if r["urn"] != urn]
            if len(kept) != len(project["_resources"]):
                project["_resources"] = kept
                self.dirty = True

    def assign_default_project(self, urn: str) -> None:
        """New droplets and volumes land in the default project, as on DigitalOcean."""
        self.assign(self.project("default")["id"], {"resources": [urn]})

    def assign(self, project_id: str, body: Json) -> list[Json]:
        project = self.project(project_id)
        urns = body.get("resources")
        if not isinstance(urns, list) or not all(isinstance(u, str) for u in urns):
            raise invalid("resources must be a list of URNs")
        assigned = []
        for urn in dict.fromkeys(urns):
            # A URN of a resource that is gone (a replaced droplet the provider moves back to the
            # default project) is skipped rather than refused.
            if not self._exists(urn):
                continue
            self._unassign(urn)
            entry = {"urn": urn, "assigned_at": now(), "status": "ok"}
            project["_resources"].append(entry)
            assigned.append(entry)
        self.dirty = True
        return assigned

    def project_resources(self, project_id: str) -> list[Json]:
        return list(self.project(project_id)["_resources"])

    # -- materializer support --------------------------------------------------------------------
    def memory_reserved_mb(self) -> int:
        return sum(int(d["memory"]) for d in self.droplets.values())

"""Droplets: create (one or ``names``), read, delete, and the droplet actions (power, resize, ...)."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from do_emulator import catalogue
from do_emulator.state.core import (
    MAX_VOLUMES_PER_DROPLET,
    PENDING_EVENT,
    TAG_NAME,
    ApiError,
    Json,
    invalid,
    not_found,
    now,
    str_list,
)
from do_emulator.state.volumes import Volumes
from platform_ctl.infra.local import FIRST_HOST_OFFSET

DROPLET_ACTIONS = (
    "power_off", "power_on", "shutdown", "reboot", "power_cycle", "rename", "resize", "enable_ipv6",
    "enable_private_networking", "enable_backups", "disable_backups", "change_backup_policy",
)
USER_DATA_MAX = 64 * 1024
_HOSTNAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$")


class Droplets(Volumes):
    """The account's droplets."""

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
        image = catalogue.image(ref)
        if image is not None:
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
        found = catalogue.size(body.get("size"))
        if found is None:
            raise invalid("You specified an invalid size for Droplet creation.")
        size = found["slug"]
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
        region = region or catalogue.AVAILABLE_REGIONS[0]
        if catalogue.region(region) is None:
            raise invalid("You specified an invalid region for Droplet creation.")
        if region not in catalogue.SIZES[size]["regions"]:
            raise invalid("Size is not available in this region.")
        image = self._image(body.get("image"))
        keys = self._resolve_keys(body.get("ssh_keys"))
        tags = str_list(body.get("tags"), "tags")
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
            if not TAG_NAME.match(tag):
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
        size = catalogue.SIZES[plan["size"]]
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
            "region": copy.deepcopy(catalogue.REGIONS[plan["region"]]), "tags": list(dict.fromkeys(plan["tags"])),
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
        size = catalogue.size(body.get("size"))
        if size is None:
            raise invalid("You specified an invalid size for Droplet resize.")
        if droplet["status"] != "off":
            raise invalid("Droplet must be powered off before it can be resized.")
        grow_disk = body.get("disk") is True
        if size["disk"] < droplet["disk"]:
            raise invalid("This size is not available because it has a smaller disk.")
        droplet["size"] = copy.deepcopy(size)
        droplet["size_slug"] = size["slug"]
        droplet["memory"], droplet["vcpus"] = size["memory"], size["vcpus"]
        if grow_disk:
            droplet["disk"] = size["disk"]

    # -- materializer support --------------------------------------------------------------------
    def memory_reserved_mb(self) -> int:
        return sum(int(d["memory"]) for d in self.droplets.values())

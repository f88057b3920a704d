"""Cloud firewalls: rules, the droplets and tags they apply to."""

from __future__ import annotations

import copy
import ipaddress
import re
import uuid
from typing import Any

from do_emulator.state.core import TAG_NAME, Json, int_field, invalid, not_found, now, str_field, str_list
from do_emulator.state.droplets import Droplets

_PORTS = re.compile(r"^(all|\d{1,5}|\d{1,5}-\d{1,5})$")


class Firewalls(Droplets):
    """The account's firewalls."""

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
            for tag in str_list(target.get("tags"), f"{where}.{ends}.tags"):
                if not TAG_NAME.match(tag):
                    raise invalid(f"{where}.{ends}.tags: tag name {tag!r} is invalid")
        return copy.deepcopy(rules)

    def _check_droplet_ids(self, ids: Any, field: str) -> list[int]:
        if ids is None:
            return []
        if not isinstance(ids, list):
            raise invalid(f"{field} must be a list of Droplet IDs")
        for raw in ids:
            if str(int_field(raw, field)) not in self.droplets:
                raise invalid(f"{field}: Droplet {raw} was not found")
        return list(dict.fromkeys(ids))

    def _firewall_body(self, body: Json) -> Json:
        name = str_field(body, "name", required=True)
        if len(name) > 255 or any(c.isspace() for c in name):
            raise invalid("name: firewall names are 1-255 characters without spaces")
        tags = str_list(body.get("tags"), "tags")
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
        tags = str_list(body.get("tags"), "tags")
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

"""VPCs: private networks per region, a region's default one made on first use."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable

from do_emulator import catalogue
from do_emulator.state.core import ApiError, Json, invalid, not_found, now, str_field
from do_emulator.state.projects import Projects

#: Ranges DigitalOcean keeps for itself (DOKS pods and services, internal use); a VPC may not
#: overlap them. https://docs.digitalocean.com/products/networking/vpc/concepts/plan-your-network/
RESERVED_NETWORKS: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(net) for net in ("10.229.0.0/16", "10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/24")
)
#: A VPC's network is a /16 at the largest and a /28 at the smallest.
VPC_PREFIX_MIN = 16
VPC_PREFIX_MAX = 28
_VPC_NAME = re.compile(r"^[a-zA-Z0-9.-]{1,64}$")


class Vpcs(Projects):
    """The account's VPCs."""

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
        for reserved in RESERVED_NETWORKS:
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
        name = str_field(body, "name", required=True)
        if not _VPC_NAME.match(name):
            raise invalid("name: VPC names may contain only letters, numbers, '.' and '-' (at most 64)")
        if any(v["name"] == name for v in self.vpcs.values()):
            raise invalid(f"name: a VPC named {name} already exists")
        region = str_field(body, "region", required=True)
        if catalogue.region(region) is None:
            raise invalid(f"region: {region!r} is not a valid region")
        avoid = list(avoid)
        ip_range = body.get("ip_range") or ""
        ip_range = self._check_range(ip_range, avoid) if ip_range else self._free_range(avoid=avoid)
        return self._add_vpc(name, region, ip_range, str_field(body, "description"), default=False)

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
            name = str_field(body, "name", required=True)
            if not _VPC_NAME.match(name):
                raise invalid("name: VPC names may contain only letters, numbers, '.' and '-' (at most 64)")
            if any(v["name"] == name and v["id"] != vpc_id for v in self.vpcs.values()):
                raise invalid(f"name: a VPC named {name} already exists")
            vpc["name"] = name
        if "description" in body or not partial:
            vpc["description"] = str_field(body, "description")
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

"""What DigitalOcean (and the local backend imitating it) offers: sizes, regions, images, limits.

The tables the spec is checked against; :mod:`platform_ctl.emulator` serves the same ones.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """A DigitalOcean droplet size; the local backend turns it into Docker CPU and memory limits."""

    slug: str
    vcpus: int
    memory_mb: int


def _sizes(*rows: tuple[str, int, int]) -> dict[str, Size]:
    return {slug: Size(slug, vcpus, memory_mb) for slug, vcpus, memory_mb in rows}


#: Droplet sizes platform-ctl knows (slug -> vCPUs, memory), from DigitalOcean's size list.
SIZES: dict[str, Size] = _sizes(
    ("s-1vcpu-1gb", 1, 1024),
    ("s-1vcpu-2gb", 1, 2048),
    ("s-2vcpu-2gb", 2, 2048),
    ("s-2vcpu-4gb", 2, 4096),
    ("s-4vcpu-8gb", 4, 8192),
    ("s-8vcpu-16gb", 8, 16384),
    ("g-2vcpu-8gb", 2, 8192),
    ("g-4vcpu-16gb", 4, 16384),
    ("g-8vcpu-32gb", 8, 32768),
    ("m-2vcpu-16gb", 2, 16384),
    ("m-4vcpu-32gb", 4, 32768),
    ("c-2", 2, 4096),
    ("c-4", 4, 8192),
    ("c-8", 8, 16384),
)

#: DigitalOcean regions droplets, block volumes and VPCs are all offered in.
DO_REGIONS: tuple[str, ...] = (
    "nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1",
)  # fmt: skip

#: The only image: the local droplet image is built from the same Debian release.
IMAGES: tuple[str, ...] = ("debian-12-x64",)

PROVIDERS: tuple[str, ...] = ("local", "digitalocean")

#: DigitalOcean block volume size limits (GB).
VOLUME_GB_MIN = 1
VOLUME_GB_MAX = 16384

#: Ranges DigitalOcean keeps for itself (DOKS pods/services and internal use); a VPC may not overlap
#: them. https://docs.digitalocean.com/products/networking/vpc/concepts/plan-your-network/
DO_RESERVED_NETWORKS: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(net) for net in ("10.229.0.0/16", "10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/24")
)

_RFC1918: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
VPC_PREFIX_MIN = 16
VPC_PREFIX_MAX = 28
#: Addresses of a VPC no host can have: network, gateway and broadcast.
_VPC_RESERVED_ADDRESSES = 3

#: DigitalOcean volume names: lower-case letters, digits and '-', at most 64 characters.
_MAX_VOLUME_NAME = 64

#: DigitalOcean's API; a rehearsal points an environment at the emulator instead.
DO_API_ENDPOINT = "https://api.digitalocean.com"

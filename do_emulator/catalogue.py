"""What DigitalOcean offers: droplet sizes, regions and public images, as ``GET /v2/sizes``,
``/v2/regions`` and ``/v2/images`` show them.

Written from DigitalOcean's own descriptions, not from platform-ctl's tables, so that a mistake in
the product's size or region list (a slug DigitalOcean does not have, a wrong vCPU count or memory)
is refused by the emulator as the API would refuse it (422), or caught by the cross-check in
``tests/unit/test_do_emulator_catalogue.py``. Sources read:

* DigitalOcean's OpenAPI description (github.com/digitalocean/openapi,
  ``specification/resources/sizes/models/size.yml``, ``.../regions/models/region.yml`` and the
  ``responses/all_sizes.yml`` / ``all_regions.yml`` examples): the fields, memory in MB, disk in
  GB, transfer in TB, region features;
* ``doctl compute size list`` as published with today's prices (Basic s-1vcpu-512mb-10gb to
  s-2vcpu-8gb-amd; c-2: 4 GB, 2 vCPUs, 25 GB, 4 TB, $42; hourly = monthly / 672) and as published
  in 2020 (memory, vCPUs and disk of s-8vcpu-16gb, g-2vcpu-8gb, g-4vcpu-16gb, m-2vcpu-16gb, c-4);
  a published ``/v2/sizes`` body for the disks of g-8vcpu-32gb and m-4vcpu-32gb (100 GB);
* docs.digitalocean.com, Droplet plans: Basic is shared CPU; General Purpose has 4 GB, CPU-Optimized
  2 GB, Memory-Optimized 8 GB of memory per dedicated vCPU (which fixes the memory of the g-, c-
  and m- sizes from their vCPUs).

Not confirmed from a page read in full: the monthly prices and transfer of the dedicated-CPU sizes
other than c-2, the disk of c-8 (100 GB), s-4vcpu-8gb's and s-8vcpu-16gb's transfer, and which
old regions (nyc2, sfo1, ams2) no longer take new droplets. Only the sizes a test or a spec may
name are listed; every size is offered in every available region (DigitalOcean offers some
dedicated-CPU sizes in fewer regions).
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

#: Hours DigitalOcean bills per month at most: the hourly price is the monthly one over 672.
HOURS_PER_MONTH = 672

# (slug, plan, vCPUs, memory MB, disk GB, transfer TB, USD per month)
_SIZES: tuple[tuple[str, str, int, int, int, float, float], ...] = (
    ("s-1vcpu-512mb-10gb", "Basic", 1, 512, 10, 0.5, 4.0),
    ("s-1vcpu-1gb", "Basic", 1, 1024, 25, 1.0, 6.0),
    ("s-1vcpu-2gb", "Basic", 1, 2048, 50, 2.0, 12.0),
    ("s-2vcpu-2gb", "Basic", 2, 2048, 60, 3.0, 18.0),
    ("s-2vcpu-4gb", "Basic", 2, 4096, 80, 4.0, 24.0),
    ("s-2vcpu-8gb-amd", "Basic AMD", 2, 8192, 100, 5.0, 42.0),
    ("s-4vcpu-8gb", "Basic", 4, 8192, 160, 5.0, 48.0),
    ("s-8vcpu-16gb", "Basic", 8, 16384, 320, 6.0, 96.0),
    ("g-2vcpu-8gb", "General Purpose", 2, 8192, 25, 4.0, 63.0),
    ("g-4vcpu-16gb", "General Purpose", 4, 16384, 50, 5.0, 126.0),
    ("g-8vcpu-32gb", "General Purpose", 8, 32768, 100, 6.0, 252.0),
    ("c-2", "CPU-Optimized", 2, 4096, 25, 4.0, 42.0),
    ("c-4", "CPU-Optimized", 4, 8192, 50, 5.0, 84.0),
    ("c-8", "CPU-Optimized", 8, 16384, 100, 6.0, 168.0),
    ("m-2vcpu-16gb", "Memory-Optimized", 2, 16384, 50, 4.0, 84.0),
    ("m-4vcpu-32gb", "Memory-Optimized", 4, 32768, 100, 5.0, 168.0),
)

# (slug, name, takes new droplets)
_REGIONS: tuple[tuple[str, str, bool], ...] = (
    ("nyc1", "New York 1", True), ("nyc2", "New York 2", False), ("nyc3", "New York 3", True),
    ("sfo1", "San Francisco 1", False), ("sfo2", "San Francisco 2", True), ("sfo3", "San Francisco 3", True),
    ("ams2", "Amsterdam 2", False), ("ams3", "Amsterdam 3", True), ("sgp1", "Singapore 1", True),
    ("lon1", "London 1", True), ("fra1", "Frankfurt 1", True), ("tor1", "Toronto 1", True),
    ("blr1", "Bangalore 1", True), ("syd1", "Sydney 1", True), ("atl1", "Atlanta 1", True),
)  # fmt: skip
_REGION_FEATURES = ("backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer")

# (id, slug, distribution, name, minimum disk GB). The ids are the emulator's own.
_IMAGES: tuple[tuple[int, str, str, str, int], ...] = (
    (138000001, "debian-12-x64", "Debian", "12 x64", 15),
    (138000002, "debian-11-x64", "Debian", "11 x64", 15),
    (138000003, "ubuntu-22-04-x64", "Ubuntu", "22.04 (LTS) x64", 15),
    (138000004, "ubuntu-24-04-x64", "Ubuntu", "24.04 (LTS) x64", 15),
    (138000005, "rockylinux-9-x64", "Rocky Linux", "9 x64", 15),
)

#: Regions that take new droplets, volumes and VPCs.
AVAILABLE_REGIONS: tuple[str, ...] = tuple(slug for slug, _, available in _REGIONS if available)

#: slug -> the size object of ``GET /v2/sizes``.
SIZES: dict[str, Json] = {
    slug: {
        "slug": slug, "memory": memory, "vcpus": vcpus, "disk": disk, "transfer": transfer,
        "price_monthly": monthly, "price_hourly": round(monthly / HOURS_PER_MONTH, 5),
        "regions": list(AVAILABLE_REGIONS), "available": True, "description": plan,
    }
    for slug, plan, vcpus, memory, disk, transfer, monthly in _SIZES
}

#: slug -> the region object of ``GET /v2/regions``.
REGIONS: dict[str, Json] = {
    slug: {
        "slug": slug, "name": name, "available": available, "features": list(_REGION_FEATURES),
        "sizes": list(SIZES) if available else [],
    }
    for slug, name, available in _REGIONS
}

#: slug -> the image object of ``GET /v2/images``.
IMAGES: dict[str, Json] = {
    slug: {
        "id": image_id, "name": name, "distribution": distro, "slug": slug, "public": True,
        "regions": list(AVAILABLE_REGIONS), "created_at": "2024-01-01T00:00:00Z", "min_disk_size": disk,
        "type": "base", "size_gigabytes": 2.36, "description": f"{distro} {name}", "tags": [],
        "status": "available", "error_message": "",
    }
    for image_id, slug, distro, name, disk in _IMAGES
}


def size(slug: object) -> Json | None:
    """The size ``slug`` names (case-insensitive), or None when DigitalOcean has no such size."""
    return SIZES.get(slug.lower()) if isinstance(slug, str) else None


def region(slug: object) -> Json | None:
    """The region ``slug`` names if it takes new resources, else None."""
    found = REGIONS.get(slug.lower()) if isinstance(slug, str) else None
    return found if found is not None and found["available"] else None


def image(ref: object) -> Json | None:
    """The public image a slug or an integer id names, or None."""
    if isinstance(ref, str):
        return IMAGES.get(ref)
    if isinstance(ref, int) and not isinstance(ref, bool):
        return next((i for i in IMAGES.values() if i["id"] == ref), None)
    return None

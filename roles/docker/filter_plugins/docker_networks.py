"""Filters of the docker role: which address pools collide with networks the platform uses."""

from __future__ import annotations

import ipaddress
from typing import Any


def docker_pool_problems(pools: list[dict[str, Any]], reserved: list[str]) -> list[str]:
    """One line per unusable pool: not a network, a size it cannot split into, or an overlap."""
    problems = []
    for pool in pools:
        base, size = pool.get("base"), pool.get("size")
        try:
            network = ipaddress.ip_network(str(base), strict=True)
        except ValueError:
            problems.append(f"{base!r} is not a network address/prefix (e.g. 172.30.0.0/16)")
            continue
        if not isinstance(size, int) or not network.prefixlen <= size <= network.max_prefixlen:
            problems.append(f"{base}: size {size!r} is not a prefix from /{network.prefixlen} to /{network.max_prefixlen}")
        for other in reserved:
            taken = ipaddress.ip_network(other, strict=False)
            if taken.version == network.version and network.overlaps(taken):
                problems.append(f"{base} overlaps {other}")
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"docker_pool_problems": docker_pool_problems}

"""What the platform needs: the host group rules, pinnable versions and MinIO's erasure coding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from platform_ctl.catalogue import VERSION_FORMATS as CATALOGUE_VERSIONS
from platform_ctl.catalogue import VersionFormat

#: MinIO erasure set sizes (drives per set); one drive per MinIO host here.
ERASURE_SET_SIZES = range(4, 17)


@dataclass(frozen=True)
class GroupRule:
    """What the platform needs of one host group.

    Attributes:
        group: the group (and Ansible group) name.
        required: whether the platform cannot work without at least one host of it.
        min_count: smallest count when the group has hosts (a required group needs at least this).
        max_count: largest count, or None for no limit besides the VPC's size.
        volume: whether hosts get a data volume: "required", "optional" or "none".
        name_prefix: default host name prefix; hosts are ``<prefix><n>`` with n from 1.
        min_memory_mb: smallest droplet memory the component runs in.
        erasure_coded: MinIO: the count must split into erasure sets of 4..16 drives.
    """

    group: str
    required: bool
    min_count: int
    max_count: int | None
    volume: Literal["required", "optional", "none"]
    name_prefix: str
    min_memory_mb: int
    erasure_coded: bool = False

    def count_allowed(self) -> str:
        """The allowed counts, in words, for error messages."""
        if self.erasure_coded:
            return (
                f"{self.min_count} or more hosts, divisible by an erasure set size from "
                f"{ERASURE_SET_SIZES.start} to {ERASURE_SET_SIZES.stop - 1} (e.g. 4, 6, 8, 12, 16)"
            )
        if self.min_count == self.max_count:
            text = f"exactly {self.min_count}"
        elif self.max_count is None:
            text = f"{self.min_count} or more"
        else:
            text = f"{self.min_count}..{self.max_count}"
        if not self.required:
            text = f"0 (no {self.group} hosts) or {text}"
        return text


def _rules(*rules: GroupRule) -> dict[str, GroupRule]:
    return {rule.group: rule for rule in rules}


#: Every host group, in deployment/host order. The one place group rules are defined.
#: Trino needs 4 GB to fit a useful heap beside the OS; MinIO and PostgreSQL start in 1 GB. Apps:
#: Dagster and JupyterLab running the example pipeline and a kernel held 862 MiB anonymous memory
#: on a 2 GB droplet (its page cache filled the rest, no OOM kill; measured in the e2e run, README
#: "Sizing the apps hosts"): 2 GB runs the example, real projects want 4 GB or more.
GROUP_RULES: dict[str, GroupRule] = _rules(
    GroupRule("trino_coordinator", True, 1, 1, "none", "trino-coord", 4096),
    GroupRule("trino_worker", False, 1, 64, "none", "trino-worker", 4096),
    GroupRule("minio", True, 4, None, "required", "minio", 1024, erasure_coded=True),
    GroupRule("postgres", True, 1, 1, "required", "pg", 1024),
    GroupRule("monitoring", True, 1, 1, "optional", "mon", 2048),
    GroupRule("apps", False, 1, 8, "optional", "apps", 2048),
)

#: The group whose hosts always run Docker Engine (JupyterLab and Dagster run on it).
DOCKER_GROUP = "apps"

#: Components whose version the spec may pin, and the form each version takes (the catalogue's).
VERSION_FORMATS: dict[str, VersionFormat] = CATALOGUE_VERSIONS


# --------------------------------------------------------------------------------------------------
# MinIO erasure coding
# --------------------------------------------------------------------------------------------------


def erasure_set_size(drives: int) -> int | None:
    """The erasure set size MinIO picks for ``drives`` drives in one pool, or None if none fits.

    With one drive per node every divisor is symmetric across nodes, so MinIO takes the largest
    divisor from 4 to 16 (cmd/endpoint-ellipses.go, ``getSetIndexes``).
    """
    sizes = [s for s in ERASURE_SET_SIZES if drives % s == 0]
    return max(sizes) if sizes and drives > 0 else None


def pool_size_problem(hosts: int) -> str | None:
    """Why ``hosts`` cannot be one MinIO server pool (one drive per host), or None if it can."""
    if hosts < ERASURE_SET_SIZES.start:
        return (f"a pool of {hosts} hosts is smaller than MinIO's smallest erasure set "
                f"({ERASURE_SET_SIZES.start} drives)")
    if erasure_set_size(hosts) is None:
        return (f"a pool of {hosts} hosts cannot form erasure sets (no set size from {ERASURE_SET_SIZES.start} "
                f"to {ERASURE_SET_SIZES.stop - 1} divides {hosts})")
    return None


def default_parity(set_size: int) -> int:
    """MinIO's default STANDARD parity for a set size (``getDefaultParityBlocks``)."""
    if set_size <= 1:
        return 0
    if set_size <= 3:
        return 1
    if set_size <= 5:
        return 2
    if set_size <= 7:
        return 3
    return 4


def _nearest_erasure_counts(count: int) -> list[int]:
    below = next((n for n in range(count - 1, 3, -1) if erasure_set_size(n)), None)
    above = next(n for n in range(max(count + 1, 4), count + 64) if erasure_set_size(n))
    return [n for n in (below, above) if n is not None]

"""Plans derived from a spec: the hosts and volumes it makes, and a digest of what it deploys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from platform_ctl.spec.provider import Size
from platform_ctl.spec.rules import GROUP_RULES

if TYPE_CHECKING:
    from platform_ctl.spec.models import Spec


@dataclass(frozen=True)
class VolumePlan:
    """A block volume: DigitalOcean volume name ``<env>-<host>-data`` and its size."""

    name: str
    size_gb: int


@dataclass(frozen=True)
class HostPlan:
    """One planned host ("droplet"): name, Ansible groups, size, data volumes and FQDN."""

    name: str
    groups: tuple[str, ...]
    size: Size
    volumes: tuple[VolumePlan, ...]
    fqdn: str


def spec_digest(spec: Spec) -> str:
    """A stable sha256 of what the spec deploys, for change detection.

    Normalised so that equivalent specs hash alike: absent groups and groups of count 0, a default
    name prefix given or not, and MinIO's default parity or single pool given or not.
    """
    data = spec.model_dump(mode="json")
    data["groups"] = {
        group: {**spec.groups[group].model_dump(mode="json"), "name_prefix": spec.prefix(group)}
        for group in GROUP_RULES
        if spec.count(group) > 0
    }
    data["minio"] = {**data["minio"], "parity": spec.minio_parity(), "pools": list(spec.minio_pools())}
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()

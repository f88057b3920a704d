"""Infrastructure backends. Each turns a spec into running hosts and reports the same host list
(platform_ctl.infra.hosts); :func:`backend_for` picks the spec's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from platform_ctl.access import Access
from platform_ctl.infra.hosts import Backend, Host, HostStatus, PlanSummary, Volume, volume_device

if TYPE_CHECKING:
    from platform_ctl.spec import Spec

__all__ = ["Access", "Backend", "Host", "HostStatus", "PlanSummary", "Volume", "backend_for", "volume_device"]


def backend_for(spec: Spec, state_dir: Path, env_dir: Path) -> Backend:
    if spec.provider == "local":
        from platform_ctl.infra.local import LocalBackend

        return LocalBackend(state_dir)
    from platform_ctl.infra.digitalocean import DigitalOceanBackend

    return DigitalOceanBackend(state_dir, env_dir)

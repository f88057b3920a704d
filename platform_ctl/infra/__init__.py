"""Infrastructure backends. Each turns a spec into running hosts and reports the same host list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from platform_ctl.events import Reporter
    from platform_ctl.spec import Size, Spec


@dataclass(frozen=True)
class Volume:
    name: str
    size_gb: int
    #: The path a role formats and mounts, as DigitalOcean names it.
    device: str


@dataclass(frozen=True)
class Host:
    """A host as the infrastructure reports it; everything after infrastructure reads only this."""

    name: str
    fqdn: str
    groups: tuple[str, ...]
    private_ip: str
    public_ip: str
    size: Size
    volumes: tuple[Volume, ...]


@dataclass(frozen=True)
class HostStatus:
    name: str
    groups: tuple[str, ...]
    state: str  # running / stopped / missing
    address: str
    ssh: bool


@dataclass(frozen=True)
class Access:
    """How the controller reaches the hosts over SSH."""

    user: str
    private_key: Path
    public_key: str
    known_hosts: Path


def volume_device(name: str) -> str:
    """The by-id path DigitalOcean gives an attached volume (and the local backend imitates)."""
    return f"/dev/disk/by-id/scsi-0DO_Volume_{name}"


class Backend(Protocol):
    def preflight(self, spec: Spec) -> None: ...

    def apply(self, spec: Spec, access: Access, report: Reporter) -> list[Host]: ...

    def retire(self, spec: Spec, access: Access, names: list[str], report: Reporter) -> list[Host]:
        """Remove the hosts ``names``, which ``spec`` no longer has, and nothing else; return its hosts."""
        ...

    def hosts(self, spec: Spec) -> list[Host]: ...

    def status(self, spec: Spec) -> list[HostStatus]: ...

    def destroy(self, spec: Spec, report: Reporter, with_data: bool) -> list[str]:
        """Remove the environment; return the names of volumes kept because they are protected."""
        ...


def backend_for(spec: Spec, state_dir: Path, env_dir: Path) -> Backend:
    if spec.provider == "local":
        from platform_ctl.infra.local import LocalBackend

        return LocalBackend(state_dir)
    from platform_ctl.infra.digitalocean import DigitalOceanBackend

    return DigitalOceanBackend(state_dir, env_dir)

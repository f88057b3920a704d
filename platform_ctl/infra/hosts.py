"""What every infrastructure backend reports (hosts, their state, volumes, a plan) and the protocol
backends implement. Nothing here imports a backend: they import this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from platform_ctl.access import Access
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


@dataclass
class PlanSummary:
    """What a backend's apply would change: counts, and (action, what) per change."""

    add: int = 0
    change: int = 0
    remove: int = 0
    #: (action, resource address or host) of every planned change.
    changes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.remove)

    def line(self) -> str:
        return f"{self.add} to add, {self.change} to change, {self.remove} to destroy"


def volume_device(name: str) -> str:
    """The by-id path DigitalOcean gives an attached volume (and the local backend imitates)."""
    return f"/dev/disk/by-id/scsi-0DO_Volume_{name}"


class Backend(Protocol):
    def preflight(self, spec: Spec) -> None: ...

    def apply(self, spec: Spec, access: Access, report: Reporter) -> list[Host]: ...

    def retire(self, spec: Spec, access: Access, names: list[str], report: Reporter) -> list[Host]:
        """Remove the hosts ``names``, which ``spec`` no longer has, and nothing else; return its hosts."""
        ...

    def plan(self, spec: Spec, access: Access, report: Reporter) -> PlanSummary:
        """What ``apply`` would change, changing nothing (``deploy --check``)."""
        ...

    def hosts(self, spec: Spec) -> list[Host]: ...

    def status(self, spec: Spec) -> list[HostStatus]: ...

    def destroy(self, spec: Spec, report: Reporter, with_data: bool) -> list[str]:
        """Remove the environment; return the names of volumes kept because they are protected."""
        ...

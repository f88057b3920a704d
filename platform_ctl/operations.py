"""Day-1 operations besides deploy: status, destroy, ssh, and the rules the commands apply to them.

The rules live here, not in the CLI: which exit code status returns (:attr:`StatusReport.exit_code`)
and what destroy must be confirmed with (:func:`confirm_destroy`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from platform_ctl.access import ssh_options
from platform_ctl.engine import Once, Step, StepsResult, run_operation
from platform_ctl.errors import UsageError
from platform_ctl.events import Event, Reporter, discard

if TYPE_CHECKING:
    from platform_ctl.environment import Environment
    from platform_ctl.infra import HostStatus
    from platform_ctl.monitoring import MonitoringStatus


def status(env: Environment) -> list[HostStatus]:
    """Every host of the spec with its state and whether SSH answers."""
    return env.backend.status(env.spec)


@dataclass(frozen=True)
class StatusReport:
    """What ``status`` shows: every host, and the environment's monitoring or why it was not read.

    Attributes:
        hosts: each host of the spec with its state and whether SSH answers.
        monitoring: the targets and alerts of a monitoring host, or None when none could be read.
        unavailable: why ``monitoring`` is None ("" when it was read).
    """

    hosts: list[HostStatus]
    monitoring: MonitoringStatus | None
    unavailable: str

    @property
    def exit_code(self) -> int:
        """1 when a host is not running or does not answer SSH, a service is down, or the monitoring
        could not be read; else 0. Firing alerts alone do not change it."""
        hosts_up = all(h.state == "running" and h.ssh for h in self.hosts)
        if not hosts_up or self.monitoring is None or self.monitoring.down:
            return 1
        return 0


def status_report(env: Environment) -> StatusReport:
    """The hosts' states, then the monitoring read through SSH to a monitoring host (if any answers)."""
    from platform_ctl.monitoring import MonitoringUnavailable, read

    hosts = status(env)
    try:
        monitoring = read(env) if any(h.ssh for h in hosts) else None
        unavailable = "" if monitoring else "no host answers SSH"
    except MonitoringUnavailable as exc:
        monitoring, unavailable = None, exc.message
    return StatusReport(hosts, monitoring, unavailable)


def confirm_destroy(env: Environment, *, with_data: bool, yes: bool, typed_name: str | None,
                    ask_name: Callable[[str], str], ask_yes: Callable[[str], object]) -> None:
    """Destroy's confirmation rule: returns when ``env`` may be destroyed, else raises.

    - A local environment needs no confirmation.
    - A DigitalOcean environment without data volumes: ``ask_yes`` asks (and aborts on no) unless
      ``yes`` (--yes).
    - One with data volumes needs ``with_data`` (--with-data; volumes protected by
      ``allow_volume_deletion: false`` are kept even then) and the environment's name typed:
      ``typed_name`` (--confirm), else the answer to ``ask_name``. --yes does not replace it.

    Raises:
        UsageError: --with-data is missing, or the name typed is not the environment's.
    """
    if env.spec.provider == "local":
        return
    volumes = [v.name for h in env.spec.hosts() for v in h.volumes]
    if volumes and not with_data:
        raise UsageError(
            f"{env.name} has {len(volumes)} data volume(s) ({', '.join(volumes[:3])}"
            f"{', …' if len(volumes) > 3 else ''}): `platform-ctl destroy {env.name} --with-data` removes it with "
            "its data (volumes protected by allow_volume_deletion: false are kept)")
    if volumes:
        typed = typed_name if typed_name is not None else ask_name(
            f"This deletes {env.name}'s droplets and unprotected volumes. Type the environment's name to confirm")
        if typed != env.name:
            raise UsageError(f"confirmation {typed!r} is not {env.name!r}: nothing destroyed")
    elif not yes:
        ask_yes(f"Destroy every host of {env.name}?")


def destroy(env: Environment, report: Reporter = discard, with_data: bool = False) -> None:
    """Remove the environment's hosts; volumes too when ``with_data`` or the spec allows deletion.

    With the data deleted, the state directory goes too; otherwise it keeps ``volumes/`` (the local
    volume files, or the record of DigitalOcean volumes kept because they are protected).
    """
    delete_data = with_data or env.spec.allow_volume_deletion

    def remove() -> dict[str, object]:
        kept = env.backend.destroy(env.spec, report, with_data=delete_data)
        if not kept and env.state_dir.exists():
            shutil.rmtree(env.state_dir)
            report(Event("message", phase="destroy", message=f"removed {env.state_dir}"))
        elif env.state_dir.exists():
            for child in env.state_dir.iterdir():
                if child.name != "volumes":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        return {"volumes_kept": kept}

    # The history lives next to the state directory, so the record of the destroy outlives it.
    run_operation(env, "destroy", [Step("destroy", "remove every host" + (" and volume" if delete_data else ""),
                                        remove)], Once(), StepsResult(False), discard, with_data=delete_data)


def ssh_argv(env: Environment, host: str, command: tuple[str, ...] = ()) -> list[str]:
    """The ssh command line that opens a shell (or runs ``command``) on ``host``."""
    names = {h.name: h for h in env.backend.hosts(env.spec)}
    if host not in names:
        raise UsageError(f"no host {host!r} in {env.name}; hosts: {', '.join(names)}")
    access = env.access(create=False)
    return ["ssh", *ssh_options(access), f"{access.user}@{names[host].public_ip}", *command]

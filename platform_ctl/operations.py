"""Day-1 operations besides deploy: status, destroy, ssh."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from platform_ctl.access import ssh_options
from platform_ctl.engine import Once, Step, StepsResult, run_operation
from platform_ctl.errors import PlatformCtlError
from platform_ctl.events import Event, Reporter, discard

if TYPE_CHECKING:
    from platform_ctl.environment import Environment
    from platform_ctl.infra import HostStatus


def status(env: Environment) -> list[HostStatus]:
    """Every host of the spec with its state and whether SSH answers."""
    return env.backend.status(env.spec)


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
        raise PlatformCtlError(f"no host {host!r} in {env.name}; hosts: {', '.join(names)}", 2)
    access = env.access(create=False)
    return ["ssh", *ssh_options(access), f"{access.user}@{names[host].public_ip}", *command]

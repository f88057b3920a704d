"""SSH access to an environment's hosts: the admin user, its key pair and the known host keys."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from platform_ctl.errors import PreflightError

if TYPE_CHECKING:
    from platform_ctl.spec import Spec


@dataclass(frozen=True)
class Access:
    """How the controller reaches the hosts over SSH."""

    user: str
    private_key: Path
    public_key: str
    known_hosts: Path


def ensure_access(spec: Spec, state_dir: Path, create: bool = True) -> Access:
    """The environment's SSH identity: the spec's key, or an ed25519 key generated for it."""
    ssh_dir = state_dir / "ssh"
    if spec.ssh_public_key_file is not None:
        public = Path(spec.ssh_public_key_file).expanduser()
        private = public.with_suffix("")
        for p in (public, private):
            if not p.exists():
                raise PreflightError(f"ssh_public_key_file {spec.ssh_public_key_file}: {p} does not exist")
    else:
        private = ssh_dir / "id_ed25519"
        public = private.with_name("id_ed25519.pub")
        if not private.exists():
            if not create:
                raise PreflightError(f"environment {spec.name!r} has no SSH key yet: deploy it first")
            ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"platform-ctl-{spec.name}", "-f", str(private)],
                check=True,
            )
    return Access(
        user=spec.admin_user,
        private_key=private,
        public_key=public.read_text().strip(),
        known_hosts=ssh_dir / "known_hosts",
    )


def ssh_options(access: Access) -> list[str]:
    """Options every SSH client of the platform uses: our key, our known hosts, strict checking."""
    return [
        "-i", str(access.private_key),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={access.known_hosts}",
        "-o", "StrictHostKeyChecking=yes",
    ]


def ssh_answers(address: str, port: int = 22, timeout: float = 2.0) -> bool:
    """True when an SSH server greets on ``address:port``."""
    if not address:
        return False
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_ssh(addresses: dict[str, str], timeout: float = 120) -> list[str]:
    """Wait until every address greets with SSH; return the hosts that never did."""
    deadline = time.monotonic() + timeout
    pending = dict(addresses)
    while pending and time.monotonic() < deadline:
        pending = {h: a for h, a in pending.items() if not ssh_answers(a)}
        if pending:
            time.sleep(1)
    return sorted(pending)

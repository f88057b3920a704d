"""The local droplet image: Debian 12 from debootstrap, the release of DigitalOcean's debian-12-x64.

The image is rebuilt only when its recipe changes. The recipe's digest (package list, customisation
script, and the machine's CA bundle, which the image must trust to reach package registries) names
both the cached root-filesystem tarball under ``~/.cache/platform-ctl/images/`` and the Docker tag.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from platform_ctl.errors import PreflightError
from platform_ctl.paths import cache_dir

REPOSITORY = "platform-ctl/droplet"
#: A stable alias that Molecule scenarios use; always points at the current recipe's build.
ALIAS = f"{REPOSITORY}:debian12"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# What DigitalOcean's debian-12-x64 has and Ansible needs to reach a host: systemd, sshd, python3,
# sudo. Everything else is the roles' job, so they are exercised against a bare image.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "sudo",
    "ca-certificates", "iproute2", "iputils-ping", "curl", "gnupg", "less", "procps", "kmod",
)

# Runs inside the debootstrapped tree (chroot) after the install.
CUSTOMISE = r"""
set -eu
cat > /etc/apt/sources.list <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
update-ca-certificates >/dev/null
# Every container must get its own SSH host keys and machine id, generated on first boot.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > /etc/systemd/system/ssh.service.d/10-hostkeys.conf
systemctl enable ssh >/dev/null 2>&1
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# No consoles and no udev in a container.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
            systemd-udev-trigger.service systemd-udev-settle.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
# udev's part for block volumes (there is no udev in a container): at every boot, link each
# volume's filesystem UUID under /dev/disk/by-uuid and mount fstab's device entries, which
# systemd's fstab generator ignores in a container. On a droplet, udev and systemd do both.
cat > /usr/local/sbin/platform-local-volumes <<'SCRIPT'
#!/bin/sh
mkdir -p /dev/disk/by-uuid
for dev in /dev/disk/by-id/scsi-0DO_Volume_*; do
  [ -b "$dev" ] || continue
  uuid=$(blkid -s UUID -o value "$dev") && [ -n "$uuid" ] && ln -sfn "$dev" "/dev/disk/by-uuid/$uuid"
done
exec mount -a -t xfs,ext4
SCRIPT
chmod 0755 /usr/local/sbin/platform-local-volumes
cat > /etc/systemd/system/platform-local-volumes.service <<'UNIT'
[Unit]
Description=Link and mount block volumes (udev's part in a local droplet container)
DefaultDependencies=no
After=systemd-remount-fs.service
Before=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/platform-local-volumes

[Install]
WantedBy=local-fs.target
UNIT
systemctl enable platform-local-volumes.service >/dev/null 2>&1
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
"""


def recipe_digest() -> str:
    """Digest of everything that goes into the image."""
    h = hashlib.sha256()
    for part in (SUITE, MIRROR, " ".join(PACKAGES), CUSTOMISE):
        h.update(part.encode())
        h.update(b"\0")
    if HOST_CA_BUNDLE.exists():
        h.update(HOST_CA_BUNDLE.read_bytes())
    return h.hexdigest()[:16]


def image_tag() -> str:
    return f"{REPOSITORY}:{recipe_digest()}"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise PreflightError(f"{' '.join(cmd[:3])} failed (exit {result.returncode}): {' | '.join(tail)}")
    return result


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0


def _build_rootfs_tarball(tarball: Path, say: Callable[[str], None]) -> None:
    if shutil.which("debootstrap") is None:
        raise PreflightError("debootstrap is missing: run scripts/setup.sh (or apt-get install debootstrap)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        say(f"debootstrap {SUITE} into {root} (about a minute)")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR])
        if HOST_CA_BUNDLE.exists():
            shutil.copy(HOST_CA_BUNDLE, root / "usr/local/share/ca-certificates/platform-ctl-host-bundle.crt")
        _run(["chroot", str(root), "/bin/sh", "-c", CUSTOMISE])
        partial = tarball.with_suffix(".partial")
        say(f"packing {tarball.name}")
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(tarball)


def ensure_image(say: Callable[[str], None] = lambda _msg: None) -> str:
    """Make sure the droplet image for the current recipe exists; return its tag."""
    tag = image_tag()
    if not _image_exists(tag):
        tarball = cache_dir() / "images" / f"droplet-{recipe_digest()}.tar"
        if not tarball.exists():
            _build_rootfs_tarball(tarball, say)
        say(f"importing {tarball.name} as {tag}")
        _run([
            "docker", "import",
            "--change", 'CMD ["/sbin/init"]',
            "--change", "ENV container=docker",
            str(tarball), tag,
        ])
    _run(["docker", "tag", tag, ALIAS])
    return tag


if __name__ == "__main__":
    print(ensure_image(say=lambda msg: print(f"image: {msg}", flush=True)))

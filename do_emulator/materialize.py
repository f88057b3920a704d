"""Real local droplets behind the emulated API (``--materialize``).

Each droplet is a systemd container of the project's droplet image (Debian 12, the release of
DigitalOcean's ``debian-12-x64``), created the way the ``local`` backend creates its hosts, plus a
device cgroup rule for loop devices so volumes can be attached while it runs:

* a VPC is a Docker bridge network with the VPC's ``ip_range`` (gateway: its first address);
  droplets get addresses from the 10th host on;
* **one network here**: the droplet's VPC address is reported as both its private and its public
  IPv4 (``ipv4_address`` and ``ipv4_address_private`` are the same), and is reachable from this
  machine, so SSH to ``ipv4_address`` works as it does on DigitalOcean;
* before the droplet reports ``active`` the container is up, systemd has finished booting, and
  cloud-init's part is played for the subset of cloud-config platform-ctl writes: ``users`` (name,
  shell, sudo, groups, ssh_authorized_keys), the droplet's ``ssh_keys`` for root (refused with a
  message under ``disable_root``), ``ssh_keys`` host keys (``<type>_private``/``<type>_public``),
  ``ssh_deletekeys``, ``ssh_genkeytypes``; a user-data script (``#!``) is run instead. Other
  cloud-config keys are logged as ignored;
* a volume is a sparse file under the emulator's data directory on a loop device; attaching it
  makes a block device node at ``/dev/disk/by-id/scsi-0DO_Volume_<name>`` in the running container
  (the path DigitalOcean uses), detaching removes the node. After a power on the nodes are made
  again and ``platform-local-volumes`` (the image's stand-in for udev) mounts them;
* a droplet's kernel lets it turn IPv4 forwarding on and Docker's overlay2 storage sits on its
  disk; a container can do neither (read-only ``/proc/sys``, an overlay root), and which droplets
  will run Docker is the platform's business, not the API's. So every droplet is created as the
  local backend creates a Docker host: ``net.ipv4.ip_forward=1`` and an anonymous volume at
  ``/var/lib/docker``. On droplets that run no containers the base role's ``ip_forward = 0`` is
  written but, as every kernel parameter in a container, not applied (``base_sysctl_apply``);
* every container and network is labelled ``platform-ctl.emulator=<name>``; ``cleanup()`` removes
  them, the loop devices and the data directory.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from do_emulator.state import ApiError, Json
from platform_ctl.infra import volume_device
from platform_ctl.infra.local import (
    DOCKER_HOST_SYSCTLS,
    DOCKER_HOST_VOLUME,
    LABEL_EMULATOR,
    LABEL_ENV,
    MACHINE_RESERVE_MB,
    machine_memory_mb,
)
from platform_ctl.paths import cache_dir

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

log = logging.getLogger("do_emulator")

LABEL = LABEL_EMULATOR
LABEL_DROPLET = "platform-ctl.emulator.droplet"
LABEL_VPC = "platform-ctl.emulator.vpc"
#: The only image slug a local droplet can honestly stand in for.
MATERIALIZABLE_IMAGES = ("debian-12-x64",)
BOOT_TIMEOUT = 180.0
LOOP_MAJOR = 7
CLOUD_MARKER = "/var/lib/cloud/instance/boot-finished"
HOST_KEY_TYPES = ("rsa", "ecdsa", "ed25519")
_HANDLED_KEYS = {"users", "ssh_keys", "ssh_deletekeys", "ssh_genkeytypes", "disable_root", "ssh_pwauth",
                 "preserve_hostname", "manage_etc_hosts"}


def data_dir_for(name: str) -> Path:
    """Where an emulator instance keeps volume files and /etc/hosts files by default."""
    return cache_dir() / "emulator" / name


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return done


def loops_of(path: Path) -> list[str]:
    """Loop devices backed by ``path``."""
    return [d["name"] for d in _loop_table() if d["file"] == str(path)]


def _loop_table() -> list[dict[str, str]]:
    out = _run(["losetup", "--json", "--list", "--output", "NAME,BACK-FILE"], check=False).stdout
    rows = (json.loads(out) if out.strip() else {}).get("loopdevices") or []
    return [{"name": r["name"], "file": (r.get("back-file") or "").removesuffix(" (deleted)")} for r in rows]


def cloud_init_script(user_data: str, droplet_keys: list[str]) -> tuple[str, list[str]]:
    """A shell script doing cloud-init's first-boot work for ``user_data``; also the ignored keys."""
    q = shlex.quote
    lines = ["set -eu", "umask 022", "mkdir -p /var/lib/cloud/instance"]
    ignored: list[str] = []
    config: Json = {}
    if user_data.startswith("#!"):
        lines += [f"printf '%s' {q(user_data)} > /var/lib/cloud/instance/user-data.txt",
                  "chmod 0700 /var/lib/cloud/instance/user-data.txt", "/var/lib/cloud/instance/user-data.txt"]
    elif user_data.strip():
        if not user_data.startswith("#cloud-config"):
            raise ValueError("user_data is neither #cloud-config nor a #! script")
        loaded = yaml.safe_load(user_data)
        config = loaded if isinstance(loaded, dict) else {}
        ignored = sorted(set(config) - _HANDLED_KEYS)
    users = [u for u in config.get("users") or [] if isinstance(u, dict) and u.get("name")]
    sudoers: list[str] = []
    for user in users:
        name = str(user["name"])
        shell = str(user.get("shell") or "/bin/bash")
        groups = user.get("groups") or []
        groups = groups.split(",") if isinstance(groups, str) else [str(g) for g in groups]
        groups = [g.strip() for g in groups if g.strip()]
        home = str(user.get("homedir") or f"/home/{name}")
        add = f"useradd --create-home --home-dir {q(home)} --shell {q(shell)} {q(name)}"
        lines += [f"id -u {q(name)} >/dev/null 2>&1 || {add}",
                  f"usermod --shell {q(shell)} {q(name)} 2>/dev/null || true"]
        for group in groups:
            lines += [f"getent group {q(group)} >/dev/null || groupadd {q(group)}",
                      f"usermod -a -G {q(group)} {q(name)}"]
        if user.get("lock_passwd", True):
            lines.append(f"passwd -l {q(name)} >/dev/null 2>&1 || true")
        keys = [str(k).strip() for k in user.get("ssh_authorized_keys") or []]
        if keys:
            lines += [
                f"install -d -m 0700 -o {q(name)} -g $(id -gn {q(name)}) {q(home + '/.ssh')}",
                f"printf '%s\\n' {' '.join(q(k) for k in keys)} > {q(home + '/.ssh/authorized_keys')}",
                f"chown {q(name)}:$(id -gn {q(name)}) {q(home + '/.ssh/authorized_keys')}",
                f"chmod 0600 {q(home + '/.ssh/authorized_keys')}",
            ]
        sudo = user.get("sudo")
        rules = [sudo] if isinstance(sudo, str) else [str(r) for r in sudo] if isinstance(sudo, list) else []
        sudoers += [f"{name} {rule}" for rule in rules]
    if sudoers:
        lines += [f"printf '%s\\n' {' '.join(q(s) for s in sudoers)} > /etc/sudoers.d/90-cloud-init-users",
                  "chmod 0440 /etc/sudoers.d/90-cloud-init-users"]
    if droplet_keys:
        root_keys = droplet_keys
        if config.get("disable_root", False):  # DigitalOcean's images set disable_root: false
            first = str(users[0]["name"]) if users else "debian"
            prefix = ('no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo \'Please login as '
                      f'the user \\"{first}\\" rather than the user \\"root\\".\';echo;sleep 10;exit 142" ')
            root_keys = [prefix + k.strip() for k in droplet_keys]
        lines += ["install -d -m 0700 /root/.ssh",
                  f"printf '%s\\n' {' '.join(q(k) for k in root_keys)} > /root/.ssh/authorized_keys",
                  "chmod 0600 /root/.ssh/authorized_keys"]
    host_keys = config.get("ssh_keys") or {}
    if isinstance(host_keys, dict) and host_keys:
        if config.get("ssh_deletekeys", True):
            lines.append("rm -f /etc/ssh/ssh_host_*key*")
        for kind in HOST_KEY_TYPES:
            private, pub = host_keys.get(f"{kind}_private"), host_keys.get(f"{kind}_public")
            path = f"/etc/ssh/ssh_host_{kind}_key"
            if private:
                lines += [f"printf '%s\\n' {q(str(private).strip())} > {path}", f"chmod 0600 {path}",
                          f"chown root:root {path}"]
            if pub:
                lines += [f"printf '%s\\n' {q(str(pub).strip())} > {path}.pub", f"chmod 0644 {path}.pub"]
    if "ssh_genkeytypes" in config:
        kinds = [str(k) for k in config.get("ssh_genkeytypes") or [] if str(k) in HOST_KEY_TYPES]
        for kind in kinds:
            path = f"/etc/ssh/ssh_host_{kind}_key"
            lines.append(f"[ -e {path} ] || ssh-keygen -q -N '' -t {kind} -f {path}")
        # The image makes every missing key type when ssh starts; cloud-init makes only these.
        lines += ["printf '[Service]\\nExecStartPre=\\nExecStartPre=/usr/sbin/sshd -t\\n' "
                  "> /etc/systemd/system/ssh.service.d/20-cloud-init-genkeytypes.conf",
                  "systemctl daemon-reload"]
    if config.get("ssh_pwauth") is False:
        lines.append("printf 'PasswordAuthentication no\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf")
    lines += ["systemctl restart ssh", f"touch {CLOUD_MARKER}"]
    return "\n".join(lines) + "\n", ignored


class Materializer:
    """Builds and tears down the local droplets, networks and volumes of one emulator instance.

    Every method but :meth:`check_create` and :meth:`busy_networks` blocks and runs in the
    emulator's background jobs; errors are raised as exceptions.
    """

    def __init__(self, name: str, data_dir: Path | None = None, image: str | None = None) -> None:
        self.name = name
        self.data_dir = data_dir or data_dir_for(name)
        self._image = image
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._image_lock = threading.Lock()
        self._net_lock = threading.Lock()
        self._busy_cache: tuple[float, list[str]] = (0.0, [])

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                import docker

                self._client = docker.from_env(timeout=300)
                self._client.ping()
            return self._client

    def image(self) -> str:
        with self._image_lock:
            if self._image is None:
                from platform_ctl.infra.image import ensure_image

                self._image = ensure_image(say=lambda m: log.info("image: %s", m))
            return self._image

    def prepare(self) -> None:
        """Check Docker and loop devices now; build the droplet image in the background.

        The image (a debootstrap, about a minute when it is not cached) is waited for by the first
        droplet create only, so the API answers at once.
        """
        self.client  # noqa: B018 - connects or raises
        if not Path("/dev/loop-control").exists():
            raise RuntimeError("loop devices are not available (/dev/loop-control missing): run scripts/setup.sh")

        def build() -> None:
            try:
                self.image()
            except Exception:
                log.exception("building the droplet image failed; droplet creates will fail")

        threading.Thread(target=build, name="emulator-image", daemon=True).start()

    def container_name(self, droplet_id: int) -> str:
        return f"do-{self.name}-{droplet_id}"

    def network_name(self, vpc_id: str) -> str:
        return f"do-{self.name}-{vpc_id[:13]}"

    def volume_file(self, volume_id: str) -> Path:
        return self.data_dir / "volumes" / f"{volume_id}.img"

    def _container(self, droplet_id: int) -> Container | None:
        import docker.errors

        try:
            return self.client.containers.get(self.container_name(droplet_id))
        except docker.errors.NotFound:
            return None

    def _exec(self, container: Container, script: str, *args: str) -> str:
        code, out = container.exec_run(["sh", "-c", script, "sh", *args])
        text = out.decode(errors="replace") if out else ""
        if code != 0:
            raise RuntimeError(f"{container.name}: command failed (exit {code}): {text.strip()[-400:]}")
        return text

    # -- checks, under the server's lock ---------------------------------------------------------
    def check_create(self, memories: list[int], reserved_mb: int, images: list[str]) -> None:
        """422 when an image cannot be built here or the droplets' memory does not fit this machine."""
        for slug in images:
            if slug not in MATERIALIZABLE_IMAGES:
                raise ApiError(422, f"image {slug} cannot be materialized on this machine: local droplets are "
                                    f"Debian 12, use {MATERIALIZABLE_IMAGES[0]}")
        wanted = sum(memories)
        total = machine_memory_mb()
        budget = total - MACHINE_RESERVE_MB
        others = 0
        for label in (LABEL_ENV, LABEL):
            for c in self.client.containers.list(filters={"label": label}):
                if c.labels.get(LABEL) == self.name:
                    continue
                others += int(c.attrs["HostConfig"].get("Memory") or 0) // 1024**2
        free = budget - others - reserved_mb
        if wanted > free:
            raise ApiError(422, f"creating this/these droplet(s) needs {wanted} MiB of memory but this machine can "
                                f"give {max(0, free)} MiB ({total} MiB less {MACHINE_RESERVE_MB} reserved, {others} "
                                f"MiB held by other platform containers, {reserved_mb} MiB by this emulator's "
                                "droplets): use a smaller size or fewer droplets")

    def busy_networks(self) -> list[str]:
        """Subnets of Docker networks that are not this emulator's, which a VPC must not overlap."""
        stamp, cached = self._busy_cache
        if time.monotonic() - stamp < 2:
            return cached
        busy = []
        for net in self.client.networks.list():
            if (net.attrs.get("Labels") or {}).get(LABEL) == self.name:
                continue
            for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
                if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
                    busy.append(cfg["Subnet"])
        self._busy_cache = (time.monotonic(), busy)
        return busy

    # -- networks --------------------------------------------------------------------------------
    def _ensure_network(self, vpc: Json) -> str:
        import docker.types

        name = self.network_name(vpc["id"])
        with self._net_lock:
            existing = self.client.networks.list(names=[name])
            if existing:
                return name
            net = ipaddress.ip_network(vpc["ip_range"])
            ipam = docker.types.IPAMConfig(pool_configs=[
                docker.types.IPAMPool(subnet=str(net), gateway=str(next(net.hosts()))),
            ])
            self.client.networks.create(name, driver="bridge", ipam=ipam,
                                        labels={LABEL: self.name, LABEL_VPC: vpc["id"]})
            self._busy_cache = (0.0, [])
            return name

    def delete_network(self, vpc_id: str) -> None:
        import docker.errors

        deadline = time.monotonic() + 120
        for net in self.client.networks.list(names=[self.network_name(vpc_id)]):
            while True:
                try:
                    net.remove()
                    break
                except docker.errors.APIError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)

    # -- droplets --------------------------------------------------------------------------------
    def _hosts_file(self, spec: Json) -> Path:
        path = self.data_dir / "hosts" / str(spec["id"])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            short = spec["name"].split(".")[0]
            names = spec["name"] if short == spec["name"] else f"{spec['name']} {short}"
            path.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                            f"{spec['address']}\t{names}\n")
        return path

    def _create_container(self, spec: Json) -> Container:
        network = self._ensure_network(spec["vpc"])
        api = self.client.api
        cpus = min(int(spec["vcpus"]), os.cpu_count() or 1)
        networking = api.create_networking_config({
            network: api.create_endpoint_config(ipv4_address=spec["address"]),
        })
        host_config = api.create_host_config(
            cap_add=["SYS_ADMIN", "NET_ADMIN"],
            security_opt=["seccomp=unconfined"],
            tmpfs={"/run": "", "/run/lock": ""},
            binds={
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                str(self._hosts_file(spec)): {"bind": "/etc/hosts", "mode": "rw"},
            },
            cgroupns="host",
            mem_limit=f"{spec['memory']}m",
            memswap_limit=f"{spec['memory']}m",
            nano_cpus=int(cpus * 1e9),
            device_cgroup_rules=[f"b {LOOP_MAJOR}:* rwm"],
            network_mode=network,
            restart_policy={"Name": "unless-stopped"},
            sysctls=DOCKER_HOST_SYSCTLS,
        )
        created = api.create_container(
            image=self.image(),
            name=self.container_name(spec["id"]),
            hostname=spec["name"].split(".")[0][:63],
            labels={LABEL: self.name, LABEL_DROPLET: str(spec["id"])},
            host_config=host_config,
            networking_config=networking,
            stop_signal="SIGRTMIN+3",
            volumes=[DOCKER_HOST_VOLUME],
            detach=True,
        )
        return self.client.containers.get(created["Id"])

    def _wait_booted(self, container: Container) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = ""
        while time.monotonic() < deadline:
            container.reload()
            if container.status != "running":
                raise RuntimeError(f"{container.name} stopped while booting ({container.status})")
            _, out = container.exec_run(["systemctl", "is-system-running"])
            state = (out or b"").decode(errors="replace").strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.25)
        raise RuntimeError(f"{container.name}: systemd did not finish booting within {BOOT_TIMEOUT:.0f}s ({state})")

    def _cloud_init(self, container: Container, spec: Json) -> None:
        code, _ = container.exec_run(["test", "-e", CLOUD_MARKER])
        if code == 0:
            return
        script, ignored = cloud_init_script(spec["user_data"], spec["ssh_keys"])
        if ignored:
            log.warning("droplet %s: cloud-config keys not played by the emulator: %s", spec["name"],
                        ", ".join(ignored))
        self._exec(container, script)

    def create_droplet(self, spec: Json) -> None:
        """Container up, systemd booted, volumes attached, cloud-init done."""
        for volume in spec["volumes"]:
            self.create_volume(volume)
        container = self._container(spec["id"]) or self._create_container(spec)
        if container.status != "running":
            container.start()
        self._wait_booted(container)
        self._make_nodes(container, spec["volumes"])
        self._cloud_init(container, spec)
        if spec["volumes"]:
            self._exec(container, "systemctl restart platform-local-volumes")

    def ensure_running(self, spec: Json) -> None:
        container = self._container(spec["id"])
        if container is None:
            self.create_droplet(spec)
        elif container.status != "running":
            self.start(spec)
        else:
            self._make_nodes(container, spec["volumes"])

    def delete_droplet(self, droplet_id: int) -> None:
        container = self._container(droplet_id)
        if container is not None:
            container.remove(force=True, v=True)
        (self.data_dir / "hosts" / str(droplet_id)).unlink(missing_ok=True)

    def stop(self, droplet_id: int, graceful: bool = False) -> None:
        container = self._container(droplet_id)
        if container is None:
            raise RuntimeError(f"droplet {droplet_id} has no container")
        container.stop(timeout=60 if graceful else 10)

    def start(self, spec: Json) -> None:
        container = self._container(spec["id"])
        if container is None:
            raise RuntimeError(f"droplet {spec['id']} has no container")
        container.start()
        self._wait_booted(container)
        self._make_nodes(container, spec["volumes"])
        if spec["volumes"]:
            self._exec(container, "systemctl restart platform-local-volumes")

    def restart(self, spec: Json) -> None:
        container = self._container(spec["id"])
        if container is None:
            raise RuntimeError(f"droplet {spec['id']} has no container")
        container.restart(timeout=30)
        self._wait_booted(container)
        self._make_nodes(container, spec["volumes"])
        if spec["volumes"]:
            self._exec(container, "systemctl restart platform-local-volumes")

    def resize(self, spec: Json) -> None:
        cpus = min(int(spec["vcpus"]), os.cpu_count() or 1)
        _run(["docker", "update", "--memory", f"{spec['memory']}m", "--memory-swap", f"{spec['memory']}m",
              "--cpus", str(cpus), self.container_name(spec["id"])])

    # -- volumes ---------------------------------------------------------------------------------
    def _loop(self, volume: Json) -> str:
        path = self.volume_file(volume["id"])
        found = loops_of(path)
        if found:
            return found[0]
        return _run(["losetup", "--find", "--show", str(path)]).stdout.strip()

    def create_volume(self, volume: Json) -> None:
        path = self.volume_file(volume["id"])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(int(volume["size_gigabytes"]) * 1024**3)
            fs_type, label = volume.get("filesystem_type") or "", volume.get("filesystem_label") or ""
            if fs_type:
                mkfs = shutil.which(f"mkfs.{fs_type}")
                if mkfs is None:
                    log.warning("volume %s: mkfs.%s is not installed here, left unformatted", volume["name"], fs_type)
                else:
                    force = "-F" if fs_type == "ext4" else "-f"
                    _run([mkfs, "-q", force, *(["-L", label] if label else []), str(path)])
        self._loop(volume)

    def delete_volume(self, volume_id: str) -> None:
        path = self.volume_file(volume_id)
        for loop in loops_of(path):
            _run(["losetup", "-d", loop], check=False)
        path.unlink(missing_ok=True)

    def resize_volume(self, volume: Json) -> None:
        path = self.volume_file(volume["id"])
        with open(path, "r+b") as f:
            f.truncate(int(volume["size_gigabytes"]) * 1024**3)
        for loop in loops_of(path):
            _run(["losetup", "--set-capacity", loop])

    def _make_nodes(self, container: Container, volumes: list[Json]) -> None:
        for volume in volumes:
            self._node(container, volume)

    def _node(self, container: Container, volume: Json) -> None:
        self.create_volume(volume)
        rdev = os.stat(self._loop(volume)).st_rdev
        device = volume_device(volume["name"])
        self._exec(container, 'mkdir -p "$(dirname "$1")" && rm -f "$1" && mknod -m 0660 "$1" b "$2" "$3" '
                              '&& chgrp disk "$1"', device, str(os.major(rdev)), str(os.minor(rdev)))

    def attach(self, volume: Json, droplet_id: int) -> None:
        container = self._container(droplet_id)
        if container is None:
            raise RuntimeError(f"droplet {droplet_id} has no container")
        container.reload()
        if container.status == "running":
            self._node(container, volume)

    def detach(self, volume: Json, droplet_id: int) -> None:
        container = self._container(droplet_id)
        if container is None:
            return
        container.reload()
        if container.status == "running":
            self._exec(container, 'for t in $(findmnt -rn -S "$1" -o TARGET 2>/dev/null); do umount -l "$t"; done; '
                                  'rm -f "$1"', volume_device(volume["name"]))

    # -- clean-up --------------------------------------------------------------------------------
    @staticmethod
    def cleanup(name: str, data_dir: Path | None = None, extra_files: tuple[Path, ...] = ()) -> list[str]:
        """Remove every container, network, loop device and file of emulator instance ``name``."""
        import docker

        data_dir = data_dir or data_dir_for(name)
        done: list[str] = []
        client = docker.from_env(timeout=300)
        from docker.errors import NotFound

        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={name}"}):
            try:
                container.remove(force=True, v=True)
            except NotFound:  # removed meanwhile (its emulator's own teardown): gone is what is wanted
                continue
            done.append(f"container {container.name}")
        for net in client.networks.list(filters={"label": f"{LABEL}={name}"}):
            try:
                net.remove()
            except NotFound:
                continue
            done.append(f"network {net.name}")
        root = str(data_dir.resolve()) + os.sep
        for row in _loop_table():
            if row["file"].startswith(root):
                _run(["losetup", "-d", row["name"]], check=False)
                done.append(f"loop device {row['name']}")
        if data_dir.exists():
            shutil.rmtree(data_dir)
            done.append(f"directory {data_dir}")
        for path in extra_files:
            if path.exists():
                path.unlink()
                done.append(f"file {path}")
        return done

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "data_dir": str(self.data_dir)}

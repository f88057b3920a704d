"""The `local` backend: each droplet is a systemd container on one bridge network per environment.

What DigitalOcean gives a droplet, this backend imitates:

* the VPC is a Docker bridge network with the spec's ``vpc_cidr``; addresses are stable per host
  name (kept in ``.platform/<env>/local/addresses.json``), so adding a host never renumbers others;
* a block volume is a sparse file on a loop device, handed to the container at DigitalOcean's
  by-id path, so roles format and mount it exactly as on a droplet;
* the size slug becomes the container's memory and CPU limit (CPUs capped at the machine's count);
* cloud-init's first-boot work (admin user, SSH key, passwordless sudo) is a one-time bootstrap.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_ctl.access import Access, ssh_answers
from platform_ctl.errors import InfrastructureError, PreflightError
from platform_ctl.events import Event, Reporter
from platform_ctl.infra.hosts import Host, HostStatus, PlanSummary, Volume, volume_device
from platform_ctl.infra.image import ensure_image

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

    from platform_ctl.spec import HostPlan, Spec

LABEL_ENV = "platform-ctl.env"
LABEL_HOST = "platform-ctl.host"
#: Droplets of a DigitalOcean API emulator run with --materialize (do_emulator).
LABEL_EMULATOR = "platform-ctl.emulator"
#: Given at creation to droplet containers that run Docker Engine (see _docker_host_settings).
DOCKER_HOST_SYSCTLS = {"net.ipv4.ip_forward": "1"}
DOCKER_HOST_VOLUME = "/var/lib/docker"

#: A droplet container's Docker status -> the host state `status` shows (as the DigitalOcean backend's).
CONTAINER_STATES = {"running": "running", "exited": "stopped", "created": "stopped", "dead": "stopped"}

#: Memory the machine keeps for itself, Docker, Ansible and the test runner.
MACHINE_RESERVE_MB = 2048
FIRST_HOST_OFFSET = 10

# cloud-init's part on DigitalOcean: runs once per droplet, before Ansible ever connects.
BOOTSTRAP = r"""
set -eu
marker=/var/lib/platform-ctl/bootstrapped
[ -e "$marker" ] && exit 0
user="$1"; key="$2"
id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
install -d -m 0700 -o "$user" -g "$user" "/home/$user/.ssh"
printf '%s\n' "$key" > "/home/$user/.ssh/authorized_keys"
chown "$user:$user" "/home/$user/.ssh/authorized_keys"
chmod 0600 "/home/$user/.ssh/authorized_keys"
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
mkdir -p /var/lib/platform-ctl && touch "$marker"
"""


def machine_memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise PreflightError("cannot read MemTotal from /proc/meminfo")


class LocalBackend:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._client: docker.DockerClient | None = None

    # -- names -------------------------------------------------------------------------------
    @staticmethod
    def network_name(spec: Spec) -> str:
        return f"platform-{spec.name}"

    @staticmethod
    def container_name(spec: Spec, host: str) -> str:
        return f"platform-{spec.name}-{host}"

    @property
    def volume_dir(self) -> Path:
        return self.state_dir / "volumes"

    @property
    def _addresses_file(self) -> Path:
        return self.state_dir / "local" / "addresses.json"

    # -- docker ------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env(timeout=120)
                self._client.ping()
            except Exception as exc:
                raise PreflightError(
                    f"no Docker daemon answers ({exc.__class__.__name__}): run scripts/setup.sh, "
                    "which installs and starts Docker Engine"
                ) from exc
        return self._client

    def _containers(self, spec: Spec) -> dict[str, Container]:
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL_ENV}={spec.name}"})
        return {c.labels[LABEL_HOST]: c for c in found}

    # -- preflight ---------------------------------------------------------------------------
    def preflight(self, spec: Spec) -> None:
        self.client  # noqa: B018 - connects, or raises a PreflightError saying how to fix it
        budget = machine_memory_mb() - MACHINE_RESERVE_MB
        # Other environments' droplets count too, and those of a materialising DigitalOcean API
        # emulator: all of them share this machine.
        others = [c for label in (LABEL_ENV, LABEL_EMULATOR)
                  for c in self.client.containers.list(filters={"label": label})
                  if label == LABEL_EMULATOR or c.labels.get(LABEL_ENV) != spec.name]
        taken = sum(int(c.attrs["HostConfig"].get("Memory") or 0) for c in others) // 1024**2
        wanted = spec.total_memory_mb()
        if wanted + taken > budget:
            owners = {c.labels.get(LABEL_ENV) or f"emulator {c.labels[LABEL_EMULATOR]}" for c in others}
            held = f", of which {taken} MiB are held by running environment(s) " + ", ".join(
                sorted(owners)) if taken else ""
            raise PreflightError(
                f"the local environment {spec.name!r} asks for {wanted} MiB of droplet memory but this "
                f"machine can give {budget - taken} MiB ({machine_memory_mb()} MiB less {MACHINE_RESERVE_MB} "
                f"reserved{held}): use smaller sizes or fewer hosts in its platform.yml, or destroy another "
                "environment"
            )
        if not Path("/dev/loop-control").exists():
            raise PreflightError("loop devices are not available (/dev/loop-control missing): run scripts/setup.sh")
        vpc = ipaddress.ip_network(spec.vpc_cidr)
        ours = self.network_name(spec)
        for net in self.client.networks.list():
            if net.name == ours:
                continue
            for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
                subnet = cfg.get("Subnet")
                if subnet and ipaddress.ip_network(subnet, strict=False).overlaps(vpc):
                    raise PreflightError(
                        f"vpc_cidr {spec.vpc_cidr} overlaps Docker network {net.name!r} ({subnet}): "
                        "choose another vpc_cidr in the environment's platform.yml"
                    )

    # -- addresses ---------------------------------------------------------------------------
    def _load_addresses(self) -> dict[str, str]:
        if self._addresses_file.exists():
            return dict(json.loads(self._addresses_file.read_text()))
        return {}

    def _allocate(self, spec: Spec, plans: list[HostPlan]) -> dict[str, str]:
        net = ipaddress.ip_network(spec.vpc_cidr)
        addresses = self._load_addresses()
        taken = {ipaddress.ip_address(a) for a in addresses.values()}
        pool = (a for a in list(net.hosts())[FIRST_HOST_OFFSET - 1:] if a not in taken)
        for plan in plans:
            if plan.name not in addresses:
                try:
                    addresses[plan.name] = str(next(pool))
                except StopIteration:
                    raise InfrastructureError(
                        f"vpc_cidr {spec.vpc_cidr} has no free address left for {plan.name}"
                    ) from None
        self._addresses_file.parent.mkdir(parents=True, exist_ok=True)
        self._addresses_file.write_text(json.dumps(addresses, indent=2, sort_keys=True) + "\n")
        return addresses

    def _gateway(self, spec: Spec) -> str:
        return str(next(ipaddress.ip_network(spec.vpc_cidr).hosts()))

    # -- volumes -----------------------------------------------------------------------------
    def _loop_for(self, path: Path) -> str | None:
        out = subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True, check=False).stdout
        return out.split(":", 1)[0] if out.strip() else None

    def _ensure_volume(self, volume_name: str, size_gb: int) -> str:
        """A sparse file on a loop device; returns the loop device."""
        self.volume_dir.mkdir(parents=True, exist_ok=True)
        path = self.volume_dir / f"{volume_name}.img"
        if not path.exists():
            with open(path, "wb") as f:
                f.truncate(size_gb * 1024**3)
        loop = self._loop_for(path)
        if loop is None:
            done = subprocess.run(["losetup", "--find", "--show", str(path)], capture_output=True, text=True,
                                  check=False)
            if done.returncode != 0:
                raise InfrastructureError(f"losetup for volume {volume_name} failed: {done.stderr.strip()}")
            loop = done.stdout.strip()
        return loop

    def _release_volumes(self, spec: Spec, delete: bool) -> list[str]:
        released: list[str] = []
        if not self.volume_dir.exists():
            return released
        for path in sorted(self.volume_dir.glob("*.img")):
            while (loop := self._loop_for(path)) is not None:
                subprocess.run(["losetup", "-d", loop], check=True)
            if delete:
                path.unlink()
            released.append(path.stem)
        return released

    @staticmethod
    def _volume_loops(container: Container) -> dict[str, str]:
        """The loop devices handed to ``container`` as volumes: {loop device: volume name}."""
        prefix = volume_device("")
        return {
            d["PathOnHost"]: d["PathInContainer"].removeprefix(prefix)
            for d in container.attrs["HostConfig"].get("Devices") or []
            if d.get("PathInContainer", "").startswith(prefix)
        }

    def _detach_orphan_loops(self, loops: dict[str, str]) -> None:
        """Detach loop devices still backed by a volume file that is gone or not in volume_dir.

        Covers a state directory lost before destroy (a deleted checkout or test directory): the
        containers still name their loop devices. A loop whose backing file is not that volume's
        file is someone else's and is left alone.
        """
        for loop, volume in loops.items():
            back = subprocess.run(["losetup", "--noheadings", "-O", "BACK-FILE", loop], capture_output=True,
                                  text=True, check=False).stdout.strip().removesuffix(" (deleted)")
            if Path(back).name == f"{volume}.img" and Path(back).parent != self.volume_dir:
                subprocess.run(["losetup", "-d", loop], check=True)

    # -- apply -------------------------------------------------------------------------------
    def _ensure_network(self, spec: Spec) -> None:
        import docker.types

        name = self.network_name(spec)
        existing = self.client.networks.list(names=[name])
        if existing:
            subnets = [c.get("Subnet") for c in (existing[0].attrs.get("IPAM") or {}).get("Config") or []]
            if spec.vpc_cidr not in subnets:
                raise InfrastructureError(
                    f"network {name} exists with subnet {subnets}, the spec says {spec.vpc_cidr}: "
                    f"run `platform-ctl destroy {spec.name}` first to change the VPC range"
                )
            return
        ipam = docker.types.IPAMConfig(pool_configs=[
            docker.types.IPAMPool(subnet=spec.vpc_cidr, gateway=self._gateway(spec)),
        ])
        self.client.networks.create(name, driver="bridge", ipam=ipam, labels={LABEL_ENV: spec.name})

    def _hosts_file(self, plan: HostPlan, address: str) -> Path:
        """The droplet's /etc/hosts, kept on the controller like a droplet keeps it on its disk.

        Docker rewrites a container's own /etc/hosts at every start, which would drop the block
        the base role writes (host names of the whole environment) whenever a host restarts; a
        bind-mounted file is left alone.
        """
        path = self.state_dir / "local" / "hosts" / plan.name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                            f"{address}\t{plan.fqdn} {plan.name}\n")
        return path

    @staticmethod
    def _docker_host_settings(spec: Spec, plan: HostPlan) -> dict[str, Any]:
        """What a droplet container that runs Docker Engine (roles/docker) needs beyond the others.

        Declared here, where the container is made, because only its creation can give them:
        /proc/sys is read-only inside, so net.ipv4.ip_forward (namespaced) is set now, and Docker's
        overlay2 storage cannot sit on the container's own overlay root, so /var/lib/docker is a
        volume of its own (anonymous: it goes with the container, like a droplet's disk).
        """
        if not spec.runs_docker(plan.groups):
            return {}
        return {"sysctls": DOCKER_HOST_SYSCTLS, "volumes": [DOCKER_HOST_VOLUME]}

    def _create_container(self, spec: Spec, plan: HostPlan, address: str, image: str,
                          devices: list[str]) -> Container:
        cpus = min(plan.size.vcpus, os.cpu_count() or 1)
        docker_host = self._docker_host_settings(spec, plan)
        networking = self.client.api.create_networking_config({
            self.network_name(spec): self.client.api.create_endpoint_config(ipv4_address=address),
        })
        host_config = self.client.api.create_host_config(
            cap_add=["SYS_ADMIN", "NET_ADMIN"],
            security_opt=["seccomp=unconfined"],
            tmpfs={"/run": "", "/run/lock": ""},
            binds={
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                str(self._hosts_file(plan, address)): {"bind": "/etc/hosts", "mode": "rw"},
            },
            cgroupns="host",
            mem_limit=f"{plan.size.memory_mb}m",
            memswap_limit=f"{plan.size.memory_mb}m",
            nano_cpus=int(cpus * 1e9),
            devices=devices,
            network_mode=self.network_name(spec),
            restart_policy={"Name": "unless-stopped"},
            sysctls=docker_host.get("sysctls"),
        )
        created = self.client.api.create_container(
            image=image,
            name=self.container_name(spec, plan.name),
            hostname=plan.name,
            labels={LABEL_ENV: spec.name, LABEL_HOST: plan.name, "platform-ctl.groups": ",".join(plan.groups)},
            host_config=host_config,
            networking_config=networking,
            stop_signal="SIGRTMIN+3",  # systemd's own request for a clean shutdown
            volumes=docker_host.get("volumes"),
            detach=True,
        )
        return self.client.containers.get(created["Id"])

    def _check_docker_host(self, spec: Spec, plan: HostPlan, container: Container) -> None:
        """Refuse a container made before its host ran Docker: its creation settings cannot change."""
        wanted = self._docker_host_settings(spec, plan)
        if not wanted:
            return
        sysctls = container.attrs.get("HostConfig", {}).get("Sysctls") or {}
        mounts = {m.get("Destination") for m in container.attrs.get("Mounts", [])}
        if any(sysctls.get(k) != v for k, v in wanted["sysctls"].items()) or DOCKER_HOST_VOLUME not in mounts:
            raise InfrastructureError(
                f"{container.name} was created before {plan.name} ran Docker Engine (docker.extra_groups or "
                f"group apps) and lacks net.ipv4.ip_forward=1 and a volume at {DOCKER_HOST_VOLUME}, which "
                f"only creation can give: run `platform-ctl destroy {spec.name}` and deploy again"
            )

    def _exec(self, container: Container, cmd: list[str]) -> str:
        code, out = container.exec_run(cmd, demux=False)
        text = out.decode(errors="replace") if out else ""
        if code != 0:
            raise InfrastructureError(
                f"{container.name}: {' '.join(cmd[:2])} failed (exit {code}): {text.strip()[-300:]}"
            )
        return text

    def _host_key(self, container: Container, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, out = container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
            if code == 0 and out.startswith(b"ssh-ed25519"):
                return " ".join(out.decode().split()[:2])
            time.sleep(0.5)
        raise InfrastructureError(f"{container.name}: sshd did not generate its host key within {timeout:.0f}s")

    def apply(self, spec: Spec, access: Access, report: Reporter) -> list[Host]:
        phase = "infrastructure"
        image = ensure_image(say=lambda m: report(Event("message", phase=phase, message=m)))
        self._ensure_network(spec)
        plans = spec.hosts()
        addresses = self._allocate(spec, plans)
        existing = self._containers(spec)
        for plan in plans:
            devices = []
            for vol in plan.volumes:
                loop = self._ensure_volume(vol.name, vol.size_gb)
                devices.append(f"{loop}:{volume_device(vol.name)}:rwm")
            container = existing.get(plan.name)
            if container is None:
                report(Event("task", phase=phase, host=plan.name, task="create droplet container"))
                container = self._create_container(spec, plan, addresses[plan.name], image, devices)
                status = "changed"
            else:
                status = "ok"
                self._check_docker_host(spec, plan, container)
            if container.status != "running":
                container.start()
                status = "changed"
            report(Event("host_result", phase=phase, host=plan.name, task="droplet", status=status))
        orphans = sorted(set(existing) - {p.name for p in plans})
        if orphans:
            report(Event("message", phase=phase,
                         message=f"hosts no longer in the spec are left running: {', '.join(orphans)}"))
        self._bootstrap(spec, plans, access)
        return self.hosts(spec)

    def retire(self, spec: Spec, access: Access, names: list[str], report: Reporter) -> list[Host]:
        phase = "infrastructure"
        kept = {plan.name for plan in spec.hosts()}
        if kept & set(names):
            raise InfrastructureError(f"refusing to remove {', '.join(sorted(kept & set(names)))}: still in the spec")
        containers = self._containers(spec)
        for name in names:
            container = containers.get(name)
            if container is None:
                report(Event("host_result", phase=phase, host=name, task="remove droplet container", status="ok"))
                continue
            if self._volume_loops(container):
                raise InfrastructureError(f"refusing to remove {name}: it has data volumes")
            container.remove(force=True, v=True)
            report(Event("host_result", phase=phase, host=name, task="remove droplet container", status="changed"))
        self._bootstrap(spec, spec.hosts(), access)
        return self.hosts(spec)

    def _bootstrap(self, spec: Spec, plans: list[HostPlan], access: Access) -> None:
        containers = self._containers(spec)
        lines = []
        for plan in plans:
            c = containers[plan.name]
            c.reload()
            self._exec(c, ["sh", "-c", BOOTSTRAP, "bootstrap", access.user, access.public_key])
            address = self._load_addresses()[plan.name]
            lines.append(f"{address},{plan.name},{plan.fqdn} {self._host_key(c)}")
        access.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        access.known_hosts.write_text("\n".join(lines) + "\n")

    # -- read --------------------------------------------------------------------------------
    def hosts(self, spec: Spec) -> list[Host]:
        addresses = self._load_addresses()
        hosts = []
        for plan in spec.hosts():
            if plan.name not in addresses:
                raise InfrastructureError(
                    f"host {plan.name} has no address yet: run `platform-ctl deploy {spec.name}`"
                )
            hosts.append(Host(
                name=plan.name,
                fqdn=plan.fqdn,
                groups=plan.groups,
                private_ip=addresses[plan.name],
                public_ip=addresses[plan.name],
                size=plan.size,
                volumes=tuple(Volume(v.name, v.size_gb, volume_device(v.name)) for v in plan.volumes),
            ))
        return hosts

    def plan(self, spec: Spec, access: Access, report: Reporter) -> PlanSummary:
        """The droplet containers apply would create (missing) or start (stopped); changes nothing."""
        states = {s.name: s.state for s in self.status(spec)}
        changes = [("create" if state == "missing" else "start", name)
                   for name, state in states.items() if state != "running"]
        return PlanSummary(add=sum(a == "create" for a, _ in changes), change=sum(a == "start" for a, _ in changes),
                           changes=changes)

    def status(self, spec: Spec) -> list[HostStatus]:
        addresses = self._load_addresses()
        containers = self._containers(spec)
        out = []
        for plan in spec.hosts():
            c = containers.get(plan.name)
            address = addresses.get(plan.name, "")
            state = "missing" if c is None else CONTAINER_STATES.get(c.status, c.status)
            out.append(HostStatus(plan.name, plan.groups, state, address,
                                  ssh=state == "running" and ssh_answers(address)))
        return out

    # -- destroy -----------------------------------------------------------------------------
    def destroy(self, spec: Spec, report: Reporter, with_data: bool) -> list[str]:
        phase = "destroy"
        attached: dict[str, str] = {}
        for name, c in sorted(self._containers(spec).items()):
            attached.update(self._volume_loops(c))
            c.remove(force=True, v=True)
            report(Event("host_result", phase=phase, host=name, task="remove container", status="changed"))
        self._detach_orphan_loops(attached)
        for net in self.client.networks.list(names=[self.network_name(spec)]):
            net.remove()
            report(Event("message", phase=phase, message=f"removed network {net.name}"))
        released = self._release_volumes(spec, delete=with_data)
        if released:
            verb = "deleted" if with_data else "detached (data kept)"
            report(Event("message", phase=phase, message=f"volumes {verb}: {', '.join(released)}"))
        return [] if with_data else released


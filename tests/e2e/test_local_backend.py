"""The `local` backend (the README's first command) on a small environment of its own: what differs from
the DigitalOcean path, run for real.

The shared environment goes through the production path (OpenTofu, the emulator); this module runs
the local backend's own code: its preflight, droplet containers with their sizes, volumes on loop
devices at DigitalOcean's by-id path, a Docker host's creation settings, the bootstrap cloud-init
stands for (admin user, key, sudo), known hosts, `deploy --check`, `status` from Docker's state,
the removal of one host, and `destroy`. The roles converge the same way on either backend once SSH
answers, so the deploy stops after `connect` (`--to connect`): the shared environment converges
them, once.

Its droplets (the shipped local spec's, less the Trino worker: 13 GiB) and the shared environment's
(17 GiB) do not fit this machine's memory together, so this module runs after the shared
environment is destroyed (conftest.py orders it last).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from e2e_env import REPO, Run, platform_ctl

from platform_ctl.environment import Environment
from platform_ctl.paths import Project

pytestmark = pytest.mark.e2e

ENV = "small"
VPC = "10.47.0.0/24"
#: After the shared environment's teardown (tests/e2e/conftest.py reads it).
RUNS_LAST = True


def _containers() -> dict[str, dict]:
    """This environment's containers by host: their docker inspect."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=platform-ctl.env={ENV}"], capture_output=True,
                         text=True, check=True).stdout.split()
    if not ids:
        return {}
    found = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout)
    return {c["Config"]["Labels"]["platform-ctl.host"]: c for c in found}


def _exec(host: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", f"platform-{ENV}-{host}", *argv], capture_output=True, text=True,
                          timeout=60, check=False)


def _loops(directory: Path) -> list[str]:
    out = subprocess.run(["losetup", "--list", "--noheadings", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if str(directory) in line]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("local-backend")
    spec = yaml.safe_load((REPO / "inventories/local/platform.yml").read_text())
    spec.update(name=ENV, vpc_cidr=VPC)
    del spec["groups"]["trino_worker"]
    env_dir = root / "inventories" / ENV
    shutil.copytree(REPO / "inventories/local/group_vars", env_dir / "group_vars",
                    ignore=shutil.ignore_patterns("vault.yml"))
    (env_dir / "platform.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    yield root
    if (root / ".platform" / ENV).exists() or _containers():
        platform_ctl(root, "destroy", ENV, "--with-data")


def _cli(project: Path, *args: str) -> Run:
    return platform_ctl(project, *args)


def test_the_local_backend_creates_reaches_reports_removes_and_destroys_its_droplets(project: Path):
    hosts = ["trino-coord1", "minio1", "minio2", "minio3", "minio4", "pg1", "mon1", "apps1"]
    checked = _cli(project, "deploy", ENV, "--check")
    assert checked.rc == 0, checked.stdout + checked.stderr
    words = " ".join(checked.stdout.split())
    assert f"infrastructure: {len(hosts)} to add, 0 to change, 0 to destroy" in words, checked.stdout
    assert all(f"create {host}" in words for host in hosts), checked.stdout
    assert _containers() == {}

    deployed = _cli(project, "deploy", ENV, "--to", "connect", "--json")
    assert deployed.rc == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    done = [e["phase"] for e in deployed.events if e["kind"] == "phase_done"]
    assert done == ["preflight", "prepare", "infrastructure", "inventory", "connect"], done
    assert any("stopped after connect" in e["message"] for e in deployed.events if e["kind"] == "message")

    # Droplet containers sized as their DigitalOcean counterparts, on the VPC network, volumes at the by-id path.
    containers = _containers()
    assert sorted(containers) == sorted(hosts)
    assert all(c["State"]["Running"] for c in containers.values())
    assert containers["trino-coord1"]["HostConfig"]["Memory"] == 4096 * 1024**2
    assert containers["minio1"]["HostConfig"]["Memory"] == 1024 * 1024**2
    assert list(containers["minio1"]["NetworkSettings"]["Networks"]) == [f"platform-{ENV}"]
    for host in ("minio1", "pg1"):
        assert _exec(host, "test", "-b", f"/dev/disk/by-id/scsi-0DO_Volume_{ENV}-{host}-data").returncode == 0, host
    state = project / ".platform" / ENV
    assert len(_loops(state / "volumes")) == 6  # minio1-4, pg1, mon1
    # Only the host that runs Docker Engine gets what Docker needs from the container's creation.
    assert containers["apps1"]["HostConfig"]["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert "/var/lib/docker" in {m["Destination"] for m in containers["apps1"]["Mounts"]}
    assert not containers["minio1"]["HostConfig"].get("Sysctls")

    # The bootstrap (cloud-init's part): the admin user logs in with the environment's key, the host's
    # key is known in advance (strict checking), and sudo needs no password.
    ssh = _cli(project, "ssh", ENV, "minio1", "sudo", "-n", "id", "-un", ";", "hostname")
    assert ssh.rc == 0, ssh.stderr
    assert ssh.stdout.split() == ["root", "minio1"]

    # status: every host running and answering SSH, from Docker's state; monitoring is not deployed yet.
    status = _cli(project, "status", ENV, "--json")
    assert status.rc == 1, status.stdout + status.stderr
    document = json.loads(status.stdout)
    assert "unavailable" in document["monitoring"]
    assert {h["name"]: (h["state"], h["ssh"]) for h in document["hosts"]} == dict.fromkeys(hosts, ("running", True))
    subprocess.run(["docker", "stop", f"platform-{ENV}-apps1"], check=True, capture_output=True, timeout=120)
    document = json.loads(_cli(project, "status", ENV, "--json").stdout)
    assert {h["name"]: (h["state"], h["ssh"]) for h in document["hosts"]}["apps1"] == ("stopped", False)

    # Removing a host (scale-in's infrastructure step): its container goes, no other.
    spec_path = project / "inventories" / ENV / "platform.yml"
    spec = yaml.safe_load(spec_path.read_text())
    del spec["groups"]["apps"]
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = Environment.load(Project(project), ENV)
    left = env.backend.retire(env.spec, env.access(), ["apps1"], lambda _event: None)
    assert sorted(h.name for h in left) == sorted(hosts[:-1])
    assert sorted(_containers()) == sorted(hosts[:-1])

    destroyed = _cli(project, "destroy", ENV)
    assert destroyed.rc == 0, destroyed.stdout + destroyed.stderr
    assert _containers() == {}
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"name=^platform-{ENV}$"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert networks == []
    assert _loops(state / "volumes") == []
    assert not state.exists()

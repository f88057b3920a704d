"""`deploy` of a `digitalocean` environment whose api_endpoint is the emulator with --materialize.

Every droplet the provider creates becomes a local droplet container and every volume a loop
device, so this is the whole production path (OpenTofu, provider, cloud-init's user data, SSH with
pre-made host keys, the same roles, verify) on one machine. Its droplets are gone before the
end-to-end suite deploys its own environment: both would not fit in this machine's memory at once.

The spec has every required group and no Trino worker (an optional group; the coordinator then
runs tasks itself): seven droplets. A worker's role is the same on either backend, and the
end-to-end suite deploys, scales out and drains workers; one more droplet and JVM here cost CI time.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from do_harness import EmulatorProcess, Project, do_spec, make_project, start_emulator, stop_emulator

ENV = "do-rehearsal"
VPC = "10.46.0.0/24"
#: trino-coord1, minio1-4, pg1, mon1.
DROPLETS = 7

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    directory = tmp_path_factory.mktemp("materialize")
    running = start_emulator(directory, "rehearsal", materialize=True)
    try:
        yield running
    finally:
        stop_emulator(running, materialized=True)


@pytest.fixture(scope="module")
def project(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Project:
    spec = do_spec(ENV, emulator.url, VPC, allow_volume_deletion=True, admin_cidrs=["127.0.0.1/32"])
    del spec["groups"]["trino_worker"]
    return make_project(tmp_path_factory.mktemp("project"), spec)


def _containers(name: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=platform-ctl.emulator={name}"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_check_shows_the_plan_and_creates_nothing(project: Project, emulator: EmulatorProcess) -> None:
    done = project.cli("deploy", ENV, "--check")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "nothing was changed" in done.stdout
    assert "infrastructure: 31 to add, 0 to change, 0 to destroy" in done.stdout
    assert "hosts are not all deployed and reachable yet: no Ansible check" in done.stdout
    writes = [r for r in emulator.requests() if r["method"] != "GET"]
    assert writes == []
    assert _containers(emulator.name) == []


def test_deploy_prod_path_against_the_emulator_ends_with_verify_green(project: Project,
                                                                       emulator: EmulatorProcess) -> None:
    done = project.cli("deploy", ENV, "--json")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    finished = [e["phase"] for e in events if e["kind"] == "phase_done"]
    assert finished[-1] == "verify"
    assert {"infrastructure", "base", "storage", "metadata"} <= set(finished)
    droplets = emulator.state()["droplets"]
    assert len(droplets) == DROPLETS
    assert len(_containers(emulator.name)) == DROPLETS
    verify = project.cli("verify", ENV)
    assert verify.returncode == 0, verify.stdout[-3000:]
    assert "all green" in verify.stdout
    status = project.cli("status", ENV)
    assert status.returncode == 0, status.stdout[-2000:]
    assert f"{DROPLETS}/{DROPLETS} hosts up" in status.stdout


def test_destroy_with_data_needs_the_typed_name_then_removes_every_droplet(project: Project,
                                                                           emulator: EmulatorProcess) -> None:
    refused = project.cli("destroy", ENV)
    assert refused.returncode == 2
    assert "--with-data" in refused.stderr
    wrong = project.cli("destroy", ENV, "--with-data", "--confirm", "prod")
    assert wrong.returncode == 2
    assert "nothing destroyed" in wrong.stderr
    assert len(_containers(emulator.name)) == DROPLETS
    done = project.cli("destroy", ENV, "--with-data", "--confirm", ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    state = emulator.state()
    assert state["droplets"] == []
    assert state["volumes"] == []
    assert _containers(emulator.name) == []
    assert not (project.root / ".platform" / ENV).exists()

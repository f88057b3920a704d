"""End-to-end behaviour of `deploy`, `verify`, `status` and `ssh` on the shared environment, deployed
through the production path (OpenTofu and the DigitalOcean provider against the emulator).

The destroy test lives in test_teardown_destroy.py, which pytest runs after this file; that a
second deploy changes nothing is test_steady_state_after_day2.py's, after the day-2 commands too.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from platform_ctl.deploy import PLAYBOOK_PHASES

pytestmark = pytest.mark.e2e


def test_check_showed_the_plan_and_created_nothing(deployed):
    checked = deployed.checked
    assert checked.rc == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    said = " ".join(checked.stdout.split())
    assert "nothing was changed" in said
    planned = re.search(r"infrastructure: (\d+) to add, 0 to change, 0 to destroy", said)
    assert planned, said
    assert int(planned.group(1)) > len(deployed.hosts)  # droplets, volumes, VPC, firewalls, tags, ...
    assert "hosts are not all deployed and reachable yet: no Ansible check" in said
    assert deployed.check_writes == [], "deploy --check wrote to the DigitalOcean API"


def test_every_droplet_is_a_running_container(deployed):
    droplets = deployed.api_request("GET", "/v2/droplets?tag_name=platform-e2e&per_page=200")["droplets"]
    assert sorted(d["name"].split(".")[0] for d in droplets) == sorted(deployed.hosts)
    assert {d["status"] for d in droplets} == {"active"}
    for host in deployed.hosts:
        assert deployed.exec(host, "hostname").stdout.strip() == host


def test_killed_deploy_resumes_at_the_interrupted_phase_and_converges(deployed):
    killed, resumed = deployed.killed, deployed.resumed
    assert killed.rc == -9, "the first deploy was meant to be killed"
    started = [e["phase"] for e in killed.events if e["kind"] == "phase_start"]
    assert started[-1] == "base", f"killed outside the base play: {started}"
    skipped = [e["phase"] for e in resumed.events if e["kind"] == "phase_skip"]
    assert skipped == ["prepare", "infrastructure", "inventory", "connect"]
    done = [e["phase"] for e in resumed.events if e["kind"] == "phase_done"]
    assert done[-len(PLAYBOOK_PHASES) - 1:] == [*PLAYBOOK_PHASES, "verify"]
    failed = [e for e in resumed.events if e["kind"] == "host_result" and e["status"] in ("failed", "unreachable")]
    assert failed == []


def test_verify_is_all_green_for_every_host(deployed):
    run = deployed.cli("verify", deployed.env)
    assert run.rc == 0, run.stdout + run.stderr
    assert "all green" in run.stdout
    rows = _table_rows(run.stdout)
    for host in deployed.hosts:
        passed, failed = rows[host][1:3]
        assert int(passed) >= 8
        assert failed == "0"
    # The golden path (an object into MinIO and a row through Trino into Iceberg and back) is one of them.
    results = json.loads((deployed.state / "logs" / "verify" / "results.json").read_text())
    golden = [r for r in results if r["check"].endswith("test_an_object_and_an_iceberg_row_go_in_and_come_back_out")]
    assert [(r["host"], r["outcome"]) for r in golden] == [("trino-coord1", "passed")], golden


def _table_rows(output: str) -> dict[str, list[str]]:
    """Rows of a rich table printed by the CLI, keyed by their first cell."""
    rows = {}
    for line in output.splitlines():
        cells = [c for c in line.split() if c not in ("│", "┃", "|")]
        if cells:
            rows[cells[0]] = cells
    return rows


def test_status_lists_every_host_and_its_services_up(deployed):
    run = deployed.cli("status", deployed.env)
    assert run.rc == 0, run.stdout + run.stderr
    rows = _table_rows(run.stdout)
    for host in deployed.hosts:
        assert host in rows, f"{host} missing from status"
        assert rows[host][3:5] == ["running", "up"], rows[host]
    assert f"{len(deployed.hosts)}/{len(deployed.hosts)} hosts up" in run.stdout

    document = json.loads(deployed.cli("status", deployed.env, "--json").stdout)
    assert document["monitoring"] == {"source": "mon1"}
    services = {h["name"]: h["services"] for h in document["hosts"]}
    assert set(services) == set(deployed.hosts)
    expected = {"mon1": {"prometheus", "alertmanager"}, "pg1": {"postgres_exporter"},
                "trino-coord1": {"trino"}, "trino-worker1": {"trino"}, "apps1": {"docker_engine"},
                **{f"minio{i}": {"minio", "minio_node_metrics"} for i in range(1, 5)}}
    for host, found in services.items():
        assert set(found) == {"node_exporter"} | expected[host], (host, found)
        assert all(s["up"] for s in found.values()), (host, found)


def test_ssh_runs_a_command_as_the_admin_user_with_strict_host_keys(deployed):
    run = deployed.cli("ssh", deployed.env, "minio1", "id", "-un", ";", "hostname")
    assert run.rc == 0, run.stderr
    assert run.stdout.split() == [deployed.spec["admin_user"], "minio1"]


def test_root_cannot_log_in_over_ssh(deployed):
    # sshd refuses root (roles/base), whatever key cloud-init gave it from the droplet's ssh_keys.
    address = deployed.addresses()["minio1"]
    ssh_dir = deployed.project / ".platform" / deployed.env / "ssh"
    done = subprocess.run(
        ["ssh", "-i", str(ssh_dir / "id_ed25519"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
         f"root@{address}", "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 255
    assert "Permission denied" in done.stderr

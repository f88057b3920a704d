"""Day-2 scale-out and scale-in of Trino workers on the shared e2e environment, with queries running.

A client runs queries in a loop throughout. `scale-out --count +1` is killed in the middle of
converging the new worker, then run again without --count: it resumes towards the recorded target.
The new worker must join (system.runtime.nodes) without the coordinator restarting and without one
failed query; `scale-in --count -1`, killed while draining the worker and run again, then drains it
and removes its droplet, again without a failed query. The environment ends as it began (one
worker), for the tests after this file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from e2e_env import run_and_kill
from e2e_support import PACE_S, Background, Cluster, wait_for

from platform_ctl.history import read as read_history

pytestmark = pytest.mark.e2e

QUERY = ("SELECT o.orderpriority, count(*), sum(l.partkey) FROM tpch.tiny.orders o "
         "JOIN tpch.tiny.lineitem l ON l.orderkey = o.orderkey GROUP BY 1 ORDER BY 1")


class QueryLoop(Background):
    """Runs QUERY in a loop on a thread (PACE_S after each success); every result is compared with the first one."""

    JOIN_S = 600.0

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.ok = 0
        self.failures: list[str] = []
        self.expected = cluster.query(QUERY)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rows = self.cluster.query(QUERY)
            except Exception as exc:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                continue
            if rows == self.expected:
                self.ok += 1
                self._stop.wait(PACE_S)
            else:
                self.failures.append(f"{time.strftime('%H:%M:%S')} wrong result: {rows[:2]}")


def _coordinator_start(cluster: Cluster) -> str:
    done = cluster.deployed.exec("trino-coord1", "systemctl", "show", "trino", "-p", "MainPID", "-p",
                                 "ExecMainStartTimestampMonotonic", check=True)
    return done.stdout.strip()


def _worker_count(spec_file: Path) -> int:
    return yaml.safe_load(spec_file.read_text())["groups"]["trino_worker"]["count"]


def _workers(cluster: Cluster) -> list[str]:
    """Each worker as "<address> <state>" (Trino names a node in its URI by its address, dashed)."""
    rows = cluster.query("SELECT http_uri, state FROM system.runtime.nodes WHERE NOT coordinator")
    return sorted(f"{uri.split('//')[1].split('.ip:')[0].replace('-', '.')} {state}" for uri, state in rows)


def test_a_worker_joins_and_leaves_with_queries_running_and_the_coordinator_untouched(deployed, cluster: Cluster):
    state = deployed.project / ".platform" / deployed.env
    spec_file = deployed.project / "inventories" / deployed.env / "platform.yml"
    coordinator = _coordinator_start(cluster)
    assert len(_workers(cluster)) == 1

    with QueryLoop(cluster) as grow:
        killed = run_and_kill(deployed.project, ("scale-out", deployed.env, "trino_worker", "--count", "+1"), "base", 8)
        assert killed.rc == -signal.SIGKILL, killed.stderr[-2000:]
        interrupted = json.loads((state / "operation.json").read_text())
        assert interrupted["added"] == ["trino-worker2"]
        assert "connect" in interrupted["completed"]
        assert _worker_count(spec_file) == 2

        resumed = deployed.cli("scale-out", deployed.env, "trino_worker", "--json")
        assert resumed.rc == 0, f"{resumed.stdout[-3000:]}\n{resumed.stderr[-3000:]}"
        skipped = [e["phase"] for e in resumed.events if e["kind"] == "phase_skip"]
        assert skipped == ["spec", "infrastructure", "inventory", "connect"]
        addresses = deployed.addresses()
        worker2 = deployed.droplets()["trino-worker2"]["id"]
        wait_for(lambda: f"{addresses['trino-worker2']} active" in _workers(cluster), 60,
                 "trino-worker2 active in system.runtime.nodes")
        joined = grow.ok
        wait_for(lambda: grow.ok >= joined + 3, 120, "three more queries with both workers in the cluster")
    print(f"\nscale-out: {grow.ok} queries answered right, {len(grow.failures)} failed, while the worker joined")
    assert grow.failures == [], grow.failures
    assert grow.ok >= 10, f"only {grow.ok} queries completed during the scale-out"
    assert _workers(cluster) == sorted(f"{addresses[w]} active" for w in ("trino-worker1", "trino-worker2"))
    assert _coordinator_start(cluster) == coordinator, "the coordinator restarted"
    assert not (state / "operation.json").exists()
    # The membership readers were reconfigured: Prometheus scrapes the new worker.
    targets = deployed.exec("mon1", "grep", "-rl", "trino-worker2", "/etc/prometheus")
    assert targets.stdout.strip(), "no Prometheus configuration names trino-worker2"

    with QueryLoop(cluster) as shrink:
        # Killed while the worker is being drained (after its first task there), then finished.
        killed = run_and_kill(deployed.project, ("scale-in", deployed.env, "trino_worker", "--count", "-1"), "drain", 1)
        assert killed.rc == -signal.SIGKILL, killed.stderr[-2000:]
        assert json.loads((state / "operation.json").read_text())["completed"] == []
        removed = deployed.cli("scale-in", deployed.env, "trino_worker", "--json")
        assert removed.rc == 0, f"{removed.stdout[-3000:]}\n{removed.stderr[-3000:]}"
    print(f"scale-in: {shrink.ok} queries answered right, {len(shrink.failures)} failed, while the worker left")
    assert shrink.failures == [], shrink.failures
    assert shrink.ok >= 5, f"only {shrink.ok} queries completed during the scale-in"
    wait_for(lambda: len(_workers(cluster)) == 1, 120, "trino-worker2 gone from system.runtime.nodes")
    assert _workers(cluster) == [f"{addresses['trino-worker1']} active"]
    assert _coordinator_start(cluster) == coordinator, "the coordinator restarted"
    assert _worker_count(spec_file) == 1
    # Its droplet is deleted through the API, and the emulator's container with it.
    assert worker2 not in {d["id"] for d in deployed.api_request("GET", "/v2/droplets?per_page=200")["droplets"]}
    gone = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=platform-ctl.emulator.droplet={worker2}"],
                          capture_output=True, text=True, check=True)
    assert gone.stdout.strip() == "", "trino-worker2's droplet container is still there"

    runs = [line for line in read_history(state) if line["command"] in ("scale-out", "scale-in")]
    assert [(line["command"], line["event"]) for line in runs if line["event"] != "step"] == [
        ("scale-out", "start"), ("scale-out", "start"), ("scale-out", "done"), ("scale-in", "start"),
        ("scale-in", "start"), ("scale-in", "done")]
    steps = {line["step"] for line in runs if line["command"] == "scale-in" and line["event"] == "step"}
    assert {"drain", "spec", "infrastructure", "inventory", "membership", "verify"} <= steps

"""`rotate-secrets --only trino` on the shared e2e environment, with a client querying in a loop.

Trino's nodes sign their requests to each other with the shared secret and read it only at start,
so every node restarts together: the command says so (--check shows it), the rotation is killed
once Trino's play has changed a file (before any restart), then run again without --only. The
client's queries fail only while Trino restarts (the window the command reports, plus the
client's slack); the coordinator and the worker restarted together, the worker without a drain;
at the end each node answers a peer's request signed with the new secret and refuses one signed
with the old (HTTP 401), asked from the host machine as another node would ask it.
"""

from __future__ import annotations

import importlib.util
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from e2e_env import restarts_reported, rotation_killed_then_resumed, skipped_steps
from e2e_support import CLIENT_SLACK_S, Cluster, Loop

from platform_ctl.history import read as read_history

pytestmark = pytest.mark.e2e

NODES = ("trino-coord1", "trino-worker1")
#: The restarts of the coordinator and the worker begin within this much of each other (one handler
#: task restarts both; the coordinator's stop is measured before it).
TOGETHER_S = 10.0


def _internal_auth():
    """roles/trino's trino_internal_auth module: signs a request as a Trino node would."""
    path = Path(__file__).resolve().parents[2] / "roles/trino/library/trino_internal_auth.py"
    spec = importlib.util.spec_from_file_location("trino_internal_auth", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _started(cluster: Cluster, node: str) -> float:
    """When trino's main process started on ``node``, in seconds of the (shared) monotonic clock."""
    out = subprocess.run(["docker", "exec", f"{cluster.prefix}{node}", "systemctl", "show", "trino",
                          "-p", "ExecMainStartTimestampMonotonic", "--value"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip()) / 1e6


def test_rotating_trinos_shared_secret_restarts_every_node_together(deployed, cluster: Cluster):
    auth = _internal_auth()
    old = cluster.vault["vault_trino_shared_secret"]
    expected = cluster.query("SELECT count(*) FROM tpch.tiny.nation")
    before = {node: _started(cluster, node) for node in NODES}

    plan = deployed.cli("rotate-secrets", deployed.env, "--only", "trino", "--check")
    assert plan.rc == 0, plan.stdout + plan.stderr
    assert "every node restarts together with the new secret" in plan.stdout, plan.stdout
    assert "all of them restart together" in plan.stdout, plan.stdout
    assert "nothing was changed" in plan.stdout, plan.stdout
    assert Cluster(deployed).vault["vault_trino_shared_secret"] == old

    def query() -> None:
        assert Cluster(deployed).query("SELECT count(*) FROM tpch.tiny.nation") == expected

    since = time.time()
    with Loop("trino tpch", query) as queries:
        started = time.monotonic()
        resumed = rotation_killed_then_resumed(deployed, "trino", "query")
        time.sleep(5)  # the loop goes on after the restart
    took = time.monotonic() - started

    skipped = skipped_steps(resumed)
    assert skipped == ["generate"], skipped
    reported = restarts_reported(resumed, "trino")
    assert len(reported) == 1, [e for e in resumed.events if e["kind"] == "message"]
    window = reported[0]["unavailable_s"]
    failed_for = (queries.failures[-1][0] - queries.failures[0][0]) if queries.failures else 0.0
    after = {node: _started(cluster, node) for node in NODES}
    print(f"\ntrino secret rotation (killed + resumed) {took:.0f} s; queries: {queries.ok} ok, {queries.retried} "
          f"retried, {len(queries.failures)} failed over {failed_for:.1f} s; window reported {window:.1f} s; "
          f"restarts began {abs(after['trino-coord1'] - after['trino-worker1']):.1f} s apart")
    assert queries.ok >= 3, queries.failures[:3]
    assert failed_for <= window + CLIENT_SLACK_S, (failed_for, window, queries.failures[:3])

    for node in NODES:
        assert after[node] > before[node], f"{node} did not restart"
    assert abs(after["trino-coord1"] - after["trino-worker1"]) <= TOGETHER_S, after
    journal = subprocess.run(["docker", "exec", f"{cluster.prefix}trino-worker1", "journalctl", "-u", "trino",
                              "--no-pager", "-o", "cat", "--since", f"@{int(since)}"],
                             capture_output=True, text=True, check=True).stdout
    assert "Shutdown requested" not in journal, "the worker was drained although the coordinator restarted too"

    new = Cluster(deployed)
    assert new.vault["vault_trino_shared_secret"] != old
    assert "vault_trino_previous_shared_secret" not in new.vault
    context = ssl.create_default_context(cafile=str(new.ca))
    for node in NODES:
        url = f"https://{new.addresses[node]}:8443"
        assert auth.status_of(url, context, auth.internal_token(new.vault["vault_trino_shared_secret"], "e2e")) == 200
        assert auth.status_of(url, context, auth.internal_token(old, "e2e")) == 401, node
    assert new.query("SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'") == [[len(NODES)]]

    runs = [line for line in read_history(cluster.state) if line["command"] == "rotate-secrets"]
    assert [line["event"] for line in runs if line["event"] in ("start", "done")][-3:] == ["start", "start", "done"]

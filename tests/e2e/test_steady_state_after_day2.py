"""A second `deploy`, after every day-2 command of the suite, runs every phase and changes nothing.

Each of them claims to leave the hosts as a deploy of the (new) spec would: the restores of
test_postgresql_backups.py, both rotations of test_rotate_minio_users.py, the rotation of
test_rotate_postgres_logins.py, the Trino worker's scale-out and scale-in, and the MinIO server
pool's scale-out (4 -> 8 nodes). One deploy here
checks them all: a deploy of this environment takes minutes on CI, and one after each operation
was a fifth of the end-to-end suite's time. When it fails, the changed tasks are in the message
and `.platform/e2e.history.jsonl` says which operation ran last on those hosts.

Runs after test_scale_with_a_minio_pool.py and before test_teardown_destroy.py (pytest orders files
by name). It is also the suite's check that a second deploy is a no-op: a task that changes on
every run shows here as it would right after the first deploy (a separate deploy-again for that
cost another ~220 s of CI).
"""

from __future__ import annotations

import json

import pytest
from e2e_support import changed_tasks, deploy_again

pytestmark = pytest.mark.e2e


def test_a_deploy_after_restores_rotations_and_scale_outs_changes_nothing(deployed):
    again = deploy_again(deployed)
    skipped = [e["phase"] for e in again.events if e["kind"] == "phase_skip"]
    assert skipped == [], "a finished deploy must run every phase"
    played = {host for e in again.events if e["kind"] == "stats" for host in e["data"]["stats"]}
    assert played == set(deployed.hosts_now())
    changed = changed_tasks(again)
    assert changed == {}, f"deploy after the suite's day-2 commands changed: {changed}"


def test_history_lists_every_changing_command_the_suite_ran(deployed):
    """`platform-ctl history` reads back what every changing command recorded on this environment."""
    listed = deployed.cli("history", deployed.env, "--json")
    assert listed.rc == 0, listed.stdout + listed.stderr
    runs = json.loads(listed.stdout)
    done = {r["command"] for r in runs if r["outcome"] == "done"}
    assert {"deploy", "scale-out", "scale-in", "rotate-secrets", "backup", "restore"} <= done, runs
    # The deploy killed in its base play (test_deploy.py) is on record as a run that never ended,
    # and the run that resumed it skipped what it had done.
    assert any(r["command"] == "deploy" and r["outcome"] == "running" for r in runs), runs
    deploys = [r for r in runs if r["command"] == "deploy" and r["outcome"] == "done"]
    assert deploys[-1]["steps"][-1] == "verify"
    table = deployed.cli("history", deployed.env)
    assert table.rc == 0
    print(table.stdout)

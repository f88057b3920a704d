"""A reload-only setting is applied by a reload, a restart-only one by a restart, nothing more.

Runs after test_postgresql.py (file order): it restarts the server, which the checks there must not
see. Each step re-runs the scenario's converge on pg1, limited to the role's configure step, with
other postgresql_settings_overrides; the postmaster's start time tells a reload from a restart.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("postgres")


def _sql(host: testinfra.host.Host, query: str) -> str:
    return host.check_output(f"runuser -u postgres -- psql -d postgres -XAtc {shlex.quote(query)}")


def _converge_pg1(overrides: dict[str, str]) -> None:
    """Run the scenario's converge on pg1, configure step only, with these overrides."""
    playbook = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
    command = ["ansible-playbook", "-i", str(Path(INVENTORY).parent), str(playbook), "--limit", "pg1",
               "--tags", "postgresql_configure", "-e", json.dumps({"postgresql_settings_overrides": overrides})]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_reload_only_change_reloads_and_restart_only_change_restarts(host):
    started = _sql(host, "SELECT pg_postmaster_start_time()")
    computed_work_mem = _sql(host, "SHOW work_mem")
    try:
        _converge_pg1({"work_mem": "5MB", "log_min_duration_statement": "750ms"})
        assert _sql(host, "SHOW work_mem") == "5MB"
        assert _sql(host, "SHOW log_min_duration_statement") == "750ms"
        assert _sql(host, "SELECT pg_postmaster_start_time()") == started, "a reload-only change restarted the server"

        _converge_pg1({"shared_buffers": "200MB"})
        assert _sql(host, "SHOW shared_buffers") == "200MB"
        assert _sql(host, "SELECT pg_postmaster_start_time()") != started, "a restart-only change was not applied"
        assert _sql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
    finally:
        _converge_pg1({})
    # Back to the computed settings, with nothing left waiting for a restart.
    assert _sql(host, "SHOW work_mem") == computed_work_mem
    assert _sql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"

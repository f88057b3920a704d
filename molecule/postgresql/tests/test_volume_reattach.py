"""A host rebuilt around a kept volume gets its cluster back, data included.

`platform-ctl destroy` keeps volumes and the next deploy attaches them to new droplets: the volume
carries a cluster, the new host has no configuration for it. Simulated on pg1 by stopping the
cluster and moving /etc/postgresql/15/main away, then converging the role again. Runs last (file
order): it replaces the cluster's configuration.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("postgres")


def _sql(host: testinfra.host.Host, query: str, database: str = "postgres") -> str:
    return host.check_output(f"runuser -u postgres -- psql -d {database} -XAtc {shlex.quote(query)}")


def test_a_kept_volume_is_adopted_not_reinitialised(host):
    _sql(host, "CREATE TABLE reattach_marker (id int); INSERT INTO reattach_marker VALUES (42)", "iceberg_catalog")
    host.check_output("systemctl stop postgresql@15-main")
    host.check_output("mv /etc/postgresql/15/main /root/postgresql-15-main.before-reattach")
    try:
        playbook = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
        command = ["ansible-playbook", "-i", str(Path(INVENTORY).parent), str(playbook), "--limit", "pg1",
                   "--tags", "postgresql"]
        environment = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=environment)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        # The adoption path ran (not initdb, which would have refused the non-empty directory anyway).
        assert "changed: [pg1] => (item=postgresql.conf)" in done.stdout, done.stdout[-4000:]

        assert _sql(host, "SELECT id FROM reattach_marker", "iceberg_catalog") == "42"
        assert _sql(host, "SHOW data_checksums") == "on"
        assert _sql(host, "SELECT current_setting('data_directory')") == "/var/lib/postgresql-data/15/main"
        assert _sql(host, "SELECT sourcefile FROM pg_settings WHERE name = 'shared_buffers'") == \
            "/etc/postgresql/15/main/conf.d/90-platform.conf"
        assert _sql(host, "SHOW ssl") == "on"
    finally:
        _sql(host, "DROP TABLE IF EXISTS reattach_marker", "iceberg_catalog")
        host.run("rm -rf /root/postgresql-15-main.before-reattach")

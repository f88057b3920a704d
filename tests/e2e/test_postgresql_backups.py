"""PostgreSQL backups on the shared e2e environment: the PITR drill and archiving through a MinIO outage.

Real PostgreSQL on pg1, pgBackRest archiving to the real MinIO cluster over verified TLS, driven by
`platform-ctl backup` and `platform-ctl restore`. Times come from the database server's clock, the
one recovery compares commit timestamps with. Runs after test_minio_node_loss.py and before
test_teardown_destroy.py (pytest orders files by name).
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from e2e_support import Dagster, wait_for

from platform_ctl.backups import parse_target, pg_time

#: A read of Dagster's run storage every proxy user may make.
DAEMON_HEALTH = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"

pytestmark = pytest.mark.e2e

NOW_UTC = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


class Host:
    def __init__(self, deployed, name: str) -> None:
        self.deployed, self.name = deployed, name

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.deployed.exec(self.name, *argv, timeout=timeout)

    def sql(self, query: str) -> str:
        done = self.run("runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query)
        assert done.returncode == 0, f"{query}: {done.stderr}"
        return done.stdout.strip()

    def pgbackrest(self, command: str) -> subprocess.CompletedProcess[str]:
        return self.run("runuser", "-u", "postgres", "--", "pgbackrest", "--stanza=main", command, timeout=300)


@pytest.fixture(scope="module")
def pg(deployed) -> Host:
    return Host(deployed, "pg1")


def _rows(pg: Host, table: str) -> tuple[int, int]:
    """(count, sum of ids) of ``table``."""
    count, total = pg.sql(f"SELECT count(*), coalesce(sum(id), 0) FROM {table}").split("|")
    return int(count), int(total)


def _backups(pg: Host) -> list[dict]:
    """The repository's backup sets, oldest first (pgBackRest's own listing)."""
    done = pg.run("runuser", "-u", "postgres", "--", "pgbackrest", "--stanza=main", "--output=json", "info")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]["backup"]


def _timeline(pg: Host) -> int:
    return int(pg.sql("SELECT timeline_id FROM pg_control_checkpoint()"))


def test_pitr_drill_restores_exactly_the_rows_committed_before_t1(deployed, pg: Host, cluster):
    # Trino's Iceberg catalog holds pooled connections to this server from here on.
    assert ["information_schema"] in cluster.query("SHOW SCHEMAS FROM iceberg")
    pg.sql("DROP TABLE IF EXISTS drill; CREATE TABLE drill (id int PRIMARY KEY, note text NOT NULL)")
    pg.sql("INSERT INTO drill SELECT i, md5(i::text) FROM generate_series(1, 1000) i")

    backup = deployed.cli("backup", deployed.env)
    assert backup.rc == 0, backup.stdout[-2000:] + backup.stderr[-2000:]
    assert "pg1" in backup.stdout
    assert "full" in backup.stdout

    # More rows after the backup, committed in ten transactions: recovery must replay them from WAL.
    for start in range(1001, 1501, 50):
        pg.sql(f"INSERT INTO drill SELECT i, md5(i::text) FROM generate_series({start}, {start + 49}) i")
    t1 = pg.sql(NOW_UTC)
    time.sleep(1.5)
    pg.sql("INSERT INTO drill VALUES (9999, 'committed after T1')")
    time.sleep(1.5)
    pg.sql("DROP TABLE drill")  # T2
    # A backup after the mistake, as the nightly timer takes one: the restore below abandons the branch
    # it is on, so no later restore may start from it (the next test checks that).
    diff = deployed.cli("backup", deployed.env, "--type", "diff")
    assert diff.rc == 0, diff.stdout[-2000:] + diff.stderr[-2000:]
    timeline = _timeline(pg)

    # --check names the backup the restore starts from, and changes nothing.
    planned = deployed.cli("restore", deployed.env, "--to", t1, "--check", "--json")
    assert planned.rc == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    plan = json.loads(planned.stdout.splitlines()[-1])
    assert plan["changed"] is False
    assert plan["plan"][0].startswith("pg1: restore backup ")
    assert plan["plan"][0].endswith(pg_time(parse_target(t1)))
    assert pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'drill'") == "0"
    assert _timeline(pg) == timeline

    restored = deployed.cli("restore", deployed.env, "--to", t1, "--yes")
    assert restored.rc == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    print(f"restore --to {t1}: {restored.seconds:.1f} s")

    # Exactly the rows committed before T1: 1..1500, and not the one committed after it.
    assert _rows(pg, "drill") == (1500, 1500 * 1501 // 2)
    assert pg.sql("SELECT count(*) FROM drill WHERE id = 9999") == "0"
    assert pg.sql("SELECT count(*) FROM drill WHERE note <> md5(id::text)") == "0"
    # Promoted on a new timeline, writable, and archiving from it works.
    assert _timeline(pg) > timeline
    assert pg.sql("SELECT pg_is_in_recovery()") == "f"
    pg.sql("INSERT INTO drill VALUES (10000, 'after the restore')")
    # The restore restarted the server under Trino's pooled catalog connections; the first Iceberg
    # query after it still answers (their 57P01 is retried on a new connection).
    assert ["information_schema"] in cluster.query("SHOW SCHEMAS FROM iceberg")
    # So does each of Dagster's webservers, which holds a pooled connection per storage: the restore
    # restarted them onto new ones (without that, the daemons' heartbeats read and the run launched
    # here fail once each on the dead ones: "SSL connection has been closed unexpectedly").
    for user in ("operator", "viewer"):
        health = Dagster(cluster, user=user).query(DAEMON_HEALTH)["instance"]["daemonHealth"]
        assert health["allDaemonStatuses"], (user, health)
    dagster = Dagster(cluster)
    run_id = dagster.launch("heartbeat")
    assert dagster.wait(run_id, 120) == "SUCCESS", run_id
    check = pg.pgbackrest("check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_wal_archiving_queues_through_a_minio_outage_and_a_restore_inside_it_works(deployed, pg: Host):
    minio = [Host(deployed, f"minio{i}") for i in range(1, 5)]
    pg.sql("DROP TABLE IF EXISTS outage; CREATE TABLE outage (id int PRIMARY KEY)")
    check = pg.pgbackrest("check")  # everything so far is archived
    assert check.returncode == 0, check.stdout + check.stderr

    def on_all(action: str) -> None:
        with ThreadPoolExecutor(len(minio)) as pool:
            results = list(pool.map(lambda h: h.run("systemctl", action, "minio"), minio))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]

    def status(segment: str) -> str:
        return pg.sql(f"SELECT coalesce(string_agg(name, ','), '') FROM pg_ls_archive_statusdir()"
                      f" WHERE name LIKE '{segment}.%'")

    outage_started = time.monotonic()
    on_all("stop")
    try:
        pg.sql("INSERT INTO outage SELECT generate_series(1, 300)")
        first = pg.sql("SELECT pg_walfile_name(pg_switch_wal())")
        t_inside = pg.sql(NOW_UTC)
        time.sleep(1.5)
        pg.sql("INSERT INTO outage SELECT generate_series(301, 500)")
        second = pg.sql("SELECT pg_walfile_name(pg_switch_wal())")
        # pgBackRest keeps retrying the segment it holds; the completed segments wait in pg_wal,
        # marked ready, none lost.
        time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))  # MinIO stays down 30 s or more
        assert status(first) == f"{first}.ready"
        assert status(second) == f"{second}.ready"
        queued = int(pg.sql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"))
    finally:
        on_all("start")
    print(f"MinIO down {time.monotonic() - outage_started:.0f} s, {queued} WAL segments queued")

    wait_for(lambda: pg.sql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'") == "0",
          300, "the queued WAL to be archived after MinIO returned")
    caught_up = time.monotonic()
    check = pg.pgbackrest("check")
    assert check.returncode == 0, check.stdout + check.stderr
    print(f"archive caught up {caught_up - outage_started:.0f} s after the outage began")

    # The newest backup ended before t_inside is the diff of the drill's abandoned branch: the restore
    # starts from the full one before it, whose timeline the server's history goes through.
    full = [b["label"] for b in _backups(pg) if b["type"] == "full"][-1]
    abandoned = [b["label"] for b in _backups(pg) if b["type"] == "diff"][-1]
    planned = deployed.cli("restore", deployed.env, "--to", t_inside, "--check", "--json")
    assert planned.rc == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    plan = json.loads(planned.stdout.splitlines()[-1])["plan"][0]
    assert plan.startswith(f"pg1: restore backup {full} "), plan
    assert f"not {abandoned}, on a timeline a restore abandoned" in plan, plan

    restored = deployed.cli("restore", deployed.env, "--to", t_inside, "--yes")
    assert restored.rc == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    assert _rows(pg, "outage") == (300, 300 * 301 // 2)

"""`rotate-secrets --only postgres` on the shared e2e environment, with clients in a loop.

Three clients run throughout, each with one retry: a Trino query on an Iceberg table (Trino's
catalog logs in to PostgreSQL as the iceberg user), psql as Grafana's database user from Grafana's
host, with the login and password it reads from that host's grafana.ini before each connection (a
client whose configuration the rotation rewrites), and `pgbackrest check` on the PostgreSQL host.
The rotation is killed once Trino's play has changed a file, before Trino restarted, then run
again without --only: it resumes, and the restart still happens. psql and pgBackRest must not fail
once; Trino's clients fail only while its coordinator restarts (said before acting, the window
reported). At the end every old login is refused from its client's host and has neither the
LOGIN attribute nor a password, the new ones work and act as the role that owns the data, and
nothing of the Iceberg table is lost.

psql runs on the host machine inside two namespaces of the droplets: the PostgreSQL host's mount
namespace (its psql, its CA file) and the client host's network namespace (its address, which
pg_hba.conf admits), so the server sees a connection from the client's own address.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from e2e_env import run_and_kill
from e2e_support import CLIENT_SLACK_S, Cluster, Loop, pgbackrest_check

from platform_ctl.history import read as read_history

pytestmark = pytest.mark.e2e

TABLE = "iceberg.rotation.logins"
#: PostgreSQL user -> (database it logs in to, the host its client runs on)
USERS = {"iceberg": ("iceberg_catalog", "trino-coord1"), "grafana": ("grafana", "mon1"),
         "grafana_reader": ("postgres", "mon1")}


def _pid(cluster: Cluster, host: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", f"{cluster.prefix}{host}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def psql_from(cluster: Cluster, host: str, login: str, password: str, database: str,
              sql: str = "SELECT session_user || ' ' || current_user") -> subprocess.CompletedProcess[str]:
    """psql over TLS to pg1 with ``login``, from ``host``'s network namespace (pg1's binaries and CA file)."""
    pg1, client = _pid(cluster, "pg1"), _pid(cluster, host)
    env_name = cluster.prefix.removeprefix("platform-").rstrip("-")
    conninfo = (f"hostaddr={cluster.addresses['pg1']} port=5432 dbname={database} user={login} sslmode=verify-ca "
                f"sslrootcert=/usr/local/share/ca-certificates/platform-{env_name}-ca.crt connect_timeout=10")
    return subprocess.run(["nsenter", f"--mount=/proc/{pg1}/ns/mnt", f"--net=/proc/{client}/ns/net",
                           "env", f"PGPASSWORD={password}", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", conninfo,
                           "-c", sql], capture_output=True, text=True, timeout=60, check=False)


def _grafana_login(cluster: Cluster) -> tuple[str, str]:
    """The database login and password Grafana has now (its grafana.ini on mon1)."""
    ini = subprocess.run(["docker", "exec", f"{cluster.prefix}mon1", "cat", "/etc/grafana/grafana.ini"],
                         capture_output=True, text=True, check=True).stdout
    database = ini.split("[database]", 1)[1].split("\n[", 1)[0]
    user = re.search(r"^user = (\S+)$", database, re.M)
    password = re.search(r'^password = """(.*)"""$', database, re.M)
    assert user, database
    assert password, database
    return user.group(1), password.group(1)


def _logins(cluster: Cluster) -> dict[str, tuple[str, str]]:
    vault = cluster.vault
    return {user: (vault.get(f"vault_postgres_{user}_login", user), vault[f"vault_postgres_{user}_password"])
            for user in USERS}


def test_rotating_the_postgres_logins_keeps_clients_working_and_refuses_the_old_ones(deployed, cluster: Cluster):
    cluster.query("CREATE SCHEMA IF NOT EXISTS iceberg.rotation WITH (location = 's3://warehouse/rotation')")
    cluster.query(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint, note varchar)")
    cluster.query(f"INSERT INTO {TABLE} VALUES (1, 'before the rotation')")
    expected = cluster.query(f"SELECT count(*), max(id) FROM {TABLE}")
    old = _logins(cluster)

    def read_iceberg() -> None:
        assert Cluster(deployed).query(f"SELECT count(*), max(id) FROM {TABLE}") == expected

    def grafana_psql() -> None:
        login, password = _grafana_login(cluster)
        done = psql_from(cluster, "mon1", login, password, "grafana")
        if done.returncode != 0:
            raise RuntimeError(f"psql as {login}: {done.stderr.strip()}")

    plan = deployed.cli("rotate-secrets", deployed.env, "--only", "postgres", "--check")
    assert plan.rc == 0, plan.stdout + plan.stderr
    assert "iceberg_a replaces iceberg (restarts Trino)" in plan.stdout, plan.stdout
    assert "nothing was changed" in plan.stdout, plan.stdout
    assert _logins(Cluster(deployed)) == old

    with Loop("pgbackrest check", lambda: pgbackrest_check(cluster)) as backups, \
            Loop("psql as grafana", grafana_psql) as psql, Loop("trino iceberg", read_iceberg) as queries:
        started = time.monotonic()
        killed = run_and_kill(deployed.project, ("rotate-secrets", deployed.env, "--only", "postgres", "--yes"),
                              "query", 1, ("changed",))
        assert killed.rc == -9, killed.stdout[-2000:]
        resumed = deployed.cli("rotate-secrets", deployed.env, "--yes", "--json")
        assert resumed.rc == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        time.sleep(5)  # the loops go on with the new logins
    took = time.monotonic() - started

    skipped = [e["phase"] for e in resumed.events if e["kind"] == "phase_skip"]
    assert skipped == ["generate", "add", "give-grafana-grafana_reader"], skipped
    reported = [e["data"] for e in resumed.events if e["kind"] == "message" and e["data"].get("component") == "trino"]
    assert len(reported) == 1, [e for e in resumed.events if e["kind"] == "message"]
    window = reported[0]["unavailable_s"]
    failed_for = (queries.failures[-1][0] - queries.failures[0][0]) if queries.failures else 0.0
    print(f"\npostgres rotation (killed + resumed) {took:.0f} s; psql: {psql.ok} ok, {psql.retried} retried, "
          f"{len(psql.failures)} failed; pgbackrest check: {backups.ok} ok, {backups.retried} retried, "
          f"{len(backups.failures)} failed; trino: {queries.ok} ok, {queries.retried} retried, "
          f"{len(queries.failures)} failed over {failed_for:.1f} s; coordinator restart reported {window:.1f} s")
    assert psql.ok >= 3
    assert not psql.failures, psql.failures[:3]
    assert backups.ok >= 3
    assert not backups.failures, backups.failures[:3]
    assert queries.ok >= 3, queries.failures[:3]
    assert failed_for <= window + CLIENT_SLACK_S, (failed_for, window, queries.failures[:3])

    after = Cluster(deployed)
    new = _logins(after)
    assert _grafana_login(after) == new["grafana"]
    for user, (database, host) in USERS.items():
        assert old[user][0] == user, old[user][0]
        assert new[user][0] == f"{user}_a", new[user][0]
        assert new[user][1] != old[user][1], user
        refused = psql_from(after, host, *old[user], database)
        assert refused.returncode != 0, (user, refused.stdout)
        assert "FATAL" in refused.stderr, (user, refused.stderr)
        works = psql_from(after, host, *new[user], database)
        assert works.returncode == 0, (user, works.stderr)
        # A user's login acts as the role that owns the data; a monitoring login is a role of its own.
        assert works.stdout.strip() == f"{user}_a {user if user != 'grafana_reader' else user + '_a'}", works.stdout
    # Refused by PostgreSQL itself, not only by pg_hba.conf (which no longer names them): no login, no password.
    retired = ",".join(login for login, _ in old.values())
    assert after.psql("postgres", "SELECT count(*) FROM pg_authid WHERE rolname = ANY(string_to_array("
                      f"'{retired}', ',')) AND NOT rolcanlogin AND rolpassword IS NULL") == str(len(old)), retired
    owners = after.psql("iceberg_catalog", "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == "iceberg", owners
    assert after.query(f"SELECT count(*), max(id) FROM {TABLE}") == expected
    assert "vault_postgres_previous_logins" not in after.vault

    runs = [line for line in read_history(cluster.state) if line["command"] == "rotate-secrets"]
    assert [line["event"] for line in runs if line["event"] in ("start", "done")][-3:] == ["start", "start", "done"]

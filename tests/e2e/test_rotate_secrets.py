"""`rotate-secrets ENV` (no --only) on the shared e2e environment, with clients in a loop: every secret
but the CA in one run, MinIO and Trino restarted once each.

Five clients run throughout, each with one retry: `pgbackrest check` on the PostgreSQL host (it
archives a WAL segment to MinIO with pgBackRest's MinIO user, from the configuration the rotation
rewrites), psql as Grafana's database user from Grafana's host (the login and password it reads
from that host's grafana.ini before each connection), a Trino query on an Iceberg table (Trino's
catalog reads MinIO with the warehouse user and PostgreSQL with the iceberg login), and a client
PUTting and GETting objects through one MinIO node with the warehouse user, which takes the vault's
current credentials when MinIO says its key is unknown (a client whose secret store the rotation
updates), and Dagster's heartbeat job launched through the proxy as the operator, one run after the
other (each run queries Trino as the pipelines user and lists the landing bucket with the code
server's key). The Trino and Dagster clients take the vault's current password and, while the
rotation keeps it, the one it replaced when refused.

The rotation is killed once the storage play has written a node's new root credential (before
MinIO restarted), run again and killed once Trino's play has changed a file (before Trino
restarted), then run to the end: each restart still happens, once. psql never fails; pgBackRest,
the object client and Trino fail only while MinIO or Trino restarts (the windows the command
reports). At the end every old credential is refused (MinIO users and root by two nodes, the
PostgreSQL logins from their client hosts and in pg_authid, Trino's old secret by every node, Trino's
users' old passwords, Dagster's old proxy passwords and JupyterLab's old token), the new ones work
(Prometheus scrapes Trino with its new password), nothing acknowledged or stored is lost, and the
vault holds no old secret.

psql runs on the host machine inside two namespaces of the droplets: the PostgreSQL host's mount
namespace (its psql, its CA file) and the client host's network namespace (its address, which
pg_hba.conf admits), so the server sees a connection from the client's own address.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
import urllib3
from e2e_env import Deployed, killed_then_resumed, restarts_reported, skipped_steps
from e2e_support import (
    CLIENT_SLACK_S,
    PACE_S,
    Background,
    Cluster,
    Dagster,
    Loop,
    keep_going,
    pgbackrest_check,
    wait_for,
)
from minio import Minio
from minio.error import S3Error

from platform_ctl.environment import Environment
from platform_ctl.history import read as read_history
from platform_ctl.monitoring import connect
from platform_ctl.paths import Project
from platform_ctl.rotation import PREVIOUS_PASSWORDS

pytestmark = pytest.mark.e2e

TABLE = "iceberg.rotation.events"
#: MinIO user -> its bucket.
MINIO_USERS = {"warehouse": "warehouse", "pgbackrest": "pgbackrest", "landing": "landing", "jupyter": "warehouse"}
#: PostgreSQL user -> (database it logs in to, the host its client runs on)
PG_USERS = {"iceberg": ("iceberg_catalog", "trino-coord1"), "grafana": ("grafana", "mon1"),
            "grafana_reader": ("postgres", "mon1")}
TRINO_NODES = ("trino-coord1", "trino-worker1")
MINIO_NODES = ("minio1", "minio2", "minio3", "minio4")
#: A MinIO node that started before its peers reconnects their drives at MinIO's next 15 s tick
#: (README, rotate-secrets): writes through it can fail that much longer than the reported window.
MINIO_RECONNECT_S = 15
#: The passwords and tokens clients present (rotate-secrets' catalogue PASSWORDS).
TRINO_USERS = ("admin", "pipelines", "analyst", "monitoring")
PASSWORD_KEYS = (*(f"vault_trino_{user}_password" for user in TRINO_USERS), "vault_dagster_operator_password",
                 "vault_dagster_viewer_password", "vault_jupyterlab_token")
#: Before each heartbeat run, a retry included: each run is a process on the apps host (its code
#: location loads dbt's manifest), and the rotation needs the CPU (paced 10 s after successes only,
#: the fresh-clone run launched 39 runs during the rotation and took 196 s longer).
HEARTBEAT_PACE_S = 20
#: Failures more than this apart belong to different restarts.
BURST_GAP_S = 30.0


def _s3(cluster: Cluster, node: str, access_key: str, secret_key: str) -> Minio:
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(cluster.ca), timeout=15, retries=False)
    return Minio(f"{cluster.addresses[node]}:9000", access_key, secret_key, secure=True, http_client=http)


def _minio_keys(cluster: Cluster) -> dict[str, tuple[str, str]]:
    vault = cluster.vault
    keys = {user: (vault.get(f"vault_minio_{user}_access_key", user), vault[f"vault_minio_{user}_secret_key"])
            for user in MINIO_USERS}
    return {**keys, "root": (vault["vault_minio_root_user"], vault["vault_minio_root_password"])}


def _logins(cluster: Cluster) -> dict[str, tuple[str, str]]:
    vault = cluster.vault
    return {user: (vault.get(f"vault_postgres_{user}_login", user), vault[f"vault_postgres_{user}_password"])
            for user in PG_USERS}


def _previous(cluster: Cluster, key: str) -> str | None:
    """The password ``key`` had before the rotation, while the vault keeps it (until the rotation's end)."""
    return json.loads(cluster.vault.get(PREVIOUS_PASSWORDS, "{}")).get(key)


def _query_as_client(deployed: Deployed, sql: str) -> list[list]:
    """As admin, with the vault's current password, or the one it replaced when Trino does not know the new
    one yet (between the rotation's generate and query steps)."""
    cluster = Cluster(deployed)
    try:
        return cluster.query(sql)
    except Exception as exc:
        previous = _previous(cluster, "vault_trino_admin_password")
        if "401" not in str(exc) or previous is None:
            raise
    cursor = cluster.connect(password=previous).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def _heartbeat(deployed: Deployed) -> None:
    """One run of Dagster's heartbeat job through the proxy as the operator (the vault's password, or the one
    it replaced while the proxy has not the new one yet), waited for until it ends; raises unless SUCCESS.
    Paced before each try, the retry after a failure included."""
    time.sleep(HEARTBEAT_PACE_S)
    cluster = Cluster(deployed)
    dagster = Dagster(cluster)
    previous = _previous(cluster, "vault_dagster_operator_password")
    if previous and requests.get(dagster.url.replace("/graphql", "/server_info"), auth=dagster.auth,
                                 verify=dagster.ca, timeout=30).status_code == 401:
        dagster = Dagster(cluster, previous)
    run_id = dagster.launch("heartbeat")
    status = dagster.wait(run_id, 120)
    if status != "SUCCESS":
        raise RuntimeError(f"heartbeat run {run_id}: {status}")


def _status(url: str, ca: Path, auth: tuple[str, str] | None = None, token: str | None = None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(url, auth=auth, headers=headers, verify=str(ca), timeout=30).status_code


def _pid(deployed: Deployed, host: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", deployed.container(host)],
                          capture_output=True, text=True, check=True).stdout.strip()


def psql_from(cluster: Cluster, host: str, login: str, password: str, database: str,
              sql: str = "SELECT session_user || ' ' || current_user") -> subprocess.CompletedProcess[str]:
    """psql over TLS to pg1 with ``login``, from ``host``'s network namespace (pg1's binaries and CA file)."""
    pg1, client = _pid(cluster.deployed, "pg1"), _pid(cluster.deployed, host)
    conninfo = (f"hostaddr={cluster.addresses['pg1']} port=5432 dbname={database} user={login} sslmode=verify-ca "
                f"sslrootcert=/usr/local/share/ca-certificates/platform-{cluster.deployed.env}-ca.crt "
                "connect_timeout=10")
    return subprocess.run(["nsenter", f"--mount=/proc/{pg1}/ns/mnt", f"--net=/proc/{client}/ns/net",
                           "env", f"PGPASSWORD={password}", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", conninfo,
                           "-c", sql], capture_output=True, text=True, timeout=60, check=False)


def _grafana_login(cluster: Cluster) -> tuple[str, str]:
    """The database login and password Grafana has now (its grafana.ini on mon1)."""
    ini = cluster.deployed.exec("mon1", "cat", "/etc/grafana/grafana.ini", check=True).stdout
    database = ini.split("[database]", 1)[1].split("\n[", 1)[0]
    user = re.search(r"^user = (\S+)$", database, re.M)
    password = re.search(r'^password = """(.*)"""$', database, re.M)
    assert user, database
    assert password, database
    return user.group(1), password.group(1)


def _internal_auth():
    """roles/trino's trino_internal_auth module: signs a request as a Trino node would."""
    path = Path(__file__).resolve().parents[2] / "roles/trino/library/trino_internal_auth.py"
    spec = importlib.util.spec_from_file_location("trino_internal_auth", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _starts(deployed: Deployed, hosts: tuple[str, ...], unit: str, since: float) -> dict[str, int]:
    """How many times ``unit`` started on each host since ``since`` (epoch seconds), from its journal."""
    counts = {}
    for host in hosts:
        journal = deployed.exec(host, "journalctl", "-u", unit, "--no-pager", "-o", "cat", "--since",
                                f"@{int(since)}", check=True).stdout
        counts[host] = sum(1 for line in journal.splitlines() if line.startswith(f"Started {unit}.service"))
    return counts


def _bursts(failures: list[float]) -> list[float]:
    """The lengths of the runs of failures (failures closer than BURST_GAP_S to each other)."""
    bursts: list[list[float]] = []
    for at in failures:
        if bursts and at - bursts[-1][1] <= BURST_GAP_S:
            bursts[-1][1] = at
        else:
            bursts.append([at, at])
    return [end - start for start, end in bursts]


class ObjectLoop(Background):
    """PUTs then GETs small objects through one node with the warehouse user; takes the vault's current
    credentials when MinIO no longer knows the key it has; counts what is lost."""

    def __init__(self, deployed: Deployed, node: str) -> None:
        super().__init__()
        self.deployed, self.node = deployed, node
        self.client = self._client()
        self.acknowledged: dict[str, bytes] = {}
        self.failed_at: list[float] = []
        self.switched = 0

    def _client(self) -> Minio:
        cluster = Cluster(self.deployed)
        return _s3(cluster, self.node, *_minio_keys(cluster)["warehouse"])

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            key, body = f"rotation-all/{i:06d}", os.urandom(2048)
            try:
                self.client.put_object("warehouse", key, io.BytesIO(body), len(body))
                self.acknowledged[key] = body
                i += 1
                self.client.get_object("warehouse", key).read()
            except S3Error as exc:
                if exc.code == "InvalidAccessKeyId":
                    self.client = self._client()
                    self.switched += 1
                    continue
                self.failed_at.append(time.monotonic())
                time.sleep(0.2)
                continue
            except Exception:
                self.failed_at.append(time.monotonic())
                time.sleep(0.2)
                continue
            self._stop.wait(PACE_S)


def test_rotating_every_secret_restarts_minio_and_trino_once_and_refuses_the_old_ones(deployed, cluster: Cluster):
    cluster.query("CREATE SCHEMA IF NOT EXISTS iceberg.rotation WITH (location = 's3://warehouse/rotation')")
    cluster.query(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint, note varchar)")
    cluster.query(f"INSERT INTO {TABLE} VALUES (1, 'before the rotation')")
    expected = cluster.query(f"SELECT count(*), max(id) FROM {TABLE}")
    old_keys, old_logins = _minio_keys(cluster), _logins(cluster)
    old_secret = cluster.vault["vault_trino_shared_secret"]
    old_passwords = {key: cluster.vault[key] for key in PASSWORD_KEYS}

    plan = deployed.cli("rotate-secrets", deployed.env, "--check")
    assert plan.rc == 0, plan.stdout + plan.stderr
    said = " ".join(plan.stdout.split())  # the CLI wraps its lines
    assert said.count("every node restarts together, once") == 2, plan.stdout
    assert "nothing was changed" in said, plan.stdout
    assert _minio_keys(Cluster(deployed)) == old_keys, "--check writes nothing"
    refused = deployed.cli("rotate-secrets", deployed.env)
    assert refused.rc == 2, refused.stderr[-500:]
    assert "add --yes" in refused.stderr, refused.stderr[-500:]

    def read_iceberg() -> None:
        assert _query_as_client(deployed, f"SELECT count(*), max(id) FROM {TABLE}") == expected

    def grafana_psql() -> None:
        login, password = _grafana_login(cluster)
        done = psql_from(cluster, "mon1", login, password, "grafana")
        if done.returncode != 0:
            raise RuntimeError(f"psql as {login}: {done.stderr.strip()}")

    since = time.time()
    with Loop("pgbackrest check", lambda: pgbackrest_check(cluster)) as backups, \
            Loop("psql as grafana", grafana_psql) as psql, Loop("trino iceberg", read_iceberg) as queries, \
            ObjectLoop(deployed, "minio2") as objects, Loop("dagster heartbeat", lambda: _heartbeat(deployed)) as beats:
        started = time.monotonic()
        runs = killed_then_resumed(deployed, ("rotate-secrets", deployed.env), ["storage", "query"])
        ended = time.monotonic()
        keep_going(backups, psql, queries)  # the clients go on with the new credentials
        keep_going(beats, seconds=300)
    took = time.monotonic() - started

    assert skipped_steps(runs[1]) == ["generate"], skipped_steps(runs[1])
    assert skipped_steps(runs[2]) == ["generate", "storage", "metadata"], skipped_steps(runs[2])
    minio = [r for run in runs for r in restarts_reported(run, "minio")]
    trino = [r for run in runs for r in restarts_reported(run, "trino")]
    assert len(minio) == 1, minio
    assert len(trino) == 1, trino
    assert minio[0]["nodes"] == len(MINIO_NODES)
    minio_window, trino_window = minio[0]["unavailable_s"], trino[0]["unavailable_s"]
    # Each node of each restarted component started once (its service's journal since the rotation began).
    assert _starts(deployed, MINIO_NODES, "minio", since) == dict.fromkeys(MINIO_NODES, 1)
    assert _starts(deployed, TRINO_NODES, "trino", since) == dict.fromkeys(TRINO_NODES, 1)

    outage_bound = max(trino_window, minio_window + MINIO_RECONNECT_S) + CLIENT_SLACK_S
    query_bursts = _bursts([at for at, _ in queries.failures])
    backup_bursts = _bursts([at for at, _ in backups.failures])
    object_bursts = _bursts(objects.failed_at)
    beat_bursts = _bursts([at for at, _ in beats.failures])
    print(f"\nrotation (killed twice + resumed) {took:.0f} s; windows reported: MinIO {minio_window:.1f} s, "
          f"Trino {trino_window:.1f} s; psql: {psql.ok} ok, {psql.retried} retried, {len(psql.failures)} failed; "
          f"pgbackrest check: {backups.ok} ok, {len(backups.failures)} failed in bursts {backup_bursts}; "
          f"trino: {queries.ok} ok, {len(queries.failures)} failed in bursts {[round(b, 1) for b in query_bursts]}; "
          f"objects: {len(objects.acknowledged)} acknowledged, {objects.switched} credential switches, failures in "
          f"bursts {[round(b, 1) for b in object_bursts]}; heartbeat runs: {beats.ok} ok, {beats.retried} retried, "
          f"{len(beats.failures)} failed in bursts {[round(b, 1) for b in beat_bursts]} "
          f"{[error for _, error in beats.failures][:4]}")
    assert psql.ok >= 3
    assert not psql.failures, psql.failures[:3]
    for name, bursts in (("pgbackrest", backup_bursts), ("trino", query_bursts), ("objects", object_bursts)):
        assert len(bursts) <= 2, (name, bursts)  # MinIO's restart, Trino's
        assert all(b <= outage_bound for b in bursts), (name, bursts, outage_bound)
    assert backups.ok >= 3
    assert queries.ok >= 3, queries.failures[:3]
    assert objects.switched >= 1, "the object client never met its old key refused"
    # A heartbeat run reads MinIO (restarted), Trino (restarted) and runs in the code server (restarted).
    assert beats.ok >= 3, beats.failures[:3]
    assert len(beat_bursts) <= 3, (beat_bursts, beats.failures)
    assert len(objects.acknowledged) >= 10

    after_cluster = Cluster(deployed)
    new_keys, new_logins = _minio_keys(after_cluster), _logins(after_cluster)
    for user, bucket in MINIO_USERS.items():
        assert new_keys[user][0] != old_keys[user][0], user
        assert new_keys[user][1] != old_keys[user][1], user
        for node in ("minio1", "minio3"):
            with pytest.raises(S3Error) as error:
                list(_s3(cluster, node, *old_keys[user]).list_objects(bucket))
            assert error.value.code == "InvalidAccessKeyId", (user, node, error.value.code)
            assert _s3(cluster, node, *new_keys[user]).bucket_exists(bucket), (user, node)
    assert new_keys["root"][0] != old_keys["root"][0]
    for node in ("minio1", "minio4"):
        with pytest.raises(S3Error) as error:
            _s3(after_cluster, node, *old_keys["root"]).list_buckets()
        assert error.value.code == "InvalidAccessKeyId", (node, error.value.code)
        assert "warehouse" in {b.name for b in _s3(after_cluster, node, *new_keys["root"]).list_buckets()}
    reader = _s3(after_cluster, "minio3", *new_keys["warehouse"])
    lost = [key for key, body in objects.acknowledged.items() if reader.get_object("warehouse", key).read() != body]
    assert not lost, lost[:5]

    # Dagster's code server has the landing user's new key: a sensor tick after the rotation lists the
    # bucket with it (SKIPPED: nothing new; a refused key would be a FAILURE tick).
    env_file = deployed.exec("apps1", "cat", "/etc/dagster/pipelines.env", check=True).stdout
    assert f"PLATFORM_LANDING_ACCESS_KEY={new_keys['landing'][0]}\n" in env_file
    dagster, done = Dagster(after_cluster), time.time()
    ticks: list[dict] = []

    def ticked_after_rotation() -> bool:
        nonlocal ticks
        # A tick still being evaluated is STARTED: only an ended one says how the listing went.
        ticks = [t for t in dagster.sensor_ticks("landing_orders_sensor")
                 if t["timestamp"] > done and t["status"] != "STARTED"]
        return bool(ticks)

    wait_for(ticked_after_rotation, 120, "an ended landing sensor tick after the rotation")
    assert {t["status"] for t in ticks} == {"SKIPPED"}, ticks

    assert _grafana_login(after_cluster) == new_logins["grafana"]
    for user, (database, host) in PG_USERS.items():
        assert new_logins[user][0] != old_logins[user][0], user
        assert new_logins[user][1] != old_logins[user][1], user
        refused_login = psql_from(after_cluster, host, *old_logins[user], database)
        assert refused_login.returncode != 0, (user, refused_login.stdout)
        assert "FATAL" in refused_login.stderr, (user, refused_login.stderr)
        works = psql_from(after_cluster, host, *new_logins[user], database)
        assert works.returncode == 0, (user, works.stderr)
        # A user's login acts as the role that owns the data; a monitoring login is a role of its own.
        login = new_logins[user][0]
        assert works.stdout.strip() == f"{login} {user if user != 'grafana_reader' else login}", works.stdout
    # Refused by PostgreSQL itself, not only by pg_hba.conf (which no longer names them): no login, no password.
    retired = ",".join(login for login, _ in old_logins.values())
    assert after_cluster.psql("postgres", "SELECT count(*) FROM pg_authid WHERE rolname = ANY(string_to_array("
                              f"'{retired}', ',')) AND NOT rolcanlogin AND rolpassword IS NULL") == \
        str(len(old_logins)), retired
    owners = after_cluster.psql("iceberg_catalog",
                                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == "iceberg", owners
    assert after_cluster.query(f"SELECT count(*), max(id) FROM {TABLE}") == expected

    auth = _internal_auth()
    new_secret = after_cluster.vault["vault_trino_shared_secret"]
    assert new_secret != old_secret
    context = ssl.create_default_context(cafile=str(after_cluster.ca))
    for node in TRINO_NODES:
        url = f"https://{after_cluster.addresses[node]}:8443"
        assert auth.status_of(url, context, auth.internal_token(new_secret, "e2e")) == 200, node
        assert auth.status_of(url, context, auth.internal_token(old_secret, "e2e")) == 401, node
    assert after_cluster.query("SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'") == \
        [[len(TRINO_NODES)]]

    # The passwords and tokens: every old one refused, every new one accepted.
    ca, addresses = after_cluster.ca, after_cluster.addresses
    for key in PASSWORD_KEYS:
        assert after_cluster.vault[key] != old_passwords[key], key
    for user in TRINO_USERS:
        url, key = f"https://{addresses['trino-coord1']}:8443/v1/query", f"vault_trino_{user}_password"
        assert _status(url, ca, (user, old_passwords[key])) == 401, user
        assert _status(url, ca, (user, after_cluster.vault[key])) == 200, user
    for user in ("operator", "viewer"):
        url, key = f"https://{addresses['apps1']}:3070/server_info", f"vault_dagster_{user}_password"
        assert _status(url, ca, (user, old_passwords[key])) == 401, user
        assert _status(url, ca, (user, after_cluster.vault[key])) == 200, user
    url = f"https://{addresses['apps1']}:8888/api/status"
    assert _status(url, ca, token=old_passwords["vault_jupyterlab_token"]) == 403
    assert _status(url, ca, token=after_cluster.vault["vault_jupyterlab_token"]) == 200
    # Prometheus scrapes Trino with its new password (the old one is refused since refuse-passwords).
    monitoring = connect(Environment.load(Project(deployed.project), deployed.env))
    time.sleep(max(0.0, ended + 30 - time.monotonic()))  # two scrapes after the rotation's end, at least
    scrapes = monitoring.query('min_over_time(up{job="trino"}[30s])')
    assert [s["value"][1] for s in scrapes] == ["1"] * len(TRINO_NODES), scrapes

    assert not {"vault_minio_previous_users", "vault_postgres_previous_logins",
                "vault_trino_previous_shared_secret", PREVIOUS_PASSWORDS} & set(after_cluster.vault)
    history = [line for line in read_history(cluster.state) if line["command"] == "rotate-secrets"]
    assert [line["event"] for line in history if line["event"] in ("start", "done")][-4:] == \
        ["start", "start", "start", "done"]
    assert [line["step"] for line in history if line["event"] == "step"][-1] == "verify"

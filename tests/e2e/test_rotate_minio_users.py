"""`rotate-secrets --only minio` on the shared e2e environment, with clients in a loop.

Two clients run throughout: `pgbackrest check` on the PostgreSQL host (it archives a WAL segment
to MinIO with pgBackRest's MinIO user) and a Trino query on an Iceberg table (Trino reads the
table's files with the warehouse user). Each operation gets one retry. The rotation is killed once
Trino's play has changed a file but before Trino restarted, then run again without --only: it
resumes, and the restart still happens. pgBackRest must not fail
once; Trino's clients fail only while its coordinator restarts (the rotation says so before acting
and reports the window, which the client's own measure is compared with). At the end the old
users' credentials are refused by two MinIO nodes and the new ones work.

Then `--only minio-root`, with a client PUTting and GETting through the warehouse user in a loop:
killed once the storage play has written a node's new credentials (before the restart), then run
again. Every node restarts together; the unavailability is reported and the client's own measure
is under 30 s; every acknowledged object reads back intact; the old root credential is refused.
That `deploy` changes nothing afterwards is checked once for every day-2 command of the suite, in
test_steady_state_after_day2.py.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import pytest
import urllib3
from e2e_env import restarts_reported, rotation_killed_then_resumed, skipped_steps
from e2e_support import CLIENT_SLACK_S, PACE_S, Cluster, Loop, pgbackrest_check
from minio import Minio
from minio.error import S3Error

from platform_ctl.history import read as read_history

pytestmark = pytest.mark.e2e

TABLE = "iceberg.rotation.events"
USERS = {"warehouse": "warehouse", "pgbackrest": "pgbackrest"}  # MinIO user -> its bucket
def _s3(cluster: Cluster, node: str, access_key: str, secret_key: str) -> Minio:
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(cluster.ca), timeout=15, retries=False)
    return Minio(f"{cluster.addresses[node]}:9000", access_key, secret_key, secure=True, http_client=http)


def _credentials(cluster: Cluster) -> dict[str, tuple[str, str]]:
    vault = cluster.vault
    return {user: (vault.get(f"vault_minio_{user}_access_key", user), vault[f"vault_minio_{user}_secret_key"])
            for user in USERS}


def test_rotating_the_minio_users_keeps_clients_working_and_refuses_the_old_keys(deployed, cluster: Cluster):
    cluster.query("CREATE SCHEMA IF NOT EXISTS iceberg.rotation WITH (location = 's3://warehouse/rotation')")
    cluster.query(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint, note varchar)")
    cluster.query(f"INSERT INTO {TABLE} VALUES (1, 'before the rotation')")
    expected = cluster.query(f"SELECT count(*), max(id) FROM {TABLE}")
    old = _credentials(cluster)

    def read_iceberg() -> None:
        assert Cluster(deployed).query(f"SELECT count(*), max(id) FROM {TABLE}") == expected

    plan = deployed.cli("rotate-secrets", deployed.env, "--only", "minio", "--check")
    assert plan.rc == 0, plan.stdout + plan.stderr
    assert "restarts" in plan.stdout, plan.stdout
    assert "nothing was changed" in plan.stdout, plan.stdout
    refused = deployed.cli("rotate-secrets", deployed.env, "--only", "minio")
    assert refused.rc == 2, refused.stderr[-500:]
    assert "add --yes" in refused.stderr, refused.stderr[-500:]

    with Loop("pgbackrest check", lambda: pgbackrest_check(cluster)) as backups, \
            Loop("trino iceberg", read_iceberg) as queries:
        started = time.monotonic()
        # Killed once Trino's play has changed a file and before its handler restarted it: the
        # restart is owed, and the resumed run must find that out (roles/_common restart_owed).
        resumed = rotation_killed_then_resumed(deployed, "minio", "query")
        time.sleep(10)  # the loops go on with the new users
    took = time.monotonic() - started

    skipped = skipped_steps(resumed)
    assert skipped == ["generate", "add", "give-pgbackrest", "give-prometheus"], skipped
    reported = restarts_reported(resumed, "trino")
    assert len(reported) == 1, [e for e in resumed.events if e["kind"] == "message"]
    window = reported[0]["unavailable_s"]
    failed_for = (queries.failures[-1][0] - queries.failures[0][0]) if queries.failures else 0.0
    print(f"\nrotation (killed + resumed) {took:.0f} s; pgbackrest check: {backups.ok} ok, {backups.retried} retried, "
          f"{len(backups.failures)} failed; trino: {queries.ok} ok, {queries.retried} retried, "
          f"{len(queries.failures)} failed over {failed_for:.1f} s; coordinator restart reported {window:.1f} s")
    assert backups.ok >= 3
    assert not backups.failures, backups.failures[:3]
    assert queries.ok >= 3, queries.failures[:3]
    assert failed_for <= window + CLIENT_SLACK_S, (failed_for, window, queries.failures[:3])

    new = _credentials(Cluster(deployed))
    for user, bucket in USERS.items():
        assert new[user][0] != old[user][0], user
        assert new[user][1] != old[user][1], user
        for node in ("minio1", "minio3"):
            with pytest.raises(S3Error) as error:
                list(_s3(cluster, node, *old[user]).list_objects(bucket))
            assert error.value.code == "InvalidAccessKeyId", (user, node, error.value.code)
            assert _s3(cluster, node, *new[user]).bucket_exists(bucket), (user, node)
    assert "vault_minio_previous_users" not in Cluster(deployed).vault

    runs = [line for line in read_history(cluster.state) if line["command"] == "rotate-secrets"]
    assert [line["event"] for line in runs if line["event"] in ("start", "done")][-3:] == ["start", "start", "done"]


class ObjectLoop:
    """PUTs then GETs small objects through one node with the warehouse user; counts what is lost."""

    def __init__(self, cluster: Cluster, node: str) -> None:
        self.client = _s3(cluster, node, *_credentials(cluster)["warehouse"])
        self.acknowledged: dict[str, bytes] = {}
        self.failed_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import io
        import os

        i = 0
        while not self._stop.is_set():
            key, body = f"rotation-root/{i:06d}", os.urandom(2048)
            try:
                self.client.put_object("warehouse", key, io.BytesIO(body), len(body))
                self.acknowledged[key] = body
                i += 1
                self.client.get_object("warehouse", key).read()
            except Exception:
                self.failed_at.append(time.monotonic())
                time.sleep(0.2)
                continue
            self._stop.wait(PACE_S)

    @property
    def longest_outage(self) -> float:
        """The longest run of failures with no success between (gaps under 2 s joined)."""
        if not self.failed_at:
            return 0.0
        longest, start, last = 0.0, self.failed_at[0], self.failed_at[0]
        for at in self.failed_at[1:]:
            if at - last > 2:
                start = at
            last = at
            longest = max(longest, last - start)
        return longest

    def __enter__(self) -> ObjectLoop:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def test_rotating_the_root_credential_restarts_minio_once_and_refuses_the_old_one(deployed):
    before = Cluster(deployed)
    old_root = (before.vault["vault_minio_root_user"], before.vault["vault_minio_root_password"])
    with ObjectLoop(before, "minio2") as objects:
        time.sleep(5)
        resumed = rotation_killed_then_resumed(deployed, "minio-root", "storage")
        time.sleep(5)
    reported = restarts_reported(resumed, "minio")
    assert len(reported) == 1, [e for e in resumed.events if e["kind"] == "message"]
    print(f"\nroot rotation: {len(objects.acknowledged)} objects acknowledged, client's longest outage "
          f"{objects.longest_outage:.1f} s, reported {reported[0]['unavailable_s']:.1f} s on "
          f"{reported[0]['nodes']} nodes")
    assert reported[0]["nodes"] == len([h for h in before.addresses if h.startswith("minio")])
    assert reported[0]["unavailable_s"] < 30
    assert objects.longest_outage < 30

    after = Cluster(deployed)
    new_root = (after.vault["vault_minio_root_user"], after.vault["vault_minio_root_password"])
    assert new_root[0] != old_root[0]
    for node in ("minio1", "minio4"):
        with pytest.raises(S3Error) as error:
            _s3(after, node, *old_root).list_buckets()
        assert error.value.code == "InvalidAccessKeyId", (node, error.value.code)
        assert "warehouse" in {b.name for b in _s3(after, node, *new_root).list_buckets()}
    reader = _s3(after, "minio3", *_credentials(after)["warehouse"])
    lost = [key for key, body in objects.acknowledged.items() if reader.get_object("warehouse", key).read() != body]
    assert not lost, lost[:5]
    assert len(objects.acknowledged) >= 10

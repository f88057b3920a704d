"""Day-2 MinIO scale-out by a server pool (4 -> 8 nodes) on the shared e2e environment, under load.

A client PUTs and GETs in a loop throughout, through the first pool's nodes in turn, each request
tried once. `scale-out --count +4` is killed while the new hosts converge, then run again without
--count. Every node restarts in one parallel step: the CLI reports the measured unavailability,
the client measures its own (the longest run of failed requests), and both must stay under 30 s.
No acknowledged object may be lost: afterwards every one reads back intact, through an old and a
new node. Runs after test_scale_trino_workers.py (pytest orders files by name), which ends with
the environment as it began, so both scale-outs fit this machine's memory budget in turn; the
teardown after it removes all eight MinIO hosts.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import signal
import time

import pytest
import yaml
from e2e_env import run_and_kill
from e2e_support import PACE_S, Background, Cluster, wait_for
from minio.error import S3Error

pytestmark = pytest.mark.e2e

BUCKET = "pool-test"
#: The issue's target for the simultaneous restart, from the first node down to write quorum.
UNAVAILABLE_AT_MOST = 30.0


class ObjectLoop(Background):
    """PUT a new object, then GET a random acknowledged one, on a thread (PACE_S after each success).

    A request that fails is not retried: it counts towards the current outage, whose length is the
    time from the last success before it to the first success after it.
    """

    def __init__(self, cluster: Cluster, nodes: list[str]) -> None:
        super().__init__()
        self.clients = [cluster.minio(node, timeout=5) for node in nodes]
        self.acknowledged: dict[str, str] = {}  # key -> sha256
        self.failures: list[str] = []
        self.corrupted: list[str] = []
        self.longest_outage = 0.0
        self._rng = random.Random(7)

    def _run(self) -> None:
        last_ok, failing = time.monotonic(), False
        for n in itertools.count():
            if self._stop.is_set():
                return
            client = self.clients[n % len(self.clients)]
            try:
                body = self._rng.randbytes(self._rng.randint(1024, 256 * 1024))
                key = f"loop/{n:06d}"
                client.put_object(BUCKET, key, io.BytesIO(body), len(body))
                self.acknowledged[key] = hashlib.sha256(body).hexdigest()
                check = self._rng.choice(sorted(self.acknowledged))
                response = client.get_object(BUCKET, check)
                try:
                    if hashlib.sha256(response.read()).hexdigest() != self.acknowledged[check]:
                        self.corrupted.append(check)
                finally:
                    response.close()
                    response.release_conn()
            except Exception as exc:  # every failure of a request is counted, whatever its kind
                self.failures.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {str(exc)[:120]}")
                failing = True
                time.sleep(0.2)
                continue
            now = time.monotonic()
            if failing:
                self.longest_outage = max(self.longest_outage, now - last_ok)
                failing = False
            last_ok = now
            self._stop.wait(PACE_S)


def _read_back(cluster: Cluster, node: str, objects: dict[str, str]) -> list[str]:
    """Keys among ``objects`` missing or different when read through ``node``."""
    client = cluster.minio(node)
    bad = []
    for key, digest in sorted(objects.items()):
        try:
            response = client.get_object(BUCKET, key)
            try:
                if hashlib.sha256(response.read()).hexdigest() != digest:
                    bad.append(f"corrupted:{key}")
            finally:
                response.close()
                response.release_conn()
        except S3Error as exc:
            bad.append(f"missing:{key}:{exc.code}")
    return bad


def _pools(cluster: Cluster) -> list[int]:
    """The server pools as MinIO reports them: the node count of each."""
    done = cluster.deployed.exec(
        "minio1", "sh", "-c", ". /etc/default/minio && MC_HOST_h=https://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD"
        "@minio1:9000 mc --json admin info h", timeout=60, check=True)
    servers = json.loads(done.stdout)["info"]["servers"]
    counts: dict[int, int] = {}
    for server in servers:
        counts[server["poolNumber"]] = counts.get(server["poolNumber"], 0) + 1
    return [counts[pool] for pool in sorted(counts)]


def test_a_server_pool_joins_with_no_acknowledged_object_lost(deployed, cluster: Cluster):
    state = deployed.project / ".platform" / deployed.env
    spec_file = deployed.project / "inventories" / deployed.env / "platform.yml"
    root = cluster.minio()
    if not root.bucket_exists(BUCKET):
        root.make_bucket(BUCKET)
    assert _pools(cluster) == [4]

    with ObjectLoop(cluster, ["minio1", "minio2", "minio3", "minio4"]) as load:
        wait_for(lambda: len(load.acknowledged) >= 20, 120, "20 objects written before the scale-out")
        killed = run_and_kill(deployed.project, ("scale-out", deployed.env, "minio", "--count", "+4"), "base", 8)
        assert killed.rc == -signal.SIGKILL, killed.stderr[-2000:]
        assert json.loads((state / "operation.json").read_text())["added"] == [f"minio{i}" for i in range(5, 9)]

        resumed = deployed.cli("scale-out", deployed.env, "minio", "--json")
        assert resumed.rc == 0, f"{resumed.stdout[-3000:]}\n{resumed.stderr[-3000:]}"
        reported = [e["data"] for e in resumed.events if e["kind"] == "message" and "unavailable_s" in e["data"]]
        after = len(load.acknowledged)
        wait_for(lambda: len(load.acknowledged) >= after + 20, 120, "20 more objects written on 8 nodes")
    print(f"\nMinIO scale-out 4 -> 8: {len(load.acknowledged)} objects acknowledged, {len(load.failures)} requests "
          f"failed; the client's longest outage {load.longest_outage:.1f} s; the CLI reported {reported}")
    for line in load.failures[:10]:
        print(f"  {line}")
    assert load.corrupted == [], load.corrupted
    assert [r["nodes"] for r in reported] == [8], "one restart of all eight nodes together"
    assert reported[0]["unavailable_s"] < UNAVAILABLE_AT_MOST
    assert load.longest_outage < UNAVAILABLE_AT_MOST, load.failures
    assert not (state / "operation.json").exists()

    assert _pools(cluster) == [4, 4]
    spec = yaml.safe_load(spec_file.read_text())
    assert (spec["groups"]["minio"]["count"], spec["minio"]["pools"]) == (8, [4, 4])
    for node in ("minio2", "minio7"):
        assert _read_back(cluster, node, load.acknowledged) == [], f"read back through {node}"

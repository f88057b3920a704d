"""MinIO on the shared e2e environment survives node loss: 0 objects lost, 0 corrupted.

Objects of mixed sizes go in through S3 (TLS verified against the environment's CA) with their
sha256 recorded; then one host is stopped (reads and writes go on), a second one (reads go on,
writes fail cleanly), both come back and heal, and everything is read back again. Runs after
test_local_env.py and before test_teardown_destroy.py (pytest orders files by name).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3
from e2e_support import wait_for
from minio import Minio
from minio.error import S3Error

from platform_ctl.vault import read_vault

pytestmark = pytest.mark.e2e

BUCKET = "fault-test"
OBJECTS = 200
KIB, MIB = 1024, 1024 * 1024


@dataclass
class Cluster:
    addresses: dict[str, str]
    ca: Path
    root: tuple[str, str]
    container_prefix: str
    written: dict[str, str] = field(default_factory=dict)  # key -> sha256

    def client(self, node: str = "minio1", timeout: float = 15, retry: bool = True) -> Minio:
        """An S3 client of ``node``; with ``retry``, a 503 (a peer not yet marked offline) is retried."""
        retries = urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=[503]) if retry else False
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca), timeout=timeout,
                                   retries=retries, maxsize=8)
        return Minio(f"{self.addresses[node]}:9000", *self.root, secure=True, http_client=http)

    def healthy(self, node: str) -> bool:
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(f"https://{self.addresses[node]}:9000/minio/health/cluster",
                                        context=context, timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def docker(self, action: str, node: str) -> None:
        subprocess.run(["docker", action, f"{self.container_prefix}{node}"], check=True, capture_output=True,
                       timeout=120)


def _payloads(count: int, seed: int) -> list[tuple[str, bytes]]:
    """Objects from 1 KiB to 8 MiB, log-uniform, reproducible."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        size = int(2 ** rng.uniform(10, 23))  # 1 KiB .. 8 MiB
        out.append((f"seed{seed}/obj-{i:04d}-{size}", rng.randbytes(size)))
    return out


def _write(cluster: Cluster, node: str, objects: list[tuple[str, bytes]]) -> None:
    client = cluster.client(node)

    def put(item: tuple[str, bytes]) -> None:
        key, body = item
        client.put_object(BUCKET, key, io.BytesIO(body), len(body))
        cluster.written[key] = hashlib.sha256(body).hexdigest()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, objects))


def _read_all(cluster: Cluster, node: str) -> tuple[list[str], list[str]]:
    """(missing, corrupted) keys among everything written, read through ``node``."""
    client = cluster.client(node, timeout=30)

    def check(key: str) -> str:
        try:
            response = client.get_object(BUCKET, key)
            try:
                digest = hashlib.sha256(response.read()).hexdigest()
            finally:
                response.close()
                response.release_conn()
        except S3Error as exc:
            return f"missing:{key}:{exc.code}"
        return "ok" if digest == cluster.written[key] else f"corrupted:{key}"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(check, sorted(cluster.written)))
    return ([r for r in results if r.startswith("missing")], [r for r in results if r.startswith("corrupted")])


@pytest.fixture(scope="module")
def cluster(deployed) -> Cluster:
    state = deployed.project / ".platform" / deployed.env
    addresses = json.loads((state / "local" / "addresses.json").read_text())
    password = (deployed.project / ".config" / "vault" / f"{deployed.env}.pass").read_text().strip()
    vault = read_vault(deployed.project / "inventories" / deployed.env / "group_vars" / "all" / "vault.yml", password)
    c = Cluster({h: a for h, a in addresses.items() if h.startswith("minio")}, state / "pki" / "ca.crt",
                (vault["vault_minio_root_user"], vault["vault_minio_root_password"]), f"platform-{deployed.env}-")
    client = c.client()
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    return c


def test_objects_survive_one_then_two_hosts_down_and_heal(cluster: Cluster):
    _write(cluster, "minio1", _payloads(OBJECTS, seed=1))
    assert len(cluster.written) == OBJECTS
    assert _read_all(cluster, "minio1") == ([], [])
    stopped: list[str] = []
    try:
        # One host down: EC:2 on 4 drives keeps read quorum (2) and write quorum (3).
        cluster.docker("stop", "minio4")
        stopped.append("minio4")
        assert _read_all(cluster, "minio1") == ([], []), "reads with one host down"
        _write(cluster, "minio1", _payloads(20, seed=2))
        assert len(cluster.written) == OBJECTS + 20, "writes with one host down"

        # Two hosts down: reads still have quorum, writes do not and must fail cleanly.
        cluster.docker("stop", "minio3")
        stopped.append("minio3")
        assert _read_all(cluster, "minio1") == ([], []), "reads with two hosts down"
        refused = cluster.client("minio1", timeout=30, retry=False)
        with pytest.raises(S3Error) as no_quorum:
            refused.put_object(BUCKET, "no-quorum/attempt", io.BytesIO(b"x" * 4096), 4096)
        # MinIO answers 503 with a code that names the cause, e.g. XMinioWriteQuorum or SlowDownWrite.
        assert no_quorum.value.response.status == 503, no_quorum.value
        print(f"write with two hosts down refused: {no_quorum.value.code}: {no_quorum.value.message}")
        with pytest.raises(S3Error):
            refused.stat_object(BUCKET, "no-quorum/attempt")
    finally:
        for node in stopped:
            cluster.docker("start", node)

    # Both back: every node reports write quorum, heal, then everything reads back from each node.
    for node in cluster.addresses:
        wait_for(lambda node=node: cluster.healthy(node), 180, f"{node} to report cluster health")
    heal = subprocess.run(
        ["docker", "exec", f"{cluster.container_prefix}minio1", "sh", "-c",
         ". /etc/default/minio && MC_HOST_h=https://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@minio1:9000 "
         f"mc --json admin heal -r h/{BUCKET}"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert heal.returncode == 0, heal.stdout[-2000:] + heal.stderr[-2000:]
    # A restarted node reconnects to its peers' drives in its own time: until it does, it can
    # answer NoSuchKey for objects written while it was down. Missing objects get up to 3 min to
    # appear through each node; a corrupted one fails at once.
    for node in ("minio3", "minio4"):
        deadline = time.monotonic() + 180
        while True:
            missing, corrupted = _read_all(cluster, node)
            assert corrupted == [], f"after healing, read through {node}"
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert missing == [], f"after healing, read through {node}: {len(missing)} missing"
    with pytest.raises(S3Error):
        cluster.client().stat_object(BUCKET, "no-quorum/attempt")

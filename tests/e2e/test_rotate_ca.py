"""`rotate-secrets --only ca` on the shared e2e environment, with clients of Trino and MinIO in a loop.

The command trusts a new CA next to the old one everywhere, re-issues every certificate from it,
then trusts it alone. The rotation is killed once its first TLS play has changed a file, then run
again without --only. Clients trust what the controller's trust bundle holds at each attempt (as a
client whose trust store is managed with the hosts' would): their operations fail only while MinIO
or Trino restarts (each restart measured and reported). At the end every TLS endpoint (MinIO, Trino,
PostgreSQL, JupyterLab) serves a certificate of the new CA, which the old CA does not verify; every trust file on
the hosts holds the new CA alone, Trino's JVM truststore one CA entry, and a certificate signed by
the old CA is refused by each host's system trust store.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import uuid
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2e_env import ENV, restarts_reported, rotation_killed_then_resumed, skipped_steps
from e2e_support import CLIENT_SLACK_S, Cluster, Loop, keep_going

from platform_ctl.history import read as read_history

pytestmark = pytest.mark.e2e

#: Failures more than this apart belong to different restarts.
BURST_GAP_S = 30.0
#: The environment's CAs in the system trust store (roles/common's certificate tasks).
SYSTEM_CA = f"/usr/local/share/ca-certificates/platform-{ENV}-ca.crt"
#: Where each role keeps the CAs it trusts, on its hosts.
TRUST_FILES = {
    "minio": ["/etc/minio/certs/CAs/platform-ca.crt", SYSTEM_CA],
    "trino": ["/etc/trino/tls/ca.crt", SYSTEM_CA],
    "pg": [SYSTEM_CA],
    "mon": ["/etc/prometheus/ca.crt"],
    "apps": [SYSTEM_CA],
}
#: TLS endpoints: host prefix -> port (5432 speaks TLS after PostgreSQL's SSLRequest).
ENDPOINTS = {"minio": 9000, "trino": 8443, "pg": 5432, "apps": 8888}


def _probe_signed_by(ca_cert: bytes, ca_key: bytes) -> bytes:
    """A server certificate signed by the given CA (as a host certificate of that CA would be)."""
    issuer = x509.load_pem_x509_certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key, None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    probe = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe.platform.internal")]))
             .issuer_name(issuer.subject)
             .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
             .sign(signer, hashes.SHA256()))
    return probe.public_bytes(serialization.Encoding.PEM)


def _handshake(address: str, name: str, port: int, cafile: Path) -> bool:
    """Whether the endpoint at ``address``, asked for ``name`` (SNI), shows a certificate for that name
    that ``cafile`` verifies."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((address, port), timeout=10) as raw:
        if port == 5432:  # PostgreSQL's SSLRequest, answered 'S' before its TLS handshake
            raw.sendall(struct.pack("!II", 8, 80877103))
            assert raw.recv(1) == b"S"
        try:
            with context.wrap_socket(raw, server_hostname=name):
                return True
        except ssl.SSLCertVerificationError:
            return False


def _bursts(failures: list[tuple[float, str]]) -> list[float]:
    """The lengths of the runs of failures (failures closer than BURST_GAP_S to each other)."""
    bursts: list[list[float]] = []
    for at, _ in failures:
        if bursts and at - bursts[-1][1] <= BURST_GAP_S:
            bursts[-1][1] = at
        else:
            bursts.append([at, at])
    return [end - start for start, end in bursts]


def _exec(cluster: Cluster, host: str, *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """``argv`` on ``host``, its output as bytes."""
    return cluster.deployed.exec(host, *argv, stdin=stdin)


def test_rotating_the_ca_reissues_every_certificate_with_a_trust_overlap(deployed, cluster: Cluster):
    pki = cluster.state / "pki"
    old_ca, old_key = (pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes()
    hosts = sorted(cluster.addresses)
    endpoints = [(h, h, port) for h in hosts  # each certificate names its host's short name too
                 for prefix, port in ENDPOINTS.items() if h.startswith(prefix)]
    assert len(endpoints) == 8, endpoints
    assert all(_handshake(cluster.addresses[h], name, port, pki / "ca.crt") for h, name, port in endpoints)
    probe = _probe_signed_by(old_ca, old_key)
    trusted = _exec(cluster, "pg1", "openssl", "verify", "-CAfile", "/etc/ssl/certs/ca-certificates.crt",
                    "/dev/stdin", stdin=probe)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr  # so its refusal at the end means something

    plan = deployed.cli("rotate-secrets", deployed.env, "--only", "ca", "--check")
    assert plan.rc == 0, plan.stdout + plan.stderr
    said = " ".join(plan.stdout.split())  # the CLI wraps its lines
    assert "every certificate re-issued from the new CA" in said, plan.stdout
    assert "restarts all MinIO nodes together and all Trino nodes together" in said, plan.stdout
    assert "nothing was changed" in said, plan.stdout
    assert (pki / "ca.crt").read_bytes() == old_ca
    assert not (pki / "next").exists()

    expected = cluster.query("SELECT count(*) FROM tpch.tiny.nation")
    trusting_the_bundle = Cluster(deployed)
    trusting_the_bundle.ca = pki / "trusted.crt"  # re-read at every attempt, as the hosts' trust stores are
    cluster.minio().make_bucket(bucket := f"ca-rotation-{uuid.uuid4().hex[:8]}")

    def query() -> None:
        assert trusting_the_bundle.query("SELECT count(*) FROM tpch.tiny.nation") == expected

    def put_get() -> None:
        client, name = trusting_the_bundle.minio(timeout=10), f"o-{uuid.uuid4().hex}"
        body = uuid.uuid4().bytes * 64
        client.put_object(bucket, name, BytesIO(body), len(body))
        answer = client.get_object(bucket, name)
        try:
            assert answer.read() == body
        finally:
            answer.close()
            answer.release_conn()

    with Loop("trino tpch", query) as queries, Loop("minio put/get", put_get) as objects:
        started = time.monotonic()
        resumed = rotation_killed_then_resumed(deployed, "ca", "tls")
        keep_going(queries, objects)  # the loops go on after the last restart
    took = time.monotonic() - started

    skipped = skipped_steps(resumed)
    assert skipped == ["generate"], skipped
    windows = {component: [r["unavailable_s"] for r in restarts_reported(resumed, component)]
               for component in ("minio", "trino")}
    print(f"\nCA rotation (killed + resumed) {took:.0f} s; windows reported: {windows}; "
          f"queries: {queries.ok} ok, {queries.retried} retried, failed bursts {_bursts(queries.failures)}; "
          f"objects: {objects.ok} ok, {objects.retried} retried, failed bursts {_bursts(objects.failures)}")
    assert len(windows["trino"]) == 3, windows  # trust, reissue, untrust
    assert len(windows["minio"]) >= 2, windows  # reissue, untrust (trust: restarted by the killed run or here)
    for loop, component, slack in ((queries, "trino", CLIENT_SLACK_S), (objects, "minio", CLIENT_SLACK_S + 15)):
        assert loop.ok >= 3, loop.failures[:3]
        bursts = _bursts(loop.failures)
        assert len(bursts) <= 3, (component, loop.failures)
        assert all(b <= max(windows[component]) + slack for b in bursts), (component, bursts, windows)

    new_ca = (pki / "ca.crt").read_bytes()
    assert new_ca != old_ca
    assert (pki / "trusted.crt").read_bytes() == new_ca
    assert not (pki / "previous").exists()
    assert not (pki / "next").exists()

    with tempfile.NamedTemporaryFile(suffix=".crt") as old:
        old.write(old_ca)
        old.flush()
        for host, name, port in endpoints:
            assert _handshake(cluster.addresses[host], name, port, pki / "ca.crt"), f"{name}:{port}: not the new CA"
            assert not _handshake(cluster.addresses[host], name, port, Path(old.name)), f"{name}:{port}: the old CA"
    for host in hosts:
        for prefix, files in TRUST_FILES.items():
            if host.startswith(prefix):
                for path in files:
                    held = _exec(cluster, host, "cat", path)
                    assert held.returncode == 0, (host, path, held.stderr)
                    assert held.stdout == new_ca, f"{host}:{path} does not hold the new CA alone"
                if SYSTEM_CA in files:
                    refused = _exec(cluster, host, "openssl", "verify", "-CAfile", "/etc/ssl/certs/ca-certificates.crt",
                                    "/dev/stdin", stdin=probe)
                    assert refused.returncode != 0, f"{host}'s trust store still accepts the old CA"
        if host.startswith("trino"):
            listed = _exec(cluster, host, "/opt/trino/jdk/bin/keytool", "-list", "-storetype", "pkcs12", "-keystore",
                           "/etc/trino/tls/truststore.p12", "-storepass", "platform-truststore")
            entries = [line for line in listed.stdout.decode().splitlines() if "trustedCertEntry" in line]
            assert len(entries) == 1, (host, listed.stdout, listed.stderr)

    assert cluster.query("SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'") == [[2]]
    runs = [line for line in read_history(cluster.state) if line["command"] == "rotate-secrets"]
    assert [line["event"] for line in runs if line["event"] in ("start", "done")][-3:] == ["start", "start", "done"]

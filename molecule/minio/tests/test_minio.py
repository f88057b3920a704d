"""Verify the minio role on four droplets: live state on each node, then behaviour from outside.

The test runner reaches the nodes over the scenario's network, like a client in the VPC, and
verifies TLS against the environment's CA (never insecure).
"""

from __future__ import annotations

import io
import json
import os
import ssl
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner
import urllib3
from minio import Minio
from minio.error import S3Error

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("minio")

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CA = EPHEMERAL / "pki" / "ca.crt"
ADDRESSES = {"minio1": "10.201.12.11", "minio2": "10.201.12.12", "minio3": "10.201.12.13", "minio4": "10.201.12.14"}
ROOT = ("moleculeroot", "molecule-root-secret-0123456789")
WAREHOUSE = ("warehouse", "molecule-warehouse-secret")
LANDING = ("landing", "molecule-landing-secret")
JUPYTER = ("jupyter", "molecule-jupyter-secret")


def _client(access: str, secret: str, node: str = "minio1") -> Minio:
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(CA), retries=False, timeout=10)
    return Minio(f"{ADDRESSES[node]}:9000", access_key=access, secret_key=secret, secure=True, http_client=http)


def _journal(host) -> str:
    return host.run("journalctl -u minio --no-pager -n 40").stdout


def _mc(host, *args: str) -> dict:
    env = f"MC_HOST_t=https://{ROOT[0]}:{ROOT[1]}@{host.backend.get_hostname()}.molecule.platform.internal:9000"
    out = host.check_output(f"{env} mc --json {' '.join(args)}")
    return json.loads(out.splitlines()[-1])


# --- On each node --------------------------------------------------------------------------------


def test_minio_service_enabled_and_running(host):
    service = host.service("minio")
    if not (service.is_enabled and service.is_running):
        pytest.fail(f"minio: enabled={service.is_enabled} running={service.is_running}\n{_journal(host)}")
    assert host.process.get(comm="minio").user == "minio"


def test_data_volume_is_xfs_noatime_mounted_by_uuid(host):
    mount = host.mount_point("/mnt/minio")
    assert mount.exists
    assert mount.filesystem == "xfs"
    assert "noatime" in mount.options
    fstab = [line.split() for line in host.file("/etc/fstab").content_string.splitlines() if "/mnt/minio" in line]
    assert len(fstab) == 1, fstab
    assert fstab[0][0].startswith("UUID="), fstab
    name = host.backend.get_hostname()
    uuid_ = host.check_output(f"blkid -s UUID -o value /dev/disk/by-id/scsi-0DO_Volume_molecule-{name}")
    assert fstab[0][0] == f"UUID={uuid_}"


def test_environment_file_keeps_secrets_from_other_users(host):
    env = host.file("/etc/default/minio")
    assert env.mode == 0o640
    assert (env.user, env.group) == ("root", "minio")
    assert "MINIO_STORAGE_CLASS_STANDARD=EC:2" in env.content_string
    assert "MINIO_VOLUMES=\"https://minio{1...4}.molecule.platform.internal:9000/mnt/minio/data\"" in env.content_string


def test_cluster_is_healthy_over_verified_tls(host):
    name = host.backend.get_hostname()
    context = ssl.create_default_context(cafile=str(CA))
    with urllib.request.urlopen(f"https://{ADDRESSES[name]}:9000/minio/health/cluster", context=context,
                                timeout=10) as answer:
        assert answer.status == 200


# --- From outside --------------------------------------------------------------------------------


def test_every_drive_is_online():
    # One node reports for the whole cluster.
    info = _mc(testinfra.get_host(f"ansible://minio1?ansible_inventory={INVENTORY}"), "admin", "info", "t")
    drives = [d for server in info["info"]["servers"] for d in server.get("drives", [])]
    assert len(drives) == 4
    assert {d["state"] for d in drives} == {"ok"}, drives


def test_untrusted_certificate_is_refused():
    # Proof that the TLS checks above verify something: without the CA the handshake fails.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://{ADDRESSES['minio2']}:9000/minio/health/live",
                               context=ssl.create_default_context(), timeout=10)


def test_anonymous_access_is_refused():
    context = ssl.create_default_context(cafile=str(CA))
    for path in ("/warehouse/", "/pgbackrest/", "/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"https://{ADDRESSES['minio3']}:9000{path}", context=context, timeout=10)
        assert refused.value.code == 403, path


def test_warehouse_user_reaches_its_bucket_only():
    user = _client(*WAREHOUSE)
    key = f"verify/{uuid.uuid4()}"
    user.put_object("warehouse", key, io.BytesIO(b"ok"), 2)
    assert user.get_object("warehouse", key).read() == b"ok"
    for attempt in (
        lambda: user.put_object("pgbackrest", key, io.BytesIO(b"no"), 2),
        lambda: user.list_objects("pgbackrest") and list(user.list_objects("pgbackrest")),
        lambda: user.get_object("pgbackrest", "anything"),
    ):
        with pytest.raises(S3Error) as denied:
            attempt()
        assert denied.value.code == "AccessDenied"
    user.remove_object("warehouse", key)


def test_landing_user_lists_and_reads_the_landing_bucket_only():
    # Dagster's reader (policy landing-read): a producer (here root) puts files, the reader lists and
    # reads them and may neither write nor delete there, nor reach another bucket.
    key = f"orders/{uuid.uuid4()}.csv"
    _client(*ROOT).put_object("landing", key, io.BytesIO(b"order_id\n1\n"), 11)
    reader = _client(*LANDING, node="minio2")
    assert key in {o.object_name for o in reader.list_objects("landing", prefix="orders/")}
    assert reader.get_object("landing", key).read() == b"order_id\n1\n"
    for attempt in (
        lambda: reader.put_object("landing", f"{key}.new", io.BytesIO(b"no"), 2),
        lambda: reader.remove_object("landing", key),
        lambda: list(reader.list_objects("warehouse")),
        lambda: reader.get_object("pgbackrest", "anything"),
    ):
        with pytest.raises(S3Error) as denied:
            attempt()
        assert denied.value.code == "AccessDenied"
    _client(*ROOT).remove_object("landing", key)


def test_jupyter_user_reads_the_warehouse_and_writes_nothing():
    # JupyterLab's kernels (policy warehouse-read): the marts' files are readable, never writable.
    key = f"verify/{uuid.uuid4()}"
    _client(*WAREHOUSE).put_object("warehouse", key, io.BytesIO(b"mart"), 4)
    notebook = _client(*JUPYTER, node="minio3")
    assert notebook.get_object("warehouse", key).read() == b"mart"
    assert key in {o.object_name for o in notebook.list_objects("warehouse", prefix="verify/")}
    for attempt in (
        lambda: notebook.put_object("warehouse", f"{key}.new", io.BytesIO(b"no"), 2),
        lambda: notebook.remove_object("warehouse", key),
        lambda: list(notebook.list_objects("landing")),
    ):
        with pytest.raises(S3Error) as denied:
            attempt()
        assert denied.value.code == "AccessDenied"
    _client(*WAREHOUSE).remove_object("warehouse", key)


def test_objects_are_encrypted_at_rest():
    """A known plaintext written through S3 is on no node's drive in the clear.

    The control bucket has no default encryption: there the same plaintext IS found on disk (in
    the data shards), which shows the search would see it.
    """
    root = _client(*ROOT)
    marker = f"PLAINTEXT-MARKER-{uuid.uuid4().hex}"
    body = marker.encode() * 4096  # 180 KiB: larger than MinIO's inline limit, so in part files
    if not root.bucket_exists("verify-control"):
        root.make_bucket("verify-control")
    root.put_object("warehouse", "verify/secret.bin", io.BytesIO(body), len(body))
    root.put_object("verify-control", "plain.bin", io.BytesIO(body), len(body))
    try:
        assert root.stat_object("warehouse", "verify/secret.bin").metadata.get("x-amz-server-side-encryption")
        found = []
        for name in ADDRESSES:
            node = testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
            found += node.run(f"grep -rlF {marker} /mnt/minio/data").stdout.split()
        assert found, "the control object's data shards should hold the plaintext"
        assert all("/verify-control/" in path for path in found), found
    finally:
        root.remove_object("warehouse", "verify/secret.bin")
        root.remove_object("verify-control", "plain.bin")
        root.remove_bucket("verify-control")


def test_a_node_whose_volume_is_not_mounted_does_not_serve():
    """With its volume unmounted (a droplet powered on before its volume's device appeared), the unit
    refuses to start MinIO on the root filesystem; mounted again, it serves with its drive online.

    The unit's mount-point check runs in the service's namespace, where every ReadWritePaths= entry is
    bind-mounted onto itself: naming the mount point there made the check pass on an empty directory.
    """
    node = testinfra.get_host(f"ansible://minio4?ansible_inventory={INVENTORY}", sudo=True)
    node.check_output("systemctl stop minio && umount /mnt/minio")
    try:
        refused = node.run("systemctl start minio")
        state = node.run("systemctl is-active minio").stdout.strip()
        # What lies under the bare mount point: MinIO must not have created its data directory there.
        stray = node.run("ls -A /mnt/minio").stdout.split()
    finally:
        node.check_output("mount /mnt/minio && systemctl reset-failed minio && systemctl restart minio")
    assert refused.rc != 0, refused.stdout + refused.stderr
    assert state != "active", state
    assert stray == [], f"MinIO wrote to the root filesystem under /mnt/minio: {stray}"
    deadline = time.monotonic() + 120
    while True:
        info = _mc(testinfra.get_host(f"ansible://minio1?ansible_inventory={INVENTORY}"), "admin", "info", "t")
        drives = [d["state"] for server in info["info"]["servers"] for d in server.get("drives", [])]
        if drives == ["ok"] * 4 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert drives == ["ok"] * 4, drives

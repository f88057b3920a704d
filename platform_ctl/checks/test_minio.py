"""What the minio role promises on every MinIO host, checked on the host over SSH."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://minio"]



def _url(hostvars, path: str) -> str:
    return f"https://{hostvars['inventory_hostname']}.{hostvars['platform_domain']}:9000{path}"


def test_minio_runs_on_its_xfs_volume(host):
    service = host.service("minio")
    assert service.is_enabled
    assert service.is_running
    mount = host.mount_point("/mnt/minio")
    assert mount.exists
    assert mount.filesystem == "xfs"


def _status(host, url: str) -> str:
    """The HTTP status of ``url``, TLS verified by the system trust store, which holds the environment's CA."""
    return host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}")


def test_cluster_has_write_quorum_over_verified_tls(host, hostvars):
    assert _status(host, _url(hostvars, "/minio/health/cluster")) == "200"


def test_every_drive_is_online(host, hostvars):
    # The root credentials stay inside the host's shell; only the JSON report comes back.
    command = (
        ". /etc/default/minio && MC_HOST_v=https://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@"
        f"{hostvars['inventory_hostname']}.{hostvars['platform_domain']}:9000 mc --json admin info v"
    )
    with host.sudo():
        report = json.loads(host.check_output(f"sh -c '{command}'").splitlines()[-1])
    drives = [d for server in report["info"]["servers"] for d in server.get("drives", [])]
    assert len(drives) == len(hostvars["groups"]["minio"])
    assert {d["state"] for d in drives} == {"ok"}


def test_anonymous_access_is_refused(host, hostvars):
    for path in ("/", "/warehouse/", "/pgbackrest/"):
        assert _status(host, _url(hostvars, path)) == "403", path

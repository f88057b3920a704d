"""The generated inventory carries the contract the roles read (roles/base/README.md)."""

from __future__ import annotations

from pathlib import Path

from platform_ctl.infra import Access, Host, Volume, volume_device
from platform_ctl.inventory import build_inventory
from platform_ctl.paths import COLLECTION_ROOT
from platform_ctl.spec import load_spec


def test_inventory_has_groups_addresses_volumes_and_strict_ssh(tmp_path: Path) -> None:
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    hosts = [
        Host(p.name, p.fqdn, p.groups, f"10.42.0.{10 + i}", f"10.42.0.{10 + i}", p.size,
             tuple(Volume(v.name, v.size_gb, volume_device(v.name)) for v in p.volumes))
        for i, p in enumerate(spec.hosts())
    ]
    access = Access("platform", tmp_path / "id", "ssh-ed25519 AAAA test", tmp_path / "known_hosts")
    inv = build_inventory(spec, hosts, access)["all"]

    assert set(inv["children"]) == {"trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps",
                                    "docker"}
    # Docker Engine runs on the apps hosts; the spec names no other group, nor admin access.
    assert list(inv["children"]["docker"]["hosts"]) == ["apps1"]
    assert inv["vars"]["platform_docker_admin_access"] is False
    assert sorted(inv["children"]["minio"]["hosts"]) == ["minio1", "minio2", "minio3", "minio4"]
    minio1 = inv["hosts"]["minio1"]
    assert minio1["platform_volumes"] == [
        {"name": "local-minio1-data", "size_gb": 10, "device": "/dev/disk/by-id/scsi-0DO_Volume_local-minio1-data"},
    ]
    assert minio1["platform_size"] == {"slug": "s-1vcpu-1gb", "vcpus": 1, "memory_mb": 1024}
    assert inv["vars"]["platform_vpc_cidr"] == "10.42.0.0/24"
    assert inv["vars"]["platform_domain"] == "local.platform.internal"
    assert "StrictHostKeyChecking=yes" in inv["vars"]["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in inv["vars"]["ansible_ssh_common_args"]


def test_inventory_carries_minio_parity_and_controller_inputs(tmp_path: Path) -> None:
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    access = Access("platform", tmp_path / "id", "ssh-ed25519 AAAA test", tmp_path / "known_hosts")
    controller = {"platform_pki": {"ca_certificate": "/ca.crt"}, "platform_artifacts": {"minio": {"sha256": "0" * 64}}}
    inv = build_inventory(spec, [], access, controller)["all"]["vars"]

    assert inv["platform_minio_parity"] == 2  # minio.parity of the local spec
    assert inv["platform_minio_pools"] == [4]  # one pool of every MinIO host
    assert inv["platform_pki"] == {"ca_certificate": "/ca.crt"}
    assert inv["platform_artifacts"]["minio"]["sha256"] == "0" * 64

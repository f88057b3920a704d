"""Droplet containers that run Docker Engine get, at creation, what only creation can give."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from platform_ctl.errors import InfrastructureError
from platform_ctl.infra.local import DOCKER_HOST_SYSCTLS, DOCKER_HOST_VOLUME, LocalBackend
from platform_ctl.paths import COLLECTION_ROOT
from platform_ctl.spec import load_spec

SPEC = load_spec(COLLECTION_ROOT / "inventories" / "local" / "platform.yml")


def _plan(name: str):
    return next(p for p in SPEC.hosts() if p.name == name)


def test_only_docker_hosts_get_forwarding_and_a_docker_volume():
    settings = {p.name: LocalBackend._docker_host_settings(SPEC, p) for p in SPEC.hosts()}
    assert settings.pop("apps1") == {"sysctls": {"net.ipv4.ip_forward": "1"}, "volumes": ["/var/lib/docker"]}
    assert all(value == {} for value in settings.values()), settings


def _container(sysctls: dict[str, str] | None, mounts: list[str]) -> SimpleNamespace:
    # The two fields of `docker inspect` the check reads.
    return SimpleNamespace(name="platform-local-apps1", attrs={
        "HostConfig": {"Sysctls": sysctls}, "Mounts": [{"Destination": m} for m in mounts]})


def test_a_docker_host_made_without_them_is_refused_with_the_fix(tmp_path: Path):
    backend = LocalBackend(tmp_path)
    backend._check_docker_host(SPEC, _plan("apps1"), _container(DOCKER_HOST_SYSCTLS, [DOCKER_HOST_VOLUME]))
    backend._check_docker_host(SPEC, _plan("minio1"), _container(None, []))
    with pytest.raises(InfrastructureError, match="destroy local` and deploy again"):
        backend._check_docker_host(SPEC, _plan("apps1"), _container(None, []))
    with pytest.raises(InfrastructureError, match=r"net\.ipv4\.ip_forward=1"):
        backend._check_docker_host(SPEC, _plan("apps1"), _container(DOCKER_HOST_SYSCTLS, []))

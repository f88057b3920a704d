"""`platform-ctl init`: the scaffolded environment loads and nothing is overwritten by accident."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from platform_ctl.envinit import default_vpc_cidr, init_environment, render_group_vars, render_spec
from platform_ctl.errors import PlatformCtlError, SpecError
from platform_ctl.paths import COLLECTION_ROOT, Project
from platform_ctl.spec import load_spec
from platform_ctl.vault import SECRET_KEYS, read_vault, vault_password


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("PLATFORM_VAULT_PASSWORD", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


def test_init_creates_spec_group_vars_and_vault(project: Project) -> None:
    result = init_environment(project, "staging", region="ams3")
    env_dir = project.env_dir("staging")
    assert result.created == (
        env_dir / "platform.yml",
        env_dir / "group_vars" / "all" / "main.yml",
        env_dir / "group_vars" / "all" / "vault.yml",
    )
    spec = load_spec(result.spec_path, env="staging")
    assert (spec.provider, spec.region, spec.name) == ("digitalocean", "ams3", "staging")
    assert spec.vpc_cidr == default_vpc_cidr("staging", "digitalocean")
    vault = read_vault(project.vault_path("staging"), vault_password("staging"))
    assert set(vault) == set(SECRET_KEYS)
    assert stat.S_IMODE(project.vault_path("staging").stat().st_mode) == 0o600


def test_init_local_uses_the_local_defaults(project: Project) -> None:
    init_environment(project, "local")
    spec = load_spec(project.spec_path("local"))
    assert spec.provider == "local"
    assert spec.region == "local"
    assert spec.vpc_cidr == "10.42.0.0/24"
    assert spec.total_memory_mb() <= 20 * 1024


def test_init_refuses_to_overwrite(project: Project) -> None:
    init_environment(project, "staging")
    spec_path = project.spec_path("staging")
    spec_path.write_text(spec_path.read_text().replace("count: 2", "count: 3"))
    edited = spec_path.read_text()
    with pytest.raises(PlatformCtlError, match="already exists") as info:
        init_environment(project, "staging")
    assert "--force" in str(info.value)
    assert spec_path.read_text() == edited


def test_init_force_replaces_the_spec_but_keeps_secrets(project: Project) -> None:
    init_environment(project, "staging")
    before = read_vault(project.vault_path("staging"), vault_password("staging"))
    project.spec_path("staging").write_text("garbage: [")
    result = init_environment(project, "staging", force=True)
    assert project.vault_path("staging") in result.kept
    assert not result.vault.changed
    load_spec(project.spec_path("staging"))
    assert read_vault(project.vault_path("staging"), vault_password("staging")) == before


def test_init_keeps_existing_group_vars(project: Project) -> None:
    group_vars = project.env_dir("staging") / "group_vars" / "all" / "main.yml"
    group_vars.parent.mkdir(parents=True)
    group_vars.write_text("base_packages_extra: [htop]\n")
    result = init_environment(project, "staging")
    assert group_vars in result.kept
    assert group_vars.read_text() == "base_packages_extra: [htop]\n"


def test_init_rejects_a_bad_region_before_writing(project: Project) -> None:
    with pytest.raises(SpecError, match="'mars1' is not a DigitalOcean region"):
        init_environment(project, "staging", region="mars1")
    with pytest.raises(SpecError, match="allowed: local"):
        init_environment(project, "dev", provider="local", region="fra1")
    assert not (project.root / "inventories").exists()


def test_init_rejects_a_bad_name(project: Project) -> None:
    with pytest.raises(PlatformCtlError, match="environment name"):
        init_environment(project, "Prod_1")


@pytest.mark.parametrize(("env", "provider", "region"), [("local", "local", None), ("prod", "digitalocean", "fra1")])
def test_shipped_inventories_are_what_init_generates(env: str, provider: str, region: str | None) -> None:
    env_dir = COLLECTION_ROOT / "inventories" / env
    assert (env_dir / "platform.yml").read_text() == render_spec(env, provider, region)
    assert (env_dir / "group_vars" / "all" / "main.yml").read_text() == render_group_vars(env, provider)


def test_group_vars_template_is_valid_yaml() -> None:
    import yaml

    assert yaml.safe_load(render_group_vars("staging")) is None  # comments only: role defaults apply
    local = yaml.safe_load(render_group_vars("local", "local"))
    # What a container cannot do is declared, visibly, for the local provider only.
    assert local == {"base_sysctl_apply": False, "base_time_sync_servers": [], "base_time_sync_control_clock": False,
                     "minio_sysctl_apply": False, "minio_limit_nofile": 20000,
                     # Not a container limit: apt.grafana.com is unreachable from this machine.
                     "grafana_install": False,
                     # Docker's APT repository is unreachable; route_localnet and ip_forward are read-only.
                     "docker_source": "debian", "docker_engine_version": "20.10.24",
                     "docker_compose_version": "1.29.2", "docker_sysctl_apply": False,
                     "docker_userland_proxy": True,
                     # A rehearsal's short queries: a leaving Trino worker waits 2 x 10 s, not 2 x 30 s.
                     "trino_shutdown_grace_period": "10s",
                     # A rehearsal's often restarted nodes and small queries: C1 alone (bench/trino_jit.py).
                     "trino_jvm_extra_options": ["-XX:TieredStopAtLevel=1"]}

"""Secrets generation, the vault password and the ansible-vault file."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from platform_ctl.errors import PreflightError
from platform_ctl.paths import Project
from platform_ctl.vault import (
    SECRET_KEYS,
    VAULT_PASSWORD_CLIENT,
    ensure_vault,
    generate_secrets,
    read_vault,
    vault_password,
    vault_password_file,
    vault_password_path,
    write_vault,
)

EXPECTED_KEYS = {
    "vault_minio_root_user",
    "vault_minio_root_password",
    "vault_minio_kms_secret_key",
    "vault_minio_warehouse_secret_key",
    "vault_minio_pgbackrest_secret_key",
    "vault_minio_prometheus_secret_key",
    "vault_minio_landing_secret_key",
    "vault_minio_jupyter_secret_key",
    "vault_postgres_superuser_password",
    "vault_postgres_iceberg_password",
    "vault_postgres_dagster_password",
    "vault_postgres_grafana_password",
    "vault_postgres_grafana_reader_password",
    "vault_pgbackrest_cipher_pass",
    "vault_trino_shared_secret",
    "vault_trino_admin_password",
    "vault_trino_pipelines_password",
    "vault_trino_analyst_password",
    "vault_jupyterlab_token",
    "vault_dagster_operator_password",
    "vault_dagster_viewer_password",
    "vault_trino_monitoring_password",
    "vault_grafana_admin_password",
    "vault_grafana_secret_key",
}


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(config))
    monkeypatch.delenv("PLATFORM_VAULT_PASSWORD", raising=False)
    return config


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- generation ----------------------------------------------------------------------------------


def test_generate_secrets_has_every_key_with_strong_values() -> None:
    values = generate_secrets()
    assert set(values) == EXPECTED_KEYS == set(SECRET_KEYS)
    assert len(values["vault_minio_root_user"]) == 20
    assert values["vault_minio_root_user"].isalnum()
    # MinIO secret keys are 8 to 40 characters.
    assert 32 <= len(values["vault_minio_root_password"]) <= 40
    for key, value in values.items():
        if key != "vault_minio_kms_secret_key" and key != "vault_minio_root_user":
            assert len(value) >= 32, key
            assert value.isalnum(), key


def test_minio_kms_key_has_minios_format() -> None:
    name, _, key = generate_secrets()["vault_minio_kms_secret_key"].partition(":")
    assert name == "platform-key"
    assert len(base64.b64decode(key, validate=True)) == 32


def test_two_generations_share_no_value() -> None:
    first, second = generate_secrets(), generate_secrets()
    assert all(first[key] != second[key] for key in SECRET_KEYS)


# ---- vault password ------------------------------------------------------------------------------


def test_password_file_is_created_private(config: Path) -> None:
    password = vault_password("dev", create=True)
    path = vault_password_path("dev")
    assert path == config / "vault" / "dev.pass"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_text().strip() == password
    assert len(password) >= 32
    assert vault_password("dev") == password  # stable once created


def test_missing_password_without_create_is_a_preflight_error() -> None:
    with pytest.raises(PreflightError, match="no vault password for environment 'dev'"):
        vault_password("dev")


def test_env_var_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    vault_password("dev", create=True)
    monkeypatch.setenv("PLATFORM_VAULT_PASSWORD", "from-the-environment\n")
    assert vault_password("dev") == "from-the-environment"
    # Ansible gets the password from the client script, so it is never written to disk.
    assert vault_password_file("dev") == VAULT_PASSWORD_CLIENT


def test_env_var_does_not_create_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_VAULT_PASSWORD", "secret")
    assert vault_password("dev", create=True) == "secret"
    assert not vault_password_path("dev").exists()


def test_vault_password_file_creates_the_file() -> None:
    path = vault_password_file("dev")
    assert path == vault_password_path("dev")
    assert _mode(path) == 0o600
    with pytest.raises(PreflightError):
        vault_password_file("other", create=False)


@pytest.mark.parametrize(("mode", "message"), [(0o644, "readable by others"), (0o700, "executable")])
def test_unsafe_password_file_is_refused(mode: int, message: str) -> None:
    path = vault_password_file("dev")
    path.chmod(mode)
    with pytest.raises(PreflightError, match=message):
        vault_password("dev")


# ---- the vault file ------------------------------------------------------------------------------


def test_round_trip_mode_and_ciphertext(tmp_path: Path) -> None:
    values = generate_secrets()
    path = tmp_path / "group_vars" / "all" / "vault.yml"
    write_vault(path, values, "pw")
    assert read_vault(path, "pw") == values
    assert _mode(path) == 0o600
    text = path.read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.1;AES256")
    for key, value in values.items():
        assert value not in text
        assert key not in text
    assert not list(path.parent.glob(".*tmp"))  # no temporary file left behind


def test_wrong_password_is_a_preflight_error(tmp_path: Path) -> None:
    path = tmp_path / "vault.yml"
    write_vault(path, {"a": "b"}, "right")
    with pytest.raises(PreflightError, match="cannot decrypt vault"):
        read_vault(path, "wrong")


def test_plaintext_vault_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vault.yml"
    path.write_text("vault_x: y\n")
    with pytest.raises(PreflightError, match="not ansible-vault encrypted"):
        read_vault(path, "pw")


def test_ansible_vault_cli_reads_it(tmp_path: Path) -> None:
    """The file is a real ansible-vault file: ansible's own loader decrypts it."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret

    path = tmp_path / "vault.yml"
    write_vault(path, {"vault_x": "y"}, "pw")
    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret(b"pw"))])
    assert loader.load_from_file(str(path)) == {"vault_x": "y"}


# ---- ensure_vault --------------------------------------------------------------------------------


def test_ensure_vault_creates_then_is_idempotent(project: Project) -> None:
    first = ensure_vault(project, "dev")
    assert first.created
    assert set(first.added) == EXPECTED_KEYS
    path = project.vault_path("dev")
    assert _mode(path) == 0o600
    before = path.read_bytes()
    values = read_vault(path, vault_password("dev"))

    again = ensure_vault(project, "dev")
    assert not again.changed
    assert path.read_bytes() == before  # not even re-encrypted
    assert read_vault(path, vault_password("dev")) == values


def test_ensure_vault_adds_missing_keys_and_keeps_values(project: Project) -> None:
    password = vault_password("dev", create=True)
    path = project.vault_path("dev")
    path.parent.mkdir(parents=True)
    write_vault(path, {"vault_minio_root_user": "keepme", "vault_custom": "mine"}, password)

    status = ensure_vault(project, "dev")
    assert not status.created
    assert set(status.added) == EXPECTED_KEYS - {"vault_minio_root_user"}
    values = read_vault(path, password)
    assert values["vault_minio_root_user"] == "keepme"
    assert values["vault_custom"] == "mine"
    assert set(values) == EXPECTED_KEYS | {"vault_custom"}


def test_ensure_vault_never_invents_a_password_for_an_existing_vault(project: Project) -> None:
    path = project.vault_path("dev")
    path.parent.mkdir(parents=True)
    write_vault(path, {"vault_x": "y"}, "someone-elses-password")
    with pytest.raises(PreflightError, match="no vault password"):
        ensure_vault(project, "dev")
    assert not vault_password_path("dev").exists()

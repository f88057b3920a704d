"""rotate-secrets: what it refuses, its plan, and the vault it writes (no hosts: the e2e test runs it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from platform_ctl.environment import Environment
from platform_ctl.errors import PlatformCtlError
from platform_ctl.history import read as read_history
from platform_ctl.paths import COLLECTION_ROOT, Project
from platform_ctl.rotation import (
    PREVIOUS_LOGINS,
    PREVIOUS_PASSWORDS,
    PREVIOUS_SECRET,
    PREVIOUS_USERS,
    Rotation,
    _Runner,
    next_access_key,
    plan_rotation,
    rotate,
)
from platform_ctl.scaling import Operation, plan_operation
from platform_ctl.vault import ensure_vault, read_vault, write_vault


@pytest.fixture
def env(local_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Environment:
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("PLATFORM_VAULT_PASSWORD", raising=False)
    ensure_vault(local_project, "local")
    env = Environment.load(local_project, "local")
    env.inventory.parent.mkdir(parents=True, exist_ok=True)
    env.inventory.write_text("all: {}\n")
    env.state_dir.mkdir(parents=True, exist_ok=True)
    (env.state_dir / "deploy.json").write_text(json.dumps({"finished": True}))
    return env


def _vault(env: Environment) -> dict[str, str]:
    from platform_ctl.vault import vault_password

    return read_vault(env.project.vault_path("local"), vault_password("local"))


def test_access_keys_alternate() -> None:
    assert next_access_key("warehouse", "warehouse") == "warehouse-a"
    assert next_access_key("warehouse", "warehouse-a") == "warehouse-b"
    assert next_access_key("warehouse", "warehouse-b") == "warehouse-a"


def test_rotate_refuses_what_it_does_not_rotate(env: Environment) -> None:
    with pytest.raises(PlatformCtlError) as err:
        plan_rotation(env, "grafana")
    assert err.value.message == (
        "--only grafana: not a component rotate-secrets rotates; allowed: minio, minio-root, postgres, trino, "
        "passwords, ca (not built yet: grafana), or no --only for all of them but ca")
    assert err.value.exit_code == 2


def test_plan_check_and_the_trino_interruption_change_nothing(env: Environment) -> None:
    before = env.project.vault_path("local").read_bytes()
    result = rotate(env, "minio", check=True)
    assert result.rotation is not None
    assert result.rotation.access_keys == {"jupyter": ["jupyter", "jupyter-a"],
                                           "landing": ["landing", "landing-a"],
                                           "pgbackrest": ["pgbackrest", "pgbackrest-a"],
                                           "prometheus": ["prometheus", "prometheus-a"],
                                           "warehouse": ["warehouse", "warehouse-a"]}
    assert [name for name, _ in result.plan] == ["generate", "add", "give-pgbackrest", "give-prometheus",
                                                 "give-warehouse", "give-jupyter-landing", "remove", "forget", "verify"]
    assert dict(result.plan)["give-jupyter-landing"] == (
        "apps.yml on apps1: jupyter-a replaces jupyter, landing-a replaces landing (restarts JupyterLab, Dagster's "
        "code server)")
    assert len(result.disruptions) == 3
    assert "its nodes restart together" in result.disruptions[0]
    assert "JupyterLab's kernels" in result.disruptions[1]
    assert "Dagster's code server" in result.disruptions[2]
    assert env.project.vault_path("local").read_bytes() == before
    assert not Rotation.path(env.state_dir).exists()
    assert read_history(env.state_dir) == []


def test_generate_keeps_the_old_users_and_a_rerun_generates_nothing_new(env: Environment) -> None:
    old = _vault(env)
    rotation, _ = plan_rotation(env, "minio")
    runner = _Runner(env, rotation, lambda event: None)
    runner.generate()
    first = _vault(env)
    assert first["vault_minio_warehouse_access_key"] == "warehouse-a"
    assert first["vault_minio_warehouse_secret_key"] != old["vault_minio_warehouse_secret_key"]
    previous = json.loads(first[PREVIOUS_USERS])
    assert {"access_key": "warehouse", "secret_key": old["vault_minio_warehouse_secret_key"],
            "policies": ["warehouse-rw"]} in previous
    assert len(previous) == 5
    runner.generate()  # the resumed step after a kill that came before the step was recorded
    assert _vault(env) == first
    runner.forget()
    assert PREVIOUS_USERS not in _vault(env)


def test_an_interrupted_rotation_is_resumed_and_blocks_scaling_and_deploy(env: Environment) -> None:
    Rotation("minio", {"warehouse": ["warehouse", "warehouse-a"]}, completed=["generate"]).save(env.state_dir)
    rotation, resumed = plan_rotation(env, None)
    assert resumed
    assert rotation.completed == ["generate"]
    with pytest.raises(PlatformCtlError) as err:
        plan_operation(env, "scale-out", "trino_worker", "+1")
    assert "platform-ctl rotate-secrets local --only minio` to finish it" in err.value.message
    from platform_ctl.deploy import deploy

    with pytest.raises(PlatformCtlError) as err:
        deploy(env)
    assert "interrupted `rotate-secrets --only minio" in err.value.message
    Rotation.path(env.state_dir).unlink()
    Operation("scale-out", "trino_worker", 1, 2, ["trino-worker2"], []).save(env.state_dir)
    with pytest.raises(PlatformCtlError) as err:
        plan_rotation(env, "minio")
    assert "interrupted `scale-out trino_worker" in err.value.message


def test_a_vault_with_old_users_but_no_rotation_on_record_is_refused(env: Environment) -> None:
    from platform_ctl.vault import vault_password

    write_vault(env.project.vault_path("local"), {**_vault(env), PREVIOUS_USERS: "[]"}, vault_password("local"))
    with pytest.raises(PlatformCtlError) as err:
        plan_rotation(env, "minio")
    assert f"holds {PREVIOUS_USERS}" in err.value.message


def test_the_root_credential_is_replaced_and_the_old_one_kept_until_forgotten(env: Environment) -> None:
    old = _vault(env)
    result = rotate(env, "minio-root", check=True)
    assert [name for name, _ in result.plan] == ["generate", "restart", "refuse", "forget", "verify"]
    assert "all its nodes must restart together" in result.disruptions[0]
    rotation, _ = plan_rotation(env, "minio-root")
    assert rotation.access_keys == {}, "the root access key stays out of operation.json"
    runner = _Runner(env, rotation, lambda event: None)
    runner.generate_root()
    first = _vault(env)
    assert first["vault_minio_root_user"] != old["vault_minio_root_user"]
    assert first["vault_minio_root_password"] != old["vault_minio_root_password"]
    assert json.loads(first[PREVIOUS_USERS]) == [{"access_key": old["vault_minio_root_user"],
                                                   "secret_key": old["vault_minio_root_password"], "root": True}]
    runner.generate_root()
    assert _vault(env) == first, "a resumed step generates nothing new"


def test_postgres_logins_alternate_and_the_old_ones_are_kept_until_forgotten(env: Environment) -> None:
    old = _vault(env)
    result = rotate(env, "postgres", check=True)
    assert result.rotation is not None
    assert result.rotation.logins == {"dagster": ["dagster", "dagster_a"], "grafana": ["grafana", "grafana_a"],
                                      "grafana_reader": ["grafana_reader", "grafana_reader_a"],
                                      "iceberg": ["iceberg", "iceberg_a"]}
    assert result.rotation.access_keys == {}
    assert result.plan == [
        ("generate", "new logins grafana_a, grafana_reader_a, iceberg_a, dagster_a and their passwords into the vault "
                     "(the old ones kept there), a new superuser password"),
        ("add", "metadata.yml on pg1 (--tags postgresql_configure,postgresql_databases): create grafana_a, "
                "grafana_reader_a, iceberg_a, dagster_a next to the old logins, pg_hba.conf admits both"),
        ("give-grafana-grafana_reader", "monitoring.yml on mon1 (--tags grafana): grafana_a replaces grafana, "
                                        "grafana_reader_a replaces grafana_reader (restarts Grafana)"),
        ("give-iceberg", "query.yml on trino-coord1, trino-worker1: iceberg_a replaces iceberg (restarts Trino)"),
        ("give-dagster", "apps.yml on apps1 (--tags dagster): dagster_a replaces dagster (restarts Dagster)"),
        ("forget", f"drop the old logins' passwords from the vault ({PREVIOUS_LOGINS})"),
        ("retire", "metadata.yml on pg1: retire grafana, grafana_reader, iceberg, dagster (no login, no password, "
                   "sessions ended) and check in pg_authid that none of them can log in"),
        ("verify", "the shipped checks on every host"),
    ]
    assert [d.split(":")[0] for d in result.disruptions] == [
        "Grafana reads its database's and its PostgreSQL data source's logins only when it starts",
        "Trino reads its Iceberg catalog's PostgreSQL login only when it starts",
        "Dagster reads its storage's PostgreSQL login only when it starts"]
    assert _vault(env) == old, "--check writes nothing"

    rotation, _ = plan_rotation(env, "postgres")
    runner = _Runner(env, rotation, lambda event: None)
    runner.generate_logins()
    first = _vault(env)
    assert first["vault_postgres_iceberg_login"] == "iceberg_a"
    assert first["vault_postgres_iceberg_password"] != old["vault_postgres_iceberg_password"]
    assert first["vault_postgres_superuser_password"] != old["vault_postgres_superuser_password"]
    assert {"login": "iceberg", "password": old["vault_postgres_iceberg_password"], "of": "iceberg"} in \
        json.loads(first[PREVIOUS_LOGINS])
    runner.generate_logins()  # the resumed step after a kill that came before the step was recorded
    assert _vault(env) == first
    with pytest.raises(PlatformCtlError) as err:  # a second rotation of another component waits
        plan_rotation(env, "minio")
    assert f"holds {PREVIOUS_LOGINS}" in err.value.message
    runner.forget()
    after = _vault(env)
    assert PREVIOUS_LOGINS not in after
    again, _ = plan_rotation(env, "postgres")
    assert again.logins["iceberg"] == ["iceberg_a", "iceberg_b"]


def test_a_postgres_rotation_recorded_before_logins_had_their_field_resumes_with_them(env: Environment) -> None:
    Rotation("postgres", {"iceberg": ["iceberg", "iceberg_a"]}, completed=["generate"]).save(env.state_dir)
    rotation, resumed = plan_rotation(env, None)
    assert resumed
    assert (rotation.logins, rotation.access_keys) == ({"iceberg": ["iceberg", "iceberg_a"]}, {})


def test_without_only_every_secret_but_the_ca_rotates_in_one_run(env: Environment) -> None:
    old = _vault(env)
    result = rotate(env, None, check=True)
    rotation = result.rotation
    assert rotation is not None
    assert rotation.only == "all"
    assert rotation.access_keys["warehouse"] == ["warehouse", "warehouse-a"]
    assert rotation.logins["iceberg"] == ["iceberg", "iceberg_a"]
    # Each host playbook once: MinIO restarts in storage, Trino in query, nothing restarts twice.
    # Trino before its clients: it accepts its users' old and new passwords until refuse-passwords.
    assert [name for name, _ in result.plan] == ["generate", "storage", "metadata", "query", "monitoring", "apps",
                                                 "remove", "refuse-passwords", "forget", "retire", "verify"]
    plan = dict(result.plan)
    assert "every node restarts together, once, with the new root credential" in plan["storage"]
    assert "every node restarts together, once" in plan["query"]
    assert [d.split(":")[0] for d in result.disruptions] == [
        "MinIO reads its root credentials only when it starts",
        "Trino reads its shared secret and its Iceberg catalog's S3 credentials and PostgreSQL login only when it "
        "starts",
        "Grafana reads its database's and its PostgreSQL data source's logins only when it starts",
        "Dagster reads its storage's PostgreSQL login only when it starts",
        "JupyterLab reads its token and the analyst's Trino password only when it starts",
        "Dagster's proxy passwords and JupyterLab's token change at once, with no overlap"]
    assert rotation.summary.startswith("rotate-secrets: every secret but the CA: MinIO's root credentials, MinIO "
                                       "users pgbackrest → pgbackrest-a")
    assert rotation.refused[-3:] == ["MinIO's old root credential", "Trino's old shared secret",
                                     "Trino's users' old passwords"]
    assert _vault(env) == old, "--check writes nothing"

    rotation, resumed = plan_rotation(env, None)
    assert not resumed
    runner = _Runner(env, rotation, lambda event: None)
    runner.generate_all()
    first = _vault(env)
    for key in ("vault_minio_root_user", "vault_minio_warehouse_secret_key", "vault_postgres_iceberg_password",
                "vault_postgres_superuser_password", "vault_trino_shared_secret", "vault_trino_analyst_password",
                "vault_jupyterlab_token"):
        assert first[key] != old[key], key
    assert first["vault_postgres_iceberg_login"] == "iceberg_a"
    previous_users = json.loads(first[PREVIOUS_USERS])
    assert [u["access_key"] for u in previous_users] == [old["vault_minio_root_user"], "pgbackrest", "prometheus",
                                                         "warehouse", "jupyter", "landing"]
    assert previous_users[0]["root"] is True
    assert first[PREVIOUS_SECRET] == old["vault_trino_shared_secret"]
    assert {"login": "iceberg", "password": old["vault_postgres_iceberg_password"], "of": "iceberg"} in \
        json.loads(first[PREVIOUS_LOGINS])
    runner.generate_all()  # the resumed step after a kill that came before the step was recorded
    assert _vault(env) == first, "a resumed step generates nothing new"
    runner.forget()
    after = _vault(env)
    assert not {PREVIOUS_USERS, PREVIOUS_LOGINS, PREVIOUS_SECRET, PREVIOUS_PASSWORDS} & set(after)
    assert after["vault_trino_shared_secret"] == first["vault_trino_shared_secret"]


def _resumed_kept_then_forgotten(env: Environment, runner: _Runner, generate, first: dict[str, str], previous: str,
                                 other: str) -> None:
    """A resumed generate step writes nothing new; another rotation waits while the vault keeps ``previous``;
    forget drops it."""
    generate()
    assert _vault(env) == first, "a resumed step generates nothing new"
    with pytest.raises(PlatformCtlError) as err:
        plan_rotation(env, other)
    assert f"holds {previous}" in err.value.message
    runner.forget()
    assert previous not in _vault(env)


def test_the_trino_secret_is_replaced_and_the_old_one_kept_until_forgotten(env: Environment) -> None:
    old = _vault(env)
    result = rotate(env, "trino", check=True)
    assert result.plan == [
        ("generate", f"a new shared secret for Trino into the vault (the old one kept there as {PREVIOUS_SECRET})"),
        ("restart", "query.yml on trino-coord1, trino-worker1: every node restarts together with the new secret, "
                    "then each is checked to accept it and to refuse internal requests signed with the old one"),
        ("forget", f"drop the old shared secret from the vault ({PREVIOUS_SECRET})"),
        ("verify", "the shipped checks on every host"),
    ]
    assert len(result.disruptions) == 1
    assert "all of them restart together" in result.disruptions[0]
    assert _vault(env) == old, "--check writes nothing"
    rotation, _ = plan_rotation(env, "trino")
    assert rotation.access_keys == {}, "no secret in operation.json"
    runner = _Runner(env, rotation, lambda event: None)
    runner.generate_secret()
    first = _vault(env)
    assert first["vault_trino_shared_secret"] != old["vault_trino_shared_secret"]
    assert len(first["vault_trino_shared_secret"]) >= 32
    assert first[PREVIOUS_SECRET] == old["vault_trino_shared_secret"]
    _resumed_kept_then_forgotten(env, runner, runner.generate_secret, first, PREVIOUS_SECRET, "minio")
    assert _vault(env)["vault_trino_shared_secret"] == first["vault_trino_shared_secret"]


def test_the_ca_rotation_plan_and_its_refusal_of_a_ca_left_by_another_run(env: Environment) -> None:
    result = rotate(env, "ca", check=True)
    assert [name for name, _ in result.plan] == ["generate", "trust", "switch", "reissue", "untrust", "forget",
                                                 "verify"]
    assert ("site.yml --tags minio_tls,minio_configure,postgresql_tls,prometheus_configure,grafana_configure,"
            "trino_tls,trino_configure") in dict(result.plan)["trust"]
    assert len(result.disruptions) == 1
    assert "restarts all MinIO nodes together and all Trino nodes together" in result.disruptions[0]
    assert not (env.state_dir / "pki").exists(), "--check makes no CA"
    (env.state_dir / "pki" / "next").mkdir(parents=True)
    with pytest.raises(PlatformCtlError) as err:
        plan_rotation(env, "ca")
    assert "pki/next exists" in err.value.message
    assert err.value.exit_code == 2


def _role_tags() -> set[str]:
    """Every tag a task of a role's tasks/main.yml carries, and every tag a playbook gives a role."""
    import yaml

    tags: set[str] = set()
    for main in (COLLECTION_ROOT / "roles").glob("*/tasks/main.yml"):
        for entry in yaml.safe_load(main.read_text()) or []:
            tags.update(entry.get("tags", []))
    for playbook in (COLLECTION_ROOT / "ansible" / "playbooks").glob("*.yml"):
        for play in yaml.safe_load(playbook.read_text()) or []:
            for role in play.get("roles", []) if isinstance(play, dict) else []:
                if isinstance(role, dict):
                    tags.update(role.get("tags", []))
    return tags


def test_passwords_are_accepted_old_and_new_by_trino_until_its_clients_have_the_new(env: Environment) -> None:
    old = _vault(env)
    result = rotate(env, "passwords", check=True)
    assert [name for name, _ in result.plan] == ["generate", "add", "give-monitoring", "give-apps",
                                                 "refuse-passwords", "forget", "verify"]
    plan = dict(result.plan)
    assert "query.yml on trino-coord1, trino-worker1 (--tags trino_configure)" in plan["add"]
    assert "old and new password" in plan["add"]
    assert "each old one checked refused" in plan["refuse-passwords"]
    assert len(result.disruptions) == 3
    assert _vault(env) == old, "--check writes nothing"

    rotation, _ = plan_rotation(env, "passwords")
    assert rotation.access_keys == {}, "no secret in operation.json"
    assert rotation.logins == {}
    runner = _Runner(env, rotation, lambda event: None)
    runner.generate_passwords()
    first = _vault(env)
    kept = json.loads(first[PREVIOUS_PASSWORDS])
    assert set(kept) == {"vault_trino_admin_password", "vault_trino_pipelines_password", "vault_trino_analyst_password",
                         "vault_trino_monitoring_password", "vault_dagster_operator_password",
                         "vault_dagster_viewer_password", "vault_jupyterlab_token"}
    for key, value in kept.items():
        assert value == old[key], key
        assert first[key] != old[key], key
        assert len(first[key]) == len(old[key]), key
    assert first["vault_trino_shared_secret"] == old["vault_trino_shared_secret"]
    _resumed_kept_then_forgotten(env, runner, runner.generate_passwords, first, PREVIOUS_PASSWORDS, "trino")


def test_every_tag_a_rotation_applies_selects_tasks_of_a_role(env: Environment) -> None:
    """A --tags that no task carries would run nothing and pass: the e2e suite runs the combined rotation
    (whole playbooks), the single ones' tag-limited steps are held here."""
    applied: set[str] = set()
    for only in ("minio", "minio-root", "postgres", "trino", "passwords", "ca", None):
        for _, what in rotate(env, only, check=True).plan:
            for listed in re.findall(r"--tags ([\w,]+)", what):
                applied.update(listed.split(","))
    assert applied >= {"minio_objects", "postgresql_configure", "postgresql_databases", "grafana", "minio_tls"}
    assert applied <= _role_tags(), applied - _role_tags()

"""`platform-ctl endpoints` and `platform-ctl credentials` (platform_ctl.reach) on a fake deployed
DigitalOcean environment: OpenTofu's outputs with private and public addresses that differ, a
finished deploy record, a vault."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from platform_ctl import display
from platform_ctl.catalogue import COMPONENTS, ENDPOINTS
from platform_ctl.cli import main
from platform_ctl.environment import Environment
from platform_ctl.errors import UsageError
from platform_ctl.paths import COLLECTION_ROOT, Project
from platform_ctl.reach import NO_CREDENTIAL, credential, endpoints
from platform_ctl.vault import write_vault

PASSWORD = "vault-password-of-the-test"
VAULT = {"vault_trino_admin_password": "trino-secret-1", "vault_minio_root_user": "rootUserXYZ",
         "vault_minio_root_password": "minio-secret-2", "vault_grafana_admin_password": "grafana-secret-3",
         "vault_jupyterlab_token": "token4", "vault_dagster_operator_password": "dagster-operator-5",
         "vault_dagster_viewer_password": "dagster-viewer-6", "vault_trino_analyst_password": "trino-analyst-7"}


def _deploy(root: Path, without: tuple[str, ...] = ()) -> Environment:
    """`prod`'s spec (less the groups ``without``) as a finished deploy left it."""
    spec = yaml.safe_load((COLLECTION_ROOT / "inventories/prod/platform.yml").read_text())
    for group in without:
        del spec["groups"][group]
    project = Project(root)
    project.env_dir("prod").mkdir(parents=True)
    project.spec_path("prod").write_text(yaml.safe_dump(spec))
    env = Environment.load(project, "prod")
    outputs = {"hosts": {h.name: {"id": i, "private_ipv4": f"10.87.0.{10 + i}", "public_ipv4": f"203.0.113.{10 + i}"}
                         for i, h in enumerate(env.spec.hosts())}}
    (env.state_dir / "tofu").mkdir(parents=True)
    (env.state_dir / "tofu" / "outputs.json").write_text(json.dumps(outputs))
    env.inventory.parent.mkdir(parents=True)
    env.inventory.write_text("all: {}\n")
    (env.state_dir / "deploy.json").write_text(json.dumps({"finished": True}))
    write_vault(project.vault_path("prod"), VAULT, PASSWORD)
    return env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Environment:
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(tmp_path / ".config"))
    monkeypatch.setenv("PLATFORM_VAULT_PASSWORD", PASSWORD)
    monkeypatch.setenv("COLUMNS", "250")  # rich folds long cells on a narrow console
    return _deploy(tmp_path)


def _addresses(env: Environment) -> dict[str, tuple[str, str]]:
    return {h.name: (h.private_ip, h.public_ip) for h in env.backend.hosts(env.spec)}


def test_every_service_of_the_groups_the_environment_has_and_no_other(env: Environment, tmp_path: Path) -> None:
    assert [r.service for r in endpoints(env).services] == ["minio", "minio-console", "prometheus", "alertmanager",
                                                             "grafana", "trino", "trino-analyst", "jupyterlab",
                                                             "dagster", "dagster-viewer"]
    without_apps = _deploy(tmp_path / "other", without=("apps",))
    assert [r.service for r in endpoints(without_apps).services] == ["minio", "minio-console", "prometheus",
                                                                      "alertmanager", "grafana", "trino",
                                                                      "trino-analyst"]


def test_urls_name_the_private_address_and_port_of_the_groups_first_host(env: Environment) -> None:
    addresses = _addresses(env)
    found = {r.service: r for r in endpoints(env).services}
    coordinator, minio1, mon1, apps1 = (addresses[h][0] for h in ("trino-coord1", "minio1", "mon1", "apps1"))
    assert {s: (r.host, r.url) for s, r in found.items()} == {
        "trino": ("trino-coord1", f"https://{coordinator}:8443"),
        "trino-analyst": ("trino-coord1", f"https://{coordinator}:8443"),
        "minio": ("minio1", f"https://{minio1}:9000"),
        "minio-console": ("minio1", f"https://{minio1}:9001/"),
        "grafana": ("mon1", f"http://{mon1}:3000/"),
        "prometheus": ("mon1", f"http://{mon1}:9090/"),
        "alertmanager": ("mon1", f"http://{mon1}:9093/"),
        "jupyterlab": ("apps1", f"https://{apps1}:8888/lab"),
        "dagster": ("apps1", f"https://{apps1}:3070/"),
        "dagster-viewer": ("apps1", f"https://{apps1}:3070/"),
    }
    # From outside the VPC: SSH to the host's name, the port forwarded to its private address.
    assert found["jupyterlab"].tunnel == f"platform-ctl ssh prod apps1 -N -L 8888:{apps1}:8888"
    assert found["jupyterlab"].tunnel_url == "https://localhost:8888/lab"
    # Only the base role's public ports are open from outside: Trino's on the coordinator.
    assert [s for s, r in found.items() if r.public] == ["trino", "trino-analyst"]


def test_a_port_the_environment_overrides_is_the_one_listed(env: Environment) -> None:
    (env.project.env_dir("prod") / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (env.project.env_dir("prod") / "group_vars" / "all" / "main.yml").write_text("trino_https_port: 9443\n")
    trino = next(r for r in endpoints(env).services if r.service == "trino")
    assert trino.url.endswith(":9443")
    assert not trino.public  # 9443 is not among base_firewall_public_ports


def test_a_service_the_environment_does_not_install_is_left_out(env: Environment) -> None:
    (env.project.env_dir("prod") / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (env.project.env_dir("prod") / "group_vars" / "all" / "main.yml").write_text("grafana_install: false\n")
    assert "grafana" not in {r.service for r in endpoints(env).services}
    assert "prometheus" in {r.service for r in endpoints(env).services}
    with pytest.raises(UsageError, match=r"'grafana' is not installed in prod \(grafana_install: false\)"):
        credential(env, "grafana")


def test_users_and_credentials_columns(env: Environment) -> None:
    found = {r.service: r for r in endpoints(env).services}
    assert {s: (r.user, r.credential) for s, r in found.items()} == {
        "trino": ("admin", "platform-ctl credentials prod trino"),
        "trino-analyst": ("analyst", "platform-ctl credentials prod trino-analyst"),
        "minio": ("rootUserXYZ", "platform-ctl credentials prod minio"),
        "minio-console": ("rootUserXYZ", "platform-ctl credentials prod minio-console"),
        "grafana": ("admin", "platform-ctl credentials prod grafana"),
        "prometheus": ("", NO_CREDENTIAL),
        "alertmanager": ("", NO_CREDENTIAL),
        "jupyterlab": ("", "platform-ctl credentials prod jupyterlab"),
        "dagster": ("operator", "platform-ctl credentials prod dagster"),
        "dagster-viewer": ("viewer", "platform-ctl credentials prod dagster-viewer"),
    }


def test_without_the_vault_password_the_users_vault_key_is_named(env: Environment,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLATFORM_VAULT_PASSWORD")
    minio = next(r for r in endpoints(env).services if r.service == "minio")
    assert minio.user == "vault_minio_root_user (in the vault)"


def test_the_table_and_json(env: Environment) -> None:
    table = CliRunner().invoke(main, ["endpoints", "prod"])
    assert table.exit_code == 0, table.output
    coordinator = _addresses(env)["trino-coord1"][0]
    row = next(line for line in table.output.splitlines() if line.startswith("│ trino "))
    assert f"https://{coordinator}:8443" in row
    assert "platform-ctl credentials prod trino" in row
    assert f"CA to trust: {env.state_dir / 'pki' / 'trusted.crt'}" in table.output
    assert f"platform-ctl ssh prod trino-coord1 -N -L 8443:{coordinator}:8443" in table.output
    for secret in VAULT.values():
        if secret != VAULT["vault_minio_root_user"]:
            assert secret not in table.output
    as_json = CliRunner().invoke(main, ["endpoints", "prod", "--json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.output)
    assert document["env"] == "prod"
    assert document["ca"] == str(env.state_dir / "pki" / "trusted.crt")
    by_service = {s["service"]: s for s in document["services"]}
    assert by_service["trino"]["url"] == f"https://{coordinator}:8443"
    assert by_service["trino"]["user"] == "admin"
    assert by_service["prometheus"]["credential"] == NO_CREDENTIAL
    assert set(by_service) == {"trino", "trino-analyst", "minio", "minio-console", "grafana", "prometheus",
                               "alertmanager", "jupyterlab", "dagster", "dagster-viewer"}


@pytest.mark.parametrize(("service", "key"), [("trino", "vault_trino_admin_password"),
                                              ("minio", "vault_minio_root_password"),
                                              ("grafana", "vault_grafana_admin_password"),
                                              ("jupyterlab", "vault_jupyterlab_token"),
                                              ("dagster-viewer", "vault_dagster_viewer_password"),
                                              ("trino-analyst", "vault_trino_analyst_password")])
def test_credentials_prints_the_vaults_value_alone(env: Environment, service: str, key: str) -> None:
    result = CliRunner().invoke(main, ["credentials", "prod", service])
    assert result.exit_code == 0, result.output
    assert result.output == VAULT[key] + "\n"


def test_an_unknown_service_is_a_usage_error_naming_the_allowed_ones(env: Environment) -> None:
    result = CliRunner().invoke(main, ["credentials", "prod", "spark"])
    assert result.exit_code == 2, result.output
    assert ("'spark' is not a service: SERVICE is one of minio, minio-console, grafana, trino, trino-analyst,"
            " jupyterlab") in result.output
    result = CliRunner().invoke(main, ["credentials", "prod", "prometheus"])
    assert result.exit_code == 2, result.output
    assert "'prometheus' has no authentication" in result.output


def test_a_service_of_a_group_without_hosts_has_no_credential(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_VAULT_PASSWORD", PASSWORD)
    _deploy(tmp_path, without=("apps",))
    result = CliRunner().invoke(main, ["credentials", "prod", "jupyterlab"])
    assert result.exit_code == 2, result.output
    assert "has no host in prod (group apps)" in result.output
    assert VAULT["vault_jupyterlab_token"] not in result.output


def test_an_environment_no_deploy_finished_is_refused_like_by_the_other_commands(env: Environment) -> None:
    (env.state_dir / "deploy.json").write_text(json.dumps({"finished": False, "completed": ["prepare"]}))
    for command in (["endpoints", "prod"], ["credentials", "prod", "trino"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "prod is not fully deployed (no finished `platform-ctl deploy prod`)" in result.output
        assert VAULT["vault_trino_admin_password"] not in result.output


def test_a_missing_vault_is_a_preflight_error(env: Environment) -> None:
    env.project.vault_path("prod").unlink()
    result = CliRunner().invoke(main, ["credentials", "prod", "trino"])
    assert result.exit_code == 3, result.output
    assert "does not exist" in result.output


def test_each_endpoints_port_is_its_roles_default() -> None:
    """The catalogue's ports hold against roles/<role>/defaults (the variable each names)."""
    for component in COMPONENTS:
        if not component.endpoints:
            continue
        defaults = yaml.safe_load((COLLECTION_ROOT / "roles" / str(component.role) / "defaults/main.yml").read_text())
        for endpoint in component.endpoints:
            assert defaults[endpoint.port_var] == endpoint.port, endpoint.service
            assert endpoint.credential == "" or endpoint.credential in {s.key for s in component.secrets}
    assert set(ENDPOINTS) == {"trino", "trino-analyst", "minio", "minio-console", "grafana", "prometheus",
                              "alertmanager", "jupyterlab", "dagster", "dagster-viewer"}


def test_the_deploy_summary_points_to_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    result = SimpleNamespace(env="prod", playbooks={}, hosts=[], resumed_from=None, verify=None, stopped_after=None,
                             notices=[], changed_per_host=dict)
    display.show_deploy(result, vault_hint="vault.yml")  # type: ignore[arg-type]
    assert "platform-ctl endpoints prod" in capsys.readouterr().out
    display.show_deploy(SimpleNamespace(**{**vars(result), "stopped_after": "connect"}),  # type: ignore[arg-type]
                        vault_hint="vault.yml")
    assert "platform-ctl endpoints prod" not in capsys.readouterr().out


"""The rules `status` and `destroy` apply, which live in platform_ctl.operations, not in the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from platform_ctl import operations
from platform_ctl.cli import main
from platform_ctl.errors import UsageError
from platform_ctl.infra import HostStatus
from platform_ctl.monitoring import MonitoringStatus, Target
from platform_ctl.operations import StatusReport, confirm_destroy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A project with the shipped prod (DigitalOcean) and local specs; destroy only records its calls."""
    for env in ("prod", "local"):
        (tmp_path / "inventories" / env).mkdir(parents=True)
        shutil.copy(REPO / "inventories" / env / "platform.yml", tmp_path / "inventories" / env / "platform.yml")
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(tmp_path / ".config"))
    destroyed: list[str] = []
    monkeypatch.setattr(operations, "destroy", lambda env, report, with_data=False: destroyed.append(env.name))
    return destroyed


def test_destroying_volumes_needs_with_data(project: list[str]):
    result = CliRunner().invoke(main, ["destroy", "prod", "--yes"])
    assert result.exit_code == 2
    assert "data volume(s)" in result.output
    assert "`platform-ctl destroy prod --with-data` removes it with its data" in result.output
    assert project == []


def test_destroying_volumes_needs_the_name_typed(project: list[str]):
    result = CliRunner().invoke(main, ["destroy", "prod", "--with-data", "--confirm", "prd"])
    assert result.exit_code == 2
    assert "confirmation 'prd' is not 'prod': nothing destroyed" in result.output
    result = CliRunner().invoke(main, ["destroy", "prod", "--with-data"], input="prod\n")
    assert result.exit_code == 0, result.output
    assert "Type the environment's name to confirm" in result.output
    assert project == ["prod"]


def test_a_local_environment_is_destroyed_without_asking(project: list[str]):
    result = CliRunner().invoke(main, ["destroy", "local"])
    assert result.exit_code == 0, result.output
    assert project == ["local"]


def test_without_volumes_yes_replaces_the_question():
    env = SimpleNamespace(name="e", spec=SimpleNamespace(provider="digitalocean", hosts=list))
    asked: list[str] = []
    confirm_destroy(env, with_data=False, yes=True, typed_name=None, ask_name=str, ask_yes=asked.append)
    assert asked == []
    confirm_destroy(env, with_data=False, yes=False, typed_name=None, ask_name=str, ask_yes=asked.append)
    assert asked == ["Destroy every host of e?"]
    with pytest.raises(UsageError):
        confirm_destroy(SimpleNamespace(name="e", spec=SimpleNamespace(
            provider="digitalocean", hosts=lambda: [SimpleNamespace(volumes=[SimpleNamespace(name="v")])])),
            with_data=True, yes=True, typed_name="x", ask_name=str, ask_yes=asked.append)


def _host(state: str = "running", ssh: bool = True) -> HostStatus:
    return HostStatus("pg1", ("postgres",), state, "10.0.0.2", ssh)


def _monitoring(up: bool = True) -> MonitoringStatus:
    return MonitoringStatus("mon1", [Target("pg1", "postgres", up)])


@pytest.mark.parametrize(("report", "code"), [
    (StatusReport([_host()], _monitoring(), ""), 0),
    (StatusReport([_host(state="stopped", ssh=False)], _monitoring(), ""), 1),
    (StatusReport([_host(state="missing", ssh=False)], _monitoring(), ""), 1),
    (StatusReport([_host(ssh=False)], _monitoring(), ""), 1),
    (StatusReport([_host()], _monitoring(up=False), ""), 1),
    (StatusReport([_host()], None, "no host answers SSH"), 1),
])
def test_status_exits_1_when_anything_is_down(report: StatusReport, code: int):
    assert report.exit_code == code

"""`platform-ctl backup` and `restore`: what they refuse before touching any host."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from platform_ctl.backups import BackupSet, HostReport, parse_target, pg_time, restore_plan
from platform_ctl.cli import main
from platform_ctl.errors import PlatformCtlError

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-26T01:30:00Z", "2026-11-26 01:30:00.000000+00"),
    ("2026-11-26 01:30:00.123456+00:00", "2026-11-26 01:30:00.123456+00"),
    ("2026-11-26T03:30:00+02:00", "2026-11-26 01:30:00.000000+00"),
])
def test_target_is_converted_to_utc_for_recovery(text: str, expected: str):
    assert pg_time(parse_target(text, now=NOW)) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("yesterday", "not a time"),
    ("2026-11-26T01:30:00", "give the UTC offset"),
    ("2026-11-27T01:30:00Z", "in the future"),
])
def test_bad_target_is_one_clear_error(text: str, reason: str):
    with pytest.raises(PlatformCtlError, match=reason) as error:
        parse_target(text, now=NOW)
    assert error.value.exit_code == 2


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for env in ("prod", "local"):
        (tmp_path / "inventories" / env).mkdir(parents=True)
        shutil.copy(REPO / "inventories" / env / "platform.yml", tmp_path / "inventories" / env / "platform.yml")
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(tmp_path / ".config"))
    return tmp_path


def test_restore_of_a_cloud_environment_needs_yes(project: Path):
    result = CliRunner().invoke(main, ["restore", "prod", "--to", "2026-11-26T01:30:00Z"])
    assert result.exit_code == 2
    assert "add --yes to confirm; nothing was changed" in result.output
    assert not (project / ".platform").exists()


def test_backup_of_an_environment_never_deployed_says_deploy_first(project: Path):
    result = CliRunner().invoke(main, ["backup", "local"])
    assert result.exit_code == 2
    assert "local is not fully deployed" in result.output
    assert "platform-ctl deploy local" in result.output


def _host_with_backups(*stops: str, chosen: str = "", problem: str = "", off: tuple[str, ...] = ()) -> HostReport:
    sets = [BackupSet(f"b{i}", "full", datetime.fromisoformat(s) - timedelta(minutes=1), datetime.fromisoformat(s),
                      1, 1) for i, s in enumerate(stops)]
    return HostReport("pg1", sets, "0001", "0009", 1, "", chosen, problem, off)


def test_restore_check_names_the_set_the_role_chose():
    host = _host_with_backups("2026-11-26T10:00:00+00:00", "2026-11-26T12:00:00+00:00", chosen="b0")
    at = datetime(2026, 11, 26, 11, 30, tzinfo=UTC)
    assert restore_plan(host, at) == ("pg1: restore backup b0 (ended 2026-11-26T10:00:00+00:00) and replay WAL to "
                                      "2026-11-26 11:30:00.000000+00")
    latest = _host_with_backups("2026-11-26T10:00:00+00:00", "2026-11-26T12:00:00+00:00", chosen="b0", off=("b1",))
    assert restore_plan(latest, None) == ("pg1: restore backup b0 and replay WAL to the end of the archive (0009); "
                                          "not b1, on a timeline a restore abandoned")


def test_restore_check_refuses_with_the_roles_reason_when_no_set_reaches_the_target():
    host = _host_with_backups("2026-11-26T10:00:00+00:00", problem="no backup that recovery along timeline 1 can "
                              "start from ended by 2026-11-26 09:00:00.000000+00")
    with pytest.raises(PlatformCtlError) as err:
        restore_plan(host, datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    assert err.value.exit_code == 2
    assert "pg1: no backup that recovery along timeline 1 can start from ended by" in err.value.message
    assert "nothing was changed" in err.value.message
    with pytest.raises(PlatformCtlError, match="holds no backup"):
        restore_plan(HostReport("pg1", [], "", "", 1, ""), None)

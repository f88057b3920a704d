"""The resumable-operation engine every changing command runs on, and the history it writes."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from platform_ctl.cli import main
from platform_ctl.engine import Once, Step, StepsResult, pending_operation, run_operation
from platform_ctl.environment import Environment
from platform_ctl.errors import PlatformCtlError, UsageError
from platform_ctl.history import history_path, runs
from platform_ctl.paths import Project
from platform_ctl.rotation import Rotation
from platform_ctl.scaling import Operation


@pytest.fixture
def env(local_project: Project) -> Environment:
    environment = Environment.load(local_project, "local")
    environment.state_dir.mkdir(parents=True)
    return environment


def _deployed(env: Environment) -> None:
    env.inventory.parent.mkdir(parents=True, exist_ok=True)
    env.inventory.write_text("all: {}\n")
    (env.state_dir / "deploy.json").write_text(json.dumps({"finished": True}))


def test_a_record_resumes_at_the_first_step_not_done_and_closes_at_the_end(env: Environment) -> None:
    ran: list[str] = []
    op = Operation("scale-out", "trino_worker", 1, 2, ["trino-worker2"], [], completed=["spec"])
    op.save(env.state_dir)
    steps = [Step(name, name, lambda name=name: ran.append(name) or {}) for name in ("spec", "infrastructure")]
    result = StepsResult(True)
    run_operation(env, "scale-out", steps, op, result, lambda e: None)
    assert ran == ["infrastructure"]
    assert result.skipped == ["spec"]
    assert pending_operation(env.state_dir) is None


def test_a_failed_step_leaves_the_record_at_the_steps_done_and_history_says_failed(env: Environment) -> None:
    def boom() -> dict[str, object]:
        raise PlatformCtlError("infrastructure: boom")

    op = Operation("scale-out", "trino_worker", 1, 2, ["trino-worker2"], [])
    op.save(env.state_dir)
    steps = [Step("spec", "", lambda: {"changed": {"h": 1}}), Step("infrastructure", "", boom)]
    with pytest.raises(PlatformCtlError):
        run_operation(env, "scale-out", steps, op, StepsResult(False), lambda e: None, group="trino_worker")
    pending = pending_operation(env.state_dir)
    assert pending is not None
    assert pending.data["completed"] == ["spec"]
    assert Operation.from_record(pending.data) == op
    (run,) = runs(env.state_dir)
    assert (run.command, run.outcome, run.steps, run.error) == ("scale-out", "failed", ("spec",),
                                                                "infrastructure: boom")
    assert run.details == {"group": "trino_worker"}


def test_pending_names_any_kind_of_operation_with_the_command_that_finishes_it(env: Environment) -> None:
    Rotation("postgres", {}, logins={"iceberg": ["iceberg_a", "iceberg_b"]}).save(env.state_dir)
    pending = pending_operation(env.state_dir)
    assert pending is not None
    assert "run `platform-ctl rotate-secrets local --only postgres` to finish it" in pending.unfinished("local")
    assert "PostgreSQL logins iceberg_a → iceberg_b" in pending.unfinished("local")


@pytest.mark.parametrize("command", [["backup", "local"], ["restore", "local"],
                                     ["scale-out", "local", "trino_worker", "--count", "+1"],
                                     ["rotate-secrets", "local", "--only", "minio"], ["deploy", "local"]])
def test_every_changing_command_refuses_while_an_operation_is_unfinished(
        env: Environment, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _deployed(env)
    Operation("scale-in", "trino_worker", 2, 1, [], ["trino-worker2"], completed=["drain"]).save(env.state_dir)
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(env.project.root))
    result = CliRunner().invoke(main, command)
    assert result.exit_code == UsageError.exit_code, result.output
    assert "is not finished: run `platform-ctl scale-in local trino_worker` to finish it" in result.output
    assert "nothing was changed" in result.output
    assert [r.command for r in runs(env.state_dir)] == []


def test_backup_and_restore_refuse_an_environment_no_deploy_finished(env: Environment,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    env.inventory.parent.mkdir(parents=True, exist_ok=True)
    env.inventory.write_text("all: {}\n")  # an inventory, but the deploy stopped before verify
    (env.state_dir / "deploy.json").write_text(json.dumps({"finished": False, "completed": ["prepare"]}))
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(env.project.root))
    for command in ("backup", "restore"):
        result = CliRunner().invoke(main, [command, "local"])
        assert result.exit_code == 2, result.output
        assert "local is not fully deployed (no finished `platform-ctl deploy local`)" in result.output


def test_history_lists_each_run_oldest_first_as_a_table_and_as_json(env: Environment,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_operation(env, "deploy", [Step("prepare", "", lambda: {})], Once(), StepsResult(False), lambda e: None,
                  phases=["prepare"])
    run_operation(env, "backup", [Step("backup", "", lambda: {"hosts": ["pg1"]})], Once(), StepsResult(False),
                  lambda e: None, postgresql_backup_type="full")
    history_path(env.state_dir).open("a").write('{"torn": ')  # a kill mid-write
    monkeypatch.setenv("PLATFORM_PROJECT_DIR", str(env.project.root))
    table = CliRunner().invoke(main, ["history", "local"])
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if " done " in line]
    assert [("deploy" in r, "backup" in r) for r in rows] == [(True, False), (False, True)], table.output
    as_json = CliRunner().invoke(main, ["history", "local", "--json"])
    listed = json.loads(as_json.output)
    assert [(r["command"], r["outcome"], r["steps"]) for r in listed] == [("deploy", "done", ["prepare"]),
                                                                           ("backup", "done", ["backup"])]
    assert listed[1]["details"] == {"postgresql_backup_type": "full"}


def test_the_history_outlives_the_state_directory(env: Environment) -> None:
    run_operation(env, "deploy", [Step("prepare", "", lambda: {})], Once(), StepsResult(False), lambda e: None)
    shutil.rmtree(env.state_dir)  # what destroy --with-data removes
    assert [r.command for r in runs(env.state_dir)] == ["deploy"]

"""scale-out / scale-in planning: counts, the spec edit, refusals before anything changes, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platform_ctl.environment import Environment
from platform_ctl.errors import PlatformCtlError, SpecError
from platform_ctl.history import history_path, recorded
from platform_ctl.history import read as read_history
from platform_ctl.infra import Host
from platform_ctl.paths import COLLECTION_ROOT, Project
from platform_ctl.scaling import (
    BASE_MEMBERSHIP_TAGS,
    MEMBERSHIP_TAGS,
    Operation,
    _spec_with_count,
    _targets,
    pending_operation,
    plan_operation,
    scale,
    target_count,
)
from platform_ctl.spec import SIZES, parse_spec, with_group_count
from tests.unit.conftest import LOCAL_SPEC


@pytest.mark.parametrize(("command", "text", "current", "expected"), [
    ("scale-out", "+1", 1, 2), ("scale-out", "3", 1, 3), ("scale-out", " +2 ", 2, 4),
    ("scale-in", "-1", 2, 1), ("scale-in", "1", 3, 1), ("scale-in", "0", 2, 0),
])
def test_target_count(command: str, text: str, current: int, expected: int) -> None:
    assert target_count(command, "trino_worker", text, current) == expected


@pytest.mark.parametrize(("command", "text", "current", "message"), [
    ("scale-out", "-1", 2, "cannot go that way (use scale-in)"),
    ("scale-in", "+1", 2, "cannot go that way (use scale-out)"),
    ("scale-out", "2", 2, "has 2 host(s), that makes 2; allowed: +N (hosts to add) or a new total above 2"),
    ("scale-in", "-3", 2, "has 2 host(s), that makes -1; allowed: -N (hosts to remove) or a new total below 2"),
    ("scale-out", "one", 1, "--count 'one': not a count"),
    ("scale-out", "+1.5", 1, "not a count"),
])
def test_target_count_refuses(command: str, text: str, current: int, message: str) -> None:
    with pytest.raises(PlatformCtlError) as err:
        target_count(command, "trino_worker", text, current)
    assert message in err.value.message
    assert err.value.exit_code == 2


def test_count_edit_keeps_every_other_byte() -> None:
    text = LOCAL_SPEC.read_text()
    edited = with_group_count(text, LOCAL_SPEC, "trino_worker", 2)
    before, after = text.splitlines(), edited.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    line = "  trino_worker: {count: %d, size: s-2vcpu-4gb}"
    assert changed == [(line % 1, line % 2)]
    assert parse_spec(edited, LOCAL_SPEC, "local").count("trino_worker") == 2


def test_count_edit_of_a_block_mapping_and_a_missing_group() -> None:
    text = "groups:\n  trino_worker:\n    count: 1   # one for now\n    size: s-2vcpu-4gb\n"
    assert with_group_count(text, Path("p.yml"), "trino_worker", 12) == text.replace("count: 1 ", "count: 12 ")
    with pytest.raises(SpecError) as err:
        with_group_count(text, Path("p.yml"), "apps", 2)
    assert "groups.apps.count" in str(err.value)


def test_an_invalid_new_count_is_the_spec_error_of_that_key() -> None:
    edited = with_group_count(LOCAL_SPEC.read_text(), LOCAL_SPEC, "trino_worker", 65)
    with pytest.raises(SpecError) as err:
        parse_spec(edited, LOCAL_SPEC, "local")
    assert "groups.trino_worker.count" in str(err.value)
    assert "1..64" in str(err.value)


@pytest.fixture
def env(local_project: Project) -> Environment:
    return Environment.load(local_project, "local")


def _deployed(env: Environment) -> None:
    env.inventory.parent.mkdir(parents=True)
    env.inventory.write_text("all: {}\n")
    (env.state_dir / "deploy.json").write_text(json.dumps({"finished": True}))


def test_scale_refuses_an_environment_not_deployed(env: Environment) -> None:
    with pytest.raises(PlatformCtlError) as err:
        plan_operation(env, "scale-out", "trino_worker", "+1")
    assert "not fully deployed" in err.value.message
    assert not (env.state_dir / "operation.json").exists()


@pytest.mark.parametrize(("command", "group", "allowed"), [
    ("scale-out", "postgres", "trino_worker, apps, minio"), ("scale-in", "apps", "trino_worker"),
    ("scale-in", "minio", "trino_worker"),
])
def test_scale_refuses_a_group_it_does_not_change(env: Environment, command: str, group: str, allowed: str) -> None:
    _deployed(env)
    with pytest.raises(PlatformCtlError) as err:
        plan_operation(env, command, group, "+1" if command == "scale-out" else "-1")
    assert err.value.message.endswith(f"allowed: {allowed}")


def test_plan_names_the_new_and_the_leaving_hosts(env: Environment) -> None:
    _deployed(env)
    out, resumed = plan_operation(env, "scale-out", "trino_worker", "+2")
    assert (out.before, out.after, out.added, out.removed, resumed) == (1, 3, ["trino-worker2", "trino-worker3"], [],
                                                                          False)
    assert env.spec.count("trino_worker") == 1, "planning changes nothing"
    with pytest.raises(PlatformCtlError) as err:
        plan_operation(env, "scale-in", "trino_worker", "-1")
    assert "from 1 to 0: with no workers the coordinator runs the queries itself" in err.value.message
    spec = env.project.spec_path("local")
    spec.write_text(with_group_count(spec.read_text(), spec, "trino_worker", 3))
    env = Environment.load(env.project, "local")
    shrink, _ = plan_operation(env, "scale-in", "trino_worker", "1")
    assert (shrink.after, shrink.added, shrink.removed) == (1, [], ["trino-worker2", "trino-worker3"])


def test_an_interrupted_operation_is_resumed_and_blocks_others(env: Environment) -> None:
    _deployed(env)
    env.state_dir.mkdir(parents=True, exist_ok=True)
    Operation("scale-out", "trino_worker", 1, 2, ["trino-worker2"], [], completed=["spec"]).save(env.state_dir)
    op, resumed = plan_operation(env, "scale-out", "trino_worker", "+1")
    assert resumed
    assert (op.after, op.completed) == (2, ["spec"]), "the recorded target wins over a new +1"
    with pytest.raises(PlatformCtlError) as err:
        plan_operation(env, "scale-in", "trino_worker", "-1")
    assert "interrupted `scale-out trino_worker: 1 → 2 hosts (add trino-worker2)`" in err.value.message
    assert "platform-ctl scale-out local trino_worker" in err.value.message


def test_check_changes_nothing(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    _deployed(env)
    monkeypatch.setattr(type(env.backend), "preflight", lambda self, spec: None)
    before = env.project.spec_path("local").read_text()
    result = scale(env, "scale-out", "trino_worker", "+1", check=True)
    assert result.check_only
    assert [name for name, _ in result.plan][:4] == ["spec", "infrastructure", "inventory",
                                                                           "connect"]
    assert env.project.spec_path("local").read_text() == before
    assert not (env.state_dir / "operation.json").exists()
    assert read_history(env.state_dir) == []


def _host(name: str, *groups: str) -> Host:
    return Host(name, f"{name}.x", groups, "10.0.0.1", "10.0.0.1", SIZES["s-1vcpu-1gb"], ())


@pytest.mark.parametrize(("role", "tag"), [("base", t) for t in BASE_MEMBERSHIP_TAGS]
                         + [({"metadata": "postgresql", "monitoring": "prometheus"}[phase], t)
                            for phase, tags in MEMBERSHIP_TAGS.items() for t in tags])
def test_each_membership_tag_is_a_tag_of_its_role(role: str, tag: str) -> None:
    import yaml

    entries = yaml.safe_load((COLLECTION_ROOT / "roles" / role / "tasks" / "main.yml").read_text())
    assert any(tag in entry.get("tags", []) for entry in entries), f"no task of {role} is tagged {tag}"


def test_a_phase_runs_on_new_hosts_it_has_plays_for_and_on_its_membership_readers() -> None:
    hosts = [_host("trino-coord1", "trino_coordinator"), _host("trino-worker2", "trino_worker"),
             _host("pg1", "postgres"), _host("mon1", "monitoring"), _host("minio1", "minio"),
             _host("minio5", "minio")]
    assert _targets("base", hosts, ["trino-worker2"], "trino_worker") == ["trino-worker2"]
    assert _targets("storage", hosts, ["trino-worker2"], "trino_worker") == []
    assert _targets("metadata", hosts, ["trino-worker2"], "trino_worker") == ["pg1"]
    assert _targets("query", hosts, ["trino-worker2"], "trino_worker") == ["trino-worker2"]
    assert _targets("monitoring", hosts, ["trino-worker2"], "trino_worker") == ["mon1"]
    # Every MinIO node lists every MinIO host: a new pool reconfigures (and restarts) all of them.
    assert _targets("storage", hosts, ["minio5"], "minio") == ["minio5", "minio1"]
    assert _targets("query", hosts, ["minio5"], "minio") == []


@pytest.mark.parametrize(("count", "error"), [
    ("+1", "a pool of 1 hosts is smaller than MinIO's smallest erasure set (4 drives)"),
    ("7", "a pool of 3 hosts is smaller than MinIO's smallest erasure set (4 drives)"),
    ("+17", "a pool of 17 hosts cannot form erasure sets (no set size from 4 to 16 divides 17)"),
])
def test_minio_grows_by_a_whole_server_pool_or_refuses_in_one_line(env: Environment, count: str, error: str) -> None:
    _deployed(env)
    before = env.project.spec_path("local").read_text()
    with pytest.raises(PlatformCtlError) as err:
        plan_operation(env, "scale-out", "minio", count)
    message = err.value.message
    assert message.startswith(f"--count {count}: MinIO grows by whole server pools, and {error}; allowed: +N, the "
                              "size of the new server pool (pools now [4]): +4, +5, +6, +7, +8, +9, +10, +11, ...")
    assert "\n" not in message
    assert env.project.spec_path("local").read_text() == before


def test_minio_scale_out_adds_a_pool_and_restarts_the_whole_cluster(env: Environment,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _deployed(env)
    monkeypatch.setattr(type(env.backend), "preflight", lambda self, spec: None)
    result = scale(env, "scale-out", "minio", "+4", check=True)
    assert result.operation.added == ["minio5", "minio6", "minio7", "minio8"]
    plan = dict(result.plan)
    assert plan["spec"] == "set groups.minio.count to 8"
    assert plan["storage"] == "storage.yml on minio5, minio6, minio7 and 5 more"
    # Phases whose hosts only read the membership run the part that reads it; storage has new hosts.
    assert plan["metadata"] == "metadata.yml on pg1 (--tags postgresql_configure)"
    assert plan["monitoring"] == "monitoring.yml on mon1 (--tags prometheus_configure,prometheus_service)"
    assert plan["membership"].startswith("/etc/hosts and firewall allow-lists on trino-coord1, ")
    text, spec = _spec_with_count(env, "minio", 8)
    assert spec.minio_pools() == (4, 4)
    assert spec.minio_parity() == 2
    # Only the count and the new pools line differ from the shipped file; its comments stay.
    old = env.project.spec_path("local").read_text().splitlines()
    new = text.splitlines()
    assert [line for line in new if line not in old] == ["  pools: [4, 4]",
                                                         "  minio: {count: 8, size: s-1vcpu-1gb, volume_gb: 10}"]


def test_history_records_start_steps_and_failure(tmp_path: Path) -> None:
    def fail_after_one_step() -> None:
        with recorded(tmp_path, "scale-out", group="trino_worker") as history:
            history.step("spec", changed={"x": 1})
            raise PlatformCtlError("infrastructure: boom")

    with pytest.raises(PlatformCtlError):
        fail_after_one_step()
    lines = read_history(tmp_path)
    assert [line["event"] for line in lines] == ["start", "step", "failed"]
    assert lines[0]["group"] == "trino_worker"
    assert lines[2]["error"] == "infrastructure: boom"
    assert len({line["run"] for line in lines}) == 1
    history_path(tmp_path).open("a").write('{"torn": ')
    assert len(read_history(tmp_path)) == 3


def test_deploy_refuses_while_a_scale_operation_is_unfinished(env: Environment) -> None:
    from platform_ctl.deploy import deploy

    env.state_dir.mkdir(parents=True)
    Operation("scale-in", "trino_worker", 2, 1, [], ["trino-worker2"], completed=["drain"]).save(env.state_dir)
    with pytest.raises(PlatformCtlError) as err:
        deploy(env)
    assert err.value.message == (
        f"an interrupted `scale-in trino_worker: 2 → 1 hosts (remove trino-worker2)` (started "
        f"{pending_operation(env.state_dir).started}) is not finished: run `platform-ctl scale-in local trino_worker` "  # type: ignore[union-attr]
        "to finish it, then deploy; nothing was changed")
    assert not (env.state_dir / "deploy.json").exists()

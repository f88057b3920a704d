"""Which phases a deploy runs: everything after a finished run, the rest after a stopped one."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_ctl.deploy import PHASES, PhaseState, plan_phases
from platform_ctl.errors import PlatformCtlError


@pytest.fixture
def state(tmp_path: Path) -> PhaseState:
    return PhaseState(tmp_path / "deploy.json")


def test_a_first_deploy_runs_every_phase(state: PhaseState) -> None:
    assert plan_phases(state, "d1", None) == (list(PHASES), None)


def test_a_stopped_deploy_resumes_at_its_first_incomplete_phase(state: PhaseState, tmp_path: Path) -> None:
    state.start("d1", keep=[])
    for phase in ("prepare", "infrastructure", "inventory", "connect"):
        state.done(phase)
    reread = PhaseState(tmp_path / "deploy.json")  # as the next process sees it
    todo, resumed = plan_phases(reread, "d1", None)
    assert resumed == "base"
    assert todo == [p for p in PHASES if p not in ("prepare", "infrastructure", "inventory", "connect")]


def test_a_finished_deploy_runs_every_phase_again(state: PhaseState) -> None:
    state.start("d1", keep=[])
    for phase in PHASES:
        state.done(phase)
    state.finish()
    assert plan_phases(state, "d1", None) == (list(PHASES), None)


def test_a_changed_spec_starts_over(state: PhaseState) -> None:
    state.start("d1", keep=[])
    state.done("infrastructure")
    assert plan_phases(state, "d2", None) == (list(PHASES), None)


def test_from_forces_a_start_phase(state: PhaseState) -> None:
    todo, resumed = plan_phases(state, "d1", "base")
    assert resumed == "base"
    assert todo[0] == "base"


def test_from_an_unknown_phase_names_the_allowed_ones(state: PhaseState) -> None:
    with pytest.raises(PlatformCtlError, match="--from nope: no such phase; allowed: prepare, infrastructure"):
        plan_phases(state, "d1", "nope")


def test_to_stops_after_a_phase_and_the_next_deploy_goes_on_from_there(state: PhaseState, tmp_path: Path) -> None:
    todo, resumed = plan_phases(state, "d1", None, "connect")
    assert (todo, resumed) == (["prepare", "infrastructure", "inventory", "connect"], None)
    state.start("d1", keep=[])
    for phase in todo:
        state.done(phase)
    todo, resumed = plan_phases(PhaseState(tmp_path / "deploy.json"), "d1", None)
    assert resumed == "base"
    assert todo == list(PHASES[PHASES.index("base"):])
    with pytest.raises(PlatformCtlError, match="--to inventory: this deploy starts at base, after it"):
        plan_phases(PhaseState(tmp_path / "deploy.json"), "d1", None, "inventory")
    with pytest.raises(PlatformCtlError, match="--to nope: no such phase; allowed: prepare, infrastructure"):
        plan_phases(state, "d1", None, "nope")

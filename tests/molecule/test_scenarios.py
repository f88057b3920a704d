"""Every Molecule scenario under molecule/ passes `molecule test` (converge, idempotence, verify).

The scenarios start as soon as collection ends (conftest.py here), longest first, one at a time
(PLATFORM_CTL_MOLECULE_JOBS) beside the unit, integration and end-to-end tests and two at a time once
those are done (PLATFORM_CTL_MOLECULE_TAIL_JOBS). They share
nothing with those tests (their own instances, networks 10.201.x, ephemeral directories). These
tests are collected last and each waits for its own scenario, so a test's duration is its wait, not
its scenario's run (a test's captured output has the run time).
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from platform_ctl.catalogue import SHARED_ROLES
from tests.scenarios import roles_converged, scenarios

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = scenarios()

pytestmark = pytest.mark.molecule


def test_every_role_is_converged_by_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir() and p.name not in SHARED_ROLES)
    assert roles, "no roles found"
    missing = set(roles) - set(roles_converged())
    assert not missing, f"roles no Molecule scenario converges and tests: {sorted(missing)}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, scenario_runs: dict[str, Future[Any]]):
    outcome = scenario_runs[scenario].result()
    print(f"molecule test -s {scenario}: {outcome.seconds:.0f}s")
    assert outcome.returncode == 0, f"molecule test -s {scenario} failed:\n{outcome.output[-6000:]}"
    assert "idempotence" in outcome.output.lower()

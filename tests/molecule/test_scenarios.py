"""Every Molecule scenario under molecule/ passes `molecule test` (converge, idempotence, verify).

The scenarios start as soon as collection ends (conftest.py here), two at a time
(PLATFORM_CTL_MOLECULE_JOBS, default 2), longest first, and run beside the unit and integration
tests: those leave part of this machine's two cores idle (a deploy waits on its hosts, OpenTofu on
the emulator), and the scenarios share nothing with them (their own instances, networks 10.201.x,
ephemeral directories). Each test here waits for its own scenario and reports it,
so a test's duration is its wait, not its scenario's run (a test's captured output has the run time).
The end-to-end suite starts after the last of these tests, so no scenario runs beside its timed
windows.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))

pytestmark = pytest.mark.molecule


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert roles, "no roles found"
    assert set(roles) <= set(SCENARIOS), f"roles without a Molecule scenario: {set(roles) - set(SCENARIOS)}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, scenario_runs: dict[str, Future[Any]]):
    outcome = scenario_runs[scenario].result()
    print(f"molecule test -s {scenario}: {outcome.seconds:.0f}s")
    assert outcome.returncode == 0, f"molecule test -s {scenario} failed:\n{outcome.output[-6000:]}"
    assert "idempotence" in outcome.output.lower()

"""Every Molecule scenario under molecule/ passes `molecule test` (converge, idempotence, verify).

The scenarios run two at a time (PLATFORM_CTL_MOLECULE_JOBS, default 2), longest first: one
scenario leaves a good part of this machine's two cores idle while it waits on its containers, and
two scenarios share nothing (their own instances, network, subnet and ephemeral directory). The
first test starts them all; each test then waits for its own scenario and reports it, so a test's
duration is its wait, not its scenario's run (a test's captured output has the run time).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))
#: Longest first (as measured alone on the CI machine), so that the lanes end about together.
LONGEST_FIRST = ["trino", "postgresql", "minio", "prometheus", "docker", "node_exporter", "base", "grafana"]
JOBS = int(os.environ.get("PLATFORM_CTL_MOLECULE_JOBS", "2"))

pytestmark = pytest.mark.molecule


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float


def _molecule_test(scenario: str, ephemeral: Path) -> Outcome:
    # A fresh ephemeral directory (instance state, inventory, keys, volume files): the scenario's
    # sequence starts at create (.config/molecule/config.yml), whatever an interrupted run left.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0", "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral)}
    started = time.monotonic()
    try:
        done = subprocess.run(["molecule", "test", "-s", scenario], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired as expired:
        return Outcome(-1, f"timed out after {expired.timeout}s:\n{expired.stdout or ''}{expired.stderr or ''}",
                       time.monotonic() - started)
    return Outcome(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


@pytest.fixture(scope="module")
def scenario_runs(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Outcome]]]:
    """Start the scenarios of the selected tests; their outcomes, by scenario."""
    selected = {item.callspec.params["scenario"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_molecule_scenario" and hasattr(item, "callspec")}
    order = sorted(selected, key=lambda s: LONGEST_FIRST.index(s) if s in LONGEST_FIRST else -1)
    pool = ThreadPoolExecutor(max_workers=JOBS, thread_name_prefix="molecule")
    try:
        yield {s: pool.submit(_molecule_test, s, tmp_path_factory.mktemp(f"molecule-{s}")) for s in order}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert roles, "no roles found"
    assert set(roles) <= set(SCENARIOS), f"roles without a Molecule scenario: {set(roles) - set(SCENARIOS)}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, scenario_runs: dict[str, Future[Outcome]]):
    outcome = scenario_runs[scenario].result()
    print(f"molecule test -s {scenario}: {outcome.seconds:.0f}s")
    assert outcome.returncode == 0, f"molecule test -s {scenario} failed:\n{outcome.output[-6000:]}"
    assert "idempotence" in outcome.output.lower()

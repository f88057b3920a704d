"""Start the selected Molecule scenarios when collection ends, so that they run beside the other
tests (unit, integration, end-to-end); test_scenarios.py, collected last, waits for each one.

Two scenarios at a time beside the unit and integration tests, which leave part of the two cores
idle; one at a time from the first end-to-end test on: the end-to-end deploy and the tests after it
are the suite's longest chain, and one scenario beside them leaves them a core.

A session that ends early (a failure with -x, Ctrl-C) stops the scenarios still running and drops
those not started: their instances stay until `tests/leftovers.py` (run by scripts/test.sh before
pytest) removes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Longest first (as measured alone on the CI machine), so that the lanes end about together.
LONGEST_FIRST = ["trino", "postgresql", "minio", "prometheus", "docker", "node_exporter", "base", "grafana"]
JOBS = int(os.environ.get("PLATFORM_CTL_MOLECULE_JOBS", "2"))
#: Scenarios at a time once the end-to-end tests have started.
JOBS_BESIDE_E2E = int(os.environ.get("PLATFORM_CTL_MOLECULE_JOBS_BESIDE_E2E", "1"))
#: What a single scenario may take before it counts as hung.
TIMEOUT_S = 2400


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float


@dataclass(eq=False)  # a registered plugin: identity, not field equality
class ScenarioRuns:
    """The scenarios' pool, their outcomes by scenario, and the `molecule test` processes running."""

    pool: ThreadPoolExecutor
    #: How many scenarios may run at once (the pool has JOBS threads; narrow() lowers this).
    lanes: int = JOBS
    outcomes: dict[str, Future[Outcome]] = field(default_factory=dict)
    running: set[subprocess.Popen[str]] = field(default_factory=set)
    lock: threading.Condition = field(default_factory=threading.Condition)
    stopping: bool = False

    def narrow(self, lanes: int) -> None:
        """From now on start a scenario only while fewer than ``lanes`` run (those running go on)."""
        with self.lock:
            self.lanes = max(1, min(self.lanes, lanes))

    def molecule_test(self, scenario: str, ephemeral: Path) -> Outcome:
        # A fresh ephemeral directory (instance state, inventory, keys, volume files): the scenario's
        # sequence starts at create (.config/molecule/config.yml), whatever an interrupted run left.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0", "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral)}
        with self.lock:
            self.lock.wait_for(lambda: self.stopping or len(self.running) < self.lanes)
            if self.stopping:
                return Outcome(-1, "not run: the session ended first", 0.0)
            started = time.monotonic()
            proc = subprocess.Popen(["molecule", "test", "-s", scenario], cwd=REPO, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.running.add(proc)
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            return Outcome(-1, f"timed out after {TIMEOUT_S}s:\n{output}", time.monotonic() - started)
        finally:
            with self.lock:
                self.running.discard(proc)
                self.lock.notify_all()
        return Outcome(proc.returncode, output, time.monotonic() - started)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.running:
                proc.terminate()
            self.lock.notify_all()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        # A registered plugin sees every test; a conftest hook would see only this directory's.
        if nodeid.startswith("tests/e2e/"):
            self.narrow(JOBS_BESIDE_E2E)


SCENARIO_RUNS = pytest.StashKey[ScenarioRuns]()


def pytest_collection_finish(session: pytest.Session) -> None:
    selected = {item.callspec.params["scenario"] for item in session.items
                if getattr(item, "originalname", "") == "test_molecule_scenario" and hasattr(item, "callspec")}
    if not selected or session.config.option.collectonly:
        return
    order = sorted(selected, key=lambda s: LONGEST_FIRST.index(s) if s in LONGEST_FIRST else -1)
    runs = ScenarioRuns(ThreadPoolExecutor(max_workers=JOBS, thread_name_prefix="molecule"))
    tmp = session.config._tmp_path_factory  # type: ignore[attr-defined]  # pytest's own, set up by now
    for scenario in order:
        runs.outcomes[scenario] = runs.pool.submit(runs.molecule_test, scenario, tmp.mktemp(f"molecule-{scenario}"))
    session.config.stash[SCENARIO_RUNS] = runs
    session.config.pluginmanager.register(runs, "molecule-scenario-runs")


def pytest_sessionfinish(session: pytest.Session) -> None:
    runs = session.config.stash.get(SCENARIO_RUNS, None)
    if runs is not None:
        runs.stop()


@pytest.fixture(scope="module")
def scenario_runs(request: pytest.FixtureRequest) -> dict[str, Future[Outcome]]:
    """The outcomes of the scenarios started at the end of collection, by scenario."""
    runs = request.config.stash.get(SCENARIO_RUNS, None)
    assert runs is not None, "no Molecule scenario was started: is tests/molecule/conftest.py loaded?"
    return runs.outcomes

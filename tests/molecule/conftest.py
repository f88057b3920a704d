"""Start the selected Molecule scenarios when collection ends, so that they run beside the other
tests (unit, integration, end-to-end); test_scenarios.py, collected last, waits for each one.

One scenario at a time while other tests run (PLATFORM_CTL_MOLECULE_JOBS): the integration tests,
the end-to-end deploy and the tests after it are the suite's longest chain, and a second scenario
beside them slows it (the rehearsal deploy took 880 s beside two scenarios, 541 s alone). Once the
other tests are done (the first Molecule test starts), the scenarios still waiting run two at a time
(PLATFORM_CTL_MOLECULE_TAIL_JOBS): one scenario alone keeps about one core busy, and the other one
would idle.

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
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.timing import record

REPO = Path(__file__).resolve().parents[2]
#: Longest first (as measured alone on the CI machine), so that with more than one lane they end
#: about together.
LONGEST_FIRST = ["monitoring", "apps", "trino", "docker", "postgresql", "minio", "base"]
#: Scenarios at a time while other tests run, and once they are done.
JOBS = int(os.environ.get("PLATFORM_CTL_MOLECULE_JOBS", "1"))
TAIL_JOBS = max(JOBS, int(os.environ.get("PLATFORM_CTL_MOLECULE_TAIL_JOBS", "2")))
#: Molecule's controller runs at this niceness and its instances with these CPU shares (Docker's
#: default: 1024): when the end-to-end chain (the suite's longest) wants the two cores, it gets about
#: four fifths of them, and the scenarios take what it leaves (molecule/shared/bootstrap.yml). Not
#: less: a role's start-up waits (a JVM's, say) must still end within their timeouts.
NICENESS = 10
CPU_SHARES = "256"
#: What a single scenario may take before it counts as hung.
TIMEOUT_S = 2400


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float


@dataclass
class ScenarioRuns:
    """The scenarios waiting (with their outcomes to be), their outcomes by scenario, the lanes that
    run them and the `molecule test` processes running."""

    waiting: deque[tuple[str, Path, Future[Outcome]]] = field(default_factory=deque)
    outcomes: dict[str, Future[Outcome]] = field(default_factory=dict)
    lanes: list[threading.Thread] = field(default_factory=list)
    #: Set when the other tests are done: the tail lanes start then.
    others_done: threading.Event = field(default_factory=threading.Event)
    running: set[subprocess.Popen[str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False

    def start(self, jobs: int, tail_jobs: int) -> None:
        for lane in range(tail_jobs):
            thread = threading.Thread(target=self.lane, args=(lane >= jobs,), name=f"molecule-{lane}", daemon=True)
            thread.start()
            self.lanes.append(thread)

    def lane(self, tail: bool) -> None:
        """Run waiting scenarios one after the other (a tail lane first waits for the other tests)."""
        if tail:
            self.others_done.wait()
        while True:
            with self.lock:
                if self.stopping or not self.waiting:
                    return
                scenario, ephemeral, outcome = self.waiting.popleft()
            outcome.set_running_or_notify_cancel()
            try:
                outcome.set_result(self.molecule_test(scenario, ephemeral))
            except BaseException as error:  # the waiting test reports it
                outcome.set_exception(error)

    def molecule_test(self, scenario: str, ephemeral: Path) -> Outcome:
        # A fresh ephemeral directory (instance state, inventory, keys, volume files): the scenario's
        # sequence starts at create (.config/molecule/config.yml), whatever an interrupted run left.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0", "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
               "PLATFORM_CTL_MOLECULE_CPU_SHARES": os.environ.get("PLATFORM_CTL_MOLECULE_CPU_SHARES", CPU_SHARES),
               # The verifier's pytest reads this repository's configuration: it records nothing of its own.
               "PLATFORM_CTL_TIMINGS": ""}
        started, began = time.monotonic(), time.time()
        with self.lock:
            if self.stopping:
                return Outcome(-1, "not run: the session ended first", 0.0)
            # A stdin of its own: the session's is shared by every test's subprocess, and beside the
            # e2e tests (which SIGKILL commands mid-run, ssh among their children) it was left
            # non-blocking, which ansible-core refuses ("requires blocking IO").
            proc = subprocess.Popen(["nice", "-n", str(NICENESS), "molecule", "test", "-s", scenario], cwd=REPO,
                                    env=env, text=True,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.running.add(proc)
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            output = f"timed out after {TIMEOUT_S}s:\n{output}"
        finally:
            with self.lock:
                self.running.discard(proc)
        record("molecule", scenario, began, time.time(), outcome="passed" if proc.returncode == 0 else "failed")
        return Outcome(proc.returncode, output, time.monotonic() - started)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.running:
                proc.terminate()
            for _, _, outcome in self.waiting:
                outcome.cancel()
            self.waiting.clear()
        self.others_done.set()
        for thread in self.lanes:
            thread.join()


SCENARIO_RUNS = pytest.StashKey[ScenarioRuns]()


def pytest_collection_finish(session: pytest.Session) -> None:
    selected = {item.callspec.params["scenario"] for item in session.items
                if getattr(item, "originalname", "") == "test_molecule_scenario" and hasattr(item, "callspec")}
    if not selected or session.config.option.collectonly:
        return
    order = sorted(selected, key=lambda s: LONGEST_FIRST.index(s) if s in LONGEST_FIRST else -1)
    runs = ScenarioRuns()
    tmp = session.config._tmp_path_factory  # type: ignore[attr-defined]  # pytest's own, set up by now
    for scenario in order:
        runs.outcomes[scenario] = Future()
        runs.waiting.append((scenario, tmp.mktemp(f"molecule-{scenario}"), runs.outcomes[scenario]))
    session.config.stash[SCENARIO_RUNS] = runs
    runs.start(JOBS, TAIL_JOBS)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The first Molecule test to start means that every other test is done (they are collected
    first): the tail lanes may start."""
    runs = item.config.stash.get(SCENARIO_RUNS, None)
    if runs is not None:
        runs.others_done.set()


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

"""One environment deployed once per test session through the production path, shared by every
end-to-end test.

The environment `e2e` is a ``digitalocean`` spec (the shipped `local` spec's hosts) in a temporary
project, whose API endpoint is the DigitalOcean API emulator run with ``--materialize`` (e2e_env.py):
OpenTofu and the provider create it, cloud-init's user data is played on each droplet, the same
roles converge it, verify closes the deploy. Before it, ``deploy --check`` plans it; its first deploy
is killed in the middle of the base play and run again: that is the kill-and-resume scenario, and it
leaves the environment deployed for the other tests.

The deploy starts when collection ends (nothing else of the session needs the memory its droplets
take), in a thread beside the unit and integration tests; the first test that needs the environment
waits for it.

To work on one end-to-end test, ``PLATFORM_CTL_E2E_KEEP=DIR`` deploys the environment into DIR once
and keeps it (and its emulator) after the session; the next session with the same DIR reuses it.
``python -m do_emulator --cleanup --name e2e`` removes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from e2e_env import EMULATOR, ENV, REPO, Deployed, Run, deploy_and_kill_mid_play, make_project, platform_ctl

from tests.integration.do_harness import EmulatorProcess, start_emulator, stop_emulator
from tests.timing import Span


@dataclass
class SessionDeploy:
    """The session's emulator and deploy, started at the end of collection."""

    directory: Path
    emulator: EmulatorProcess | None = None
    future: Future[Deployed] | None = None
    #: Whether the `deployed` fixture took the environment (its teardown then destroys it).
    taken: bool = False

    def __post_init__(self) -> None:
        self.project = self.directory / "project"
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e2e-deploy")

    def start(self) -> Future[Deployed]:
        if self.future is None:
            self.future = self.pool.submit(self._deploy)
        return self.future

    @property
    def kept(self) -> bool:
        return bool(os.environ.get(KEEP))

    def _deploy(self) -> Deployed:
        saved = self.directory / "deployed.json"
        if self.kept and saved.exists():
            data = json.loads(saved.read_text())
            with urllib.request.urlopen(f"{data['api']}/_emulator/state", timeout=10):
                pass  # its emulator still answers
            runs = {key: Run(**data[key]) for key in ("checked", "killed", "resumed")}
            return Deployed(**{**data, **runs, "project": Path(data["project"])})
        deployed = self._deploy_new()
        if self.kept and deployed.resumed.rc == 0:
            saved.write_text(json.dumps({**asdict(deployed), "project": str(deployed.project)}))
        return deployed

    def _deploy_new(self) -> Deployed:
        # A session that crashed before its teardown left droplets holding loop devices and memory.
        subprocess.run([sys.executable, "-m", "do_emulator", "--cleanup", "--name", EMULATOR], cwd=REPO,
                       capture_output=True, check=False, timeout=600)
        with Span("deploy", f"{ENV}: emulator started"):
            emulator_dir = self.directory / "emulator"
            emulator_dir.mkdir(exist_ok=True)
            shutil.rmtree(self.project, ignore_errors=True)  # a kept directory's failed first attempt
            self.emulator = start_emulator(emulator_dir, EMULATOR, materialize=True)
        spec = make_project(self.project, self.emulator.url)
        with Span("deploy", f"{ENV}: deploy --check (plan, nothing created)"):
            checked = platform_ctl(self.project, "deploy", ENV, "--check")
            check_writes = [r for r in self.emulator.requests() if r["method"] != "GET"]
        with Span("deploy", f"{ENV}: deploy killed in the base play"):
            killed = deploy_and_kill_mid_play(self.project)
        with Span("deploy", f"{ENV}: deploy resumed to the end"):
            resumed = platform_ctl(self.project, "deploy", ENV, "--json")
        return Deployed(self.project, ENV, self.emulator.url, checked, killed, resumed, spec, check_writes)

    def take(self) -> Deployed:
        self.taken = True
        return self.start().result()

    def teardown(self) -> None:
        """Destroy what is left of the environment, then stop the emulator and remove what it made."""
        if self.kept:
            return
        if (self.project / ".platform" / ENV).exists():
            platform_ctl(self.project, "destroy", ENV, "--with-data", "--confirm", ENV)
        if self.emulator is not None:
            stop_emulator(self.emulator, materialized=True)
            self.emulator = None

    def pytest_sessionfinish(self) -> None:
        # Still deploying when the session ends early (a failure with -x, Ctrl-C): let it end; then
        # `deployed`'s teardown did not run, so tear down here.
        self.pool.shutdown(wait=True)
        if not self.taken:
            self.teardown()


SESSION_DEPLOY = pytest.StashKey[SessionDeploy]()
#: A directory to deploy the environment into once and keep it (see the module's docstring).
KEEP = "PLATFORM_CTL_E2E_KEEP"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end modules that need the shared environment gone (RUNS_LAST) right after the others."""
    e2e = [i for i, item in enumerate(items) if item.nodeid.startswith("tests/e2e/")]
    if not e2e:
        return
    last = [item for item in items if item.nodeid.startswith("tests/e2e/") and getattr(item.module, "RUNS_LAST", False)]
    rest = [item for item in items if item not in last]
    at = max(i for i, item in enumerate(rest) if item.nodeid.startswith("tests/e2e/")) + 1 if len(last) < len(e2e) \
        else e2e[0]
    items[:] = rest[:at] + last + rest[at:]


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("deployed" in getattr(item, "fixturenames", ()) for item in session.items):
        tmp = session.config._tmp_path_factory  # type: ignore[attr-defined]  # pytest's own, set up by now
        kept = os.environ.get(KEEP)
        if kept:
            Path(kept).mkdir(parents=True, exist_ok=True)
        early = SessionDeploy(Path(kept) if kept else tmp.mktemp("e2e"))
        session.config.stash[SESSION_DEPLOY] = early
        session.config.pluginmanager.register(early, "e2e-session-deploy")
        early.start()


#: What each end-to-end test printed (its measured windows, counts, durations), by test.
FIGURES: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.nodeid.startswith("tests/e2e/") and report.capstdout.strip():
        FIGURES[report.nodeid.split("::")[-1]] = report.capstdout.strip()


def pytest_terminal_summary(terminalreporter) -> None:
    """The figures the end-to-end tests measured, passed or not (pytest shows a passed test's output
    nowhere else): CI's log then holds the restart windows and outages of every run."""
    if not FIGURES:
        return
    terminalreporter.write_sep("=", "figures measured by the end-to-end tests")
    for test, said in FIGURES.items():
        terminalreporter.write_line(f"{test}:")
        for line in said.splitlines():
            terminalreporter.write_line(f"  {line}")


@pytest.fixture(scope="session")
def deployed(request: pytest.FixtureRequest) -> Deployed:
    early = request.config.stash[SESSION_DEPLOY]
    try:
        environment = early.take()
        assert environment.resumed.rc == 0, (f"resumed deploy failed:\n{environment.resumed.stdout[-3000:]}\n"
                                             f"{environment.resumed.stderr[-3000:]}")
        yield environment
    finally:
        # The destroy test normally leaves nothing; after a failure (here or in a test) clean up anyway.
        early.teardown()


@pytest.fixture(scope="module")
def cluster(deployed: Deployed):
    """Clients of the deployed environment's Trino, MinIO and PostgreSQL."""
    from e2e_support import Cluster

    return Cluster(deployed)


"""One local environment deployed once per test session and shared by every end-to-end test.

The environment is a copy of the shipped `local` spec named `e2e` (its own containers, network and
VPC range) in a temporary project, so the suite never touches a developer's `local` environment.
Its first deploy is killed in the middle of the base play and run again: that is the
kill-and-resume scenario, and it leaves the environment deployed for the other tests.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e_env import ENV, Deployed, Run, deploy_and_kill_mid_play, make_project, platform_ctl

from tests.timing import Span


def _leftovers(env: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=platform-ctl.env={env}"],
                          capture_output=True, text=True, check=True).stdout.split()


def _deploy(project: Path) -> tuple[Run, Run]:
    """The session's deploy: killed mid-play, then run again to the end."""
    if _leftovers(ENV):
        # A session that crashed before its teardown: its containers still hold their loop devices.
        platform_ctl(project, "destroy", ENV, "--with-data")
    with Span("deploy", f"{ENV}: deploy killed in the base play"):
        killed = deploy_and_kill_mid_play(project)
    with Span("deploy", f"{ENV}: deploy resumed to the end"):
        return killed, platform_ctl(project, "deploy", ENV, "--json")


class EarlyDeploy:
    """The session's deploy, started when the first end-to-end test starts instead of at the first
    test that needs it (after the bad-spec checks).

    By then the integration tests are done, and with them the emulator's rehearsal, whose droplets
    and this environment's would not both fit in the machine's memory budget. The Molecule
    scenarios run from the end of collection (tests/molecule/conftest.py), one at a time beside
    these tests. Registered as a plugin (from when a Molecule test started it); its trigger is now
    in this directory, where a conftest hook would see it too.
    """

    def __init__(self, project: Path) -> None:
        self.project = project
        self.spec = make_project(project)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="e2e-deploy")
        self.future: Future[tuple[Run, Run]] | None = None
        #: Whether `deployed` took this environment (its teardown then destroys it).
        self.taken = False

    def start(self) -> Future[tuple[Run, Run]]:
        if self.future is None:
            self.future = self.pool.submit(_deploy, self.project)
        return self.future

    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        if nodeid.startswith("tests/e2e/"):
            self.start()

    def take(self) -> tuple[Run, Run]:
        self.taken = True
        return self.start().result()

    def pytest_sessionfinish(self) -> None:
        # Still deploying when the session ends early (a failure with -x, Ctrl-C): let it end, then
        # `deployed`'s teardown did not run, so destroy here.
        self.pool.shutdown(wait=True)
        if self.future is not None and not self.taken and (self.project / ".platform" / ENV).exists():
            platform_ctl(self.project, "destroy", ENV, "--with-data")


EARLY_DEPLOY = pytest.StashKey[EarlyDeploy]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("deployed" in getattr(item, "fixturenames", ()) for item in session.items):
        tmp = session.config._tmp_path_factory  # type: ignore[attr-defined]  # pytest's own, set up by now
        early = EarlyDeploy(tmp.mktemp("project"))
        session.config.stash[EARLY_DEPLOY] = early
        session.config.pluginmanager.register(early, "e2e-early-deploy")


@pytest.fixture(scope="session")
def deployed(request: pytest.FixtureRequest) -> Deployed:
    early = request.config.stash[EARLY_DEPLOY]
    project = early.project
    try:
        killed, resumed = early.take()
        assert resumed.rc == 0, f"resumed deploy failed:\n{resumed.stdout[-3000:]}\n{resumed.stderr[-3000:]}"
        yield Deployed(project, ENV, killed, resumed, early.spec)
    finally:
        # The destroy test normally leaves nothing; after a failure (here or in a test) clean up anyway.
        if (project / ".platform" / ENV).exists() or _leftovers(ENV):
            platform_ctl(project, "destroy", ENV, "--with-data")


@pytest.fixture(scope="module")
def cluster(deployed: Deployed):
    """Clients of the deployed environment's Trino, MinIO and PostgreSQL (test_minio_faults.py has its own)."""
    from e2e_support import Cluster

    return Cluster(deployed)

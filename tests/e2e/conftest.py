"""One local environment deployed once per test session and shared by every end-to-end test.

The environment is a copy of the shipped `local` spec named `e2e` (its own containers, network and
VPC range) in a temporary project, so the suite never touches a developer's `local` environment.
Its first deploy is killed in the middle of the base play and run again: that is the
kill-and-resume scenario, and it leaves the environment deployed for the other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "platform_ctl.cli"]
ENV = "e2e"
VPC = "10.43.0.0/24"


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    events: list[dict] = field(default_factory=list)


@dataclass
class Deployed:
    project: Path
    env: str
    killed: Run
    resumed: Run
    spec: dict

    def cli(self, *args: str, timeout: float = 1800) -> Run:
        return platform_ctl(self.project, *args, timeout=timeout)

    @property
    def hosts(self) -> list[str]:
        """The hosts of the spec the environment was deployed with."""
        return hosts_of(self.spec)

    def hosts_now(self) -> list[str]:
        """The hosts of the spec on disk (scale-out and scale-in rewrite it)."""
        return hosts_of(yaml.safe_load((self.project / "inventories" / self.env / "platform.yml").read_text()))


def hosts_of(spec: dict) -> list[str]:
    names = []
    prefixes = {"trino_coordinator": "trino-coord", "trino_worker": "trino-worker", "minio": "minio",
                "postgres": "pg", "monitoring": "mon", "apps": "apps"}
    for group, g in spec["groups"].items():
        prefix = g.get("name_prefix") or prefixes[group]
        names += [f"{prefix}{i}" for i in range(1, g["count"] + 1)]
    return names


def _environ(project: Path) -> dict[str, str]:
    return {**os.environ, "PLATFORM_PROJECT_DIR": str(project),
            "PLATFORM_CONFIG_DIR": str(project / ".config"), "COLUMNS": "200"}


def _events(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def platform_ctl(project: Path, *args: str, timeout: float = 1800) -> Run:
    started = time.monotonic()
    # No terminal on stdin: a command that would ask for confirmation refuses instead.
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=_environ(project),
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    if "--json" in args:
        run.events = _events(done.stdout)
    return run


def make_project(root: Path, env: str = ENV, vpc: str = VPC) -> dict:
    """A project with one environment copied from the shipped local spec."""
    spec = yaml.safe_load((REPO / "inventories/local/platform.yml").read_text())
    spec["name"] = env
    spec["vpc_cidr"] = vpc
    env_dir = root / "inventories" / env
    shutil.copytree(REPO / "inventories/local/group_vars", env_dir / "group_vars",
                    ignore=shutil.ignore_patterns("vault.yml"))
    (env_dir / "platform.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec


def run_and_kill(project: Path, args: tuple[str, ...], phase: str, results: int,
                 statuses: tuple[str, ...] = ("ok", "changed")) -> Run:
    """Run ``platform-ctl ARGS --json``; SIGKILL its process group at the ``results``-th host result
    of ``phase`` with one of ``statuses``."""
    started = time.monotonic()
    proc = subprocess.Popen([*CLI, *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_environ(project), start_new_session=True)
    lines = []
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event["phase"] == phase and event["kind"] == "host_result" and event["status"] in statuses:
            seen += 1
            if seen >= results:
                os.killpg(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=60)
    stderr = proc.stderr.read() if proc.stderr else ""
    run = Run(proc.returncode, "".join(lines), stderr, time.monotonic() - started)
    run.events = _events(run.stdout)
    return run


def deploy_and_kill_mid_play(project: Path) -> Run:
    """Start a deploy and SIGKILL it once the base play has changed things on several hosts."""
    return run_and_kill(project, ("deploy", ENV), "base", 5, ("changed",))


def _leftovers(env: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=platform-ctl.env={env}"],
                          capture_output=True, text=True, check=True).stdout.split()


def _deploy(project: Path) -> tuple[Run, Run]:
    """The session's deploy: killed mid-play, then run again to the end."""
    if _leftovers(ENV):
        # A session that crashed before its teardown: its containers still hold their loop devices.
        platform_ctl(project, "destroy", ENV, "--with-data")
    return deploy_and_kill_mid_play(project), platform_ctl(project, "deploy", ENV, "--json")


class EarlyDeploy:
    """The session's deploy, started when the first Molecule test starts (or else when `deployed`
    first asks for it), instead of at the first end-to-end test that needs it.

    By then the integration tests are done, and with them the emulator's rehearsal, whose droplets
    and this environment's would not both fit in the machine's memory budget; the Molecule
    scenarios (which run from the end of collection, tests/molecule/conftest.py) then share the two
    cores with this deploy instead of leaving part of them idle near their end. No end-to-end test
    starts before the last Molecule test, and `deployed` waits for this deploy. A plugin, not a
    conftest hook: conftest hooks only see their own directory's tests.
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
        if nodeid.startswith("tests/molecule/test_scenarios.py::test_molecule_scenario"):
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

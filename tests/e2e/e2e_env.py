"""The e2e environment's name, project and command helpers, shared by conftest.py and the test
modules (a module of its own: `from conftest import ...` gets whichever conftest.py pytest imported
last, and tests/molecule has one too).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def rotation_killed_then_resumed(deployed: Deployed, only: str, phase: str) -> Run:
    """``rotate-secrets --only ONLY --yes``, SIGKILLed at its first changed host result in ``phase``, then
    run again without --only (which finishes the interrupted rotation): that second run, succeeded."""
    killed = run_and_kill(deployed.project, ("rotate-secrets", deployed.env, "--only", only, "--yes"), phase, 1,
                          ("changed",))
    assert killed.rc == -9, killed.stdout[-2000:]
    resumed = deployed.cli("rotate-secrets", deployed.env, "--yes", "--json")
    assert resumed.rc == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return resumed


def skipped_steps(run: Run) -> list[str]:
    """The steps a resumed run skipped (the interrupted run had completed them)."""
    return [e["phase"] for e in run.events if e["kind"] == "phase_skip"]


def restarts_reported(run: Run, component: str) -> list[dict]:
    """What the run reported of ``component``'s restarts (unavailable_s, nodes), in order."""
    return [e["data"] for e in run.events if e["kind"] == "message" and e["data"].get("component") == component]


def deploy_and_kill_mid_play(project: Path) -> Run:
    """Start a deploy and SIGKILL it once the base play has changed things on several hosts."""
    return run_and_kill(project, ("deploy", ENV), "base", 5, ("changed",))

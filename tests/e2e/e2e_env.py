"""The e2e environment: its spec, project and command helpers, shared by conftest.py and the test modules
(a module of its own: `from conftest import ...` gets whichever conftest.py pytest imported last, and
tests/molecule has one too).

The environment is deployed as a production user deploys one: a ``digitalocean`` spec whose
``api_endpoint`` is the project's DigitalOcean API emulator run with ``--materialize``, so OpenTofu
and the DigitalOcean provider create the VPC, firewalls, volumes and droplets, each droplet becomes a
local systemd container that plays its cloud-init user data, and the same roles converge it over SSH.
Its groups, sizes and role settings are the shipped ``local`` environment's (whose group_vars declare
what a container cannot do, as they do for a materialised droplet).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration import do_harness

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "platform_ctl.cli"]
ENV = "e2e"
VPC = "10.43.0.0/24"
#: The materialising emulator's name: its droplet containers are do-<name>-<droplet id>.
EMULATOR = "e2e"
#: The token the emulator accepts (tests/integration/do_harness.py starts it), accepted by nothing else.
TOKEN = do_harness.TOKEN


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
    #: The emulator's API origin (http://127.0.0.1:PORT).
    api: str
    #: `deploy --check` before anything existed, the deploy killed in its base play, and its resumption.
    checked: Run
    killed: Run
    resumed: Run
    spec: dict
    #: The emulator's write requests (not GET) made by `deploy --check`: none is expected.
    check_writes: list[dict] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 1800) -> Run:
        return platform_ctl(self.project, *args, timeout=timeout)

    @property
    def state(self) -> Path:
        return self.project / ".platform" / self.env

    @property
    def hosts(self) -> list[str]:
        """The hosts of the spec the environment was deployed with."""
        return hosts_of(self.spec)

    def hosts_now(self) -> list[str]:
        """The hosts of the spec on disk (scale-out and scale-in rewrite it)."""
        return hosts_of(yaml.safe_load((self.project / "inventories" / self.env / "platform.yml").read_text()))

    def droplets(self) -> dict[str, dict[str, Any]]:
        """Host name -> its droplet as OpenTofu last reported it (id, addresses, volumes)."""
        return dict(json.loads((self.state / "tofu" / "outputs.json").read_text())["hosts"])

    def addresses(self) -> dict[str, str]:
        """Host name -> private address (scale-out and scale-in change the hosts)."""
        return {name: d["private_ipv4"] for name, d in self.droplets().items()}

    def container(self, host: str) -> str:
        """The local container the emulator materialised ``host``'s droplet as."""
        return f"do-{EMULATOR}-{self.droplets()[host]['id']}"

    def exec(self, host: str, *argv: str, timeout: float = 300, stdin: bytes | None = None,
             check: bool = False) -> subprocess.CompletedProcess:
        """``argv`` as root on ``host`` (its container), text output unless ``stdin`` is bytes."""
        return subprocess.run(["docker", "exec", "-i", self.container(host), *argv], input=stdin,
                              capture_output=True, text=stdin is None, timeout=timeout, check=check)

    def api_request(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.api}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {TOKEN}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else {}

    def power(self, host: str, action: str, timeout: float = 240) -> None:
        """A droplet action through the DigitalOcean API (power_off, power_on), waited for until it completed."""
        droplet = self.droplets()[host]["id"]
        started = self.api_request("POST", f"/v2/droplets/{droplet}/actions", {"type": action})["action"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.api_request("GET", f"/v2/actions/{started['id']}")["action"]["status"]
            if status == "completed":
                return
            assert status == "in-progress", f"{action} of {host}: {status}"
            time.sleep(1)
        raise AssertionError(f"{action} of {host} did not complete within {timeout:.0f}s")


def hosts_of(spec: dict) -> list[str]:
    names = []
    prefixes = {"trino_coordinator": "trino-coord", "trino_worker": "trino-worker", "minio": "minio",
                "postgres": "pg", "monitoring": "mon", "apps": "apps"}
    for group, g in spec["groups"].items():
        prefix = g.get("name_prefix") or prefixes[group]
        names += [f"{prefix}{i}" for i in range(1, g["count"] + 1)]
    return names


def environ(project: Path) -> dict[str, str]:
    """The environment platform-ctl runs in: the project, its own config directory, the emulator's token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN_")}
    return {**env, "PLATFORM_PROJECT_DIR": str(project), "PLATFORM_CONFIG_DIR": str(project / ".config"),
            "DIGITALOCEAN_TOKEN": TOKEN, "COLUMNS": "200"}


def _events(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def platform_ctl(project: Path, *args: str, timeout: float = 1800) -> Run:
    started = time.monotonic()
    # No terminal on stdin: a command that would ask for confirmation refuses instead.
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=environ(project),
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    if "--json" in args:
        run.events = _events(done.stdout)
    return run


def make_project(root: Path, api: str, env: str = ENV, vpc: str = VPC) -> dict:
    """A project with one ``digitalocean`` environment: the shipped local spec's hosts against the emulator."""
    spec = yaml.safe_load((REPO / "inventories/local/platform.yml").read_text())
    spec.update(name=env, provider="digitalocean", region="fra1", vpc_cidr=vpc, api_endpoint=api)
    env_dir = root / "inventories" / env
    shutil.copytree(REPO / "inventories/local/group_vars", env_dir / "group_vars",
                    ignore=shutil.ignore_patterns("vault.yml"))
    (env_dir / "platform.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and every process group of its descendants, as a crash would end them.

    ansible-runner starts ansible-playbook in a session of its own (a pty), which a kill of the command's
    group alone leaves running: it would go on changing hosts beside the run that resumes.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    for group in dict.fromkeys(_group(p) for p in tree):
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def run_and_kill(project: Path, args: tuple[str, ...], phase: str, results: int,
                 statuses: tuple[str, ...] = ("ok", "changed")) -> Run:
    """Run ``platform-ctl ARGS --json``; SIGKILL its process group at the ``results``-th host result
    of ``phase`` with one of ``statuses``."""
    started = time.monotonic()
    proc = subprocess.Popen([*CLI, *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environ(project), start_new_session=True)
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
                _kill_tree(proc.pid)
                break
    proc.wait(timeout=60)
    stderr = proc.stderr.read() if proc.stderr else ""
    run = Run(proc.returncode, "".join(lines), stderr, time.monotonic() - started)
    run.events = _events(run.stdout)
    return run


def killed_then_resumed(deployed: Deployed, args: tuple[str, ...], kills: list[str]) -> list[Run]:
    """``platform-ctl ARGS --yes`` SIGKILLed at its first changed host result in ``kills[0]``; then, for each
    next phase of ``kills``, run again without ARGS' options (which finishes the interrupted run) and
    killed likewise there; then run to the end. Every run in order: the last one succeeded."""
    runs = []
    command = (*args, "--yes")
    for phase in kills:
        killed = run_and_kill(deployed.project, command, phase, 1, ("changed",))
        assert killed.rc == -9, f"not killed in {phase}:\n{killed.stdout[-2000:]}\n{killed.stderr[-2000:]}"
        runs.append(killed)
        command = (*args[:2], "--yes")
    resumed = deployed.cli(*command, "--json")
    assert resumed.rc == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return [*runs, resumed]


def rotation_killed_then_resumed(deployed: Deployed, only: str, phase: str) -> Run:
    """``rotate-secrets --only ONLY --yes``, SIGKILLed at its first changed host result in ``phase``, then
    run again without --only (which finishes the interrupted rotation): that second run, succeeded."""
    return killed_then_resumed(deployed, ("rotate-secrets", deployed.env, "--only", only), [phase])[-1]


def skipped_steps(run: Run) -> list[str]:
    """The steps a resumed run skipped (the interrupted run had completed them)."""
    return [e["phase"] for e in run.events if e["kind"] == "phase_skip"]


def restarts_reported(run: Run, component: str) -> list[dict]:
    """What the run reported of ``component``'s restarts (unavailable_s, nodes), in order."""
    return [e["data"] for e in run.events if e["kind"] == "message" and e["data"].get("component") == component]


def deploy_and_kill_mid_play(project: Path) -> Run:
    """Start a deploy and SIGKILL it once the base play has changed things on several hosts."""
    return run_and_kill(project, ("deploy", ENV), "base", 5, ("changed",))

"""Helpers of the tests that run OpenTofu and platform-ctl against the DigitalOcean API emulator.

The emulator is the one thing emulated (the API cannot be reached from here); OpenTofu, the
provider and platform-ctl are the real programs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "platform_ctl.cli"]
TOKEN = "emulator-test-token"


@dataclass
class EmulatorProcess:
    url: str
    proc: subprocess.Popen[str]
    name: str

    def state(self) -> dict[str, Any]:
        """The emulator's state, each collection (droplets, volumes, keys, ...) as a list."""
        with urllib.request.urlopen(f"{self.url}/_emulator/state", timeout=10) as answer:
            data = json.load(answer)
        return {name: list(items.values()) if isinstance(items, dict) else items for name, items in data.items()}

    def fault(self, **fault: Any) -> None:
        request = urllib.request.Request(f"{self.url}/_emulator/faults", data=json.dumps(fault).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def clear_faults(self) -> None:
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/_emulator/faults", method="DELETE"),
                                    timeout=10):
            pass

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_emulator/requests", timeout=10) as answer:
            data = json.load(answer)
        return list(data["requests"] if isinstance(data, dict) else data)


def start_emulator(directory: Path, name: str, materialize: bool = False) -> EmulatorProcess:
    """``python -m do_emulator`` on a free loopback port, as a user would start it."""
    port_file = directory / "port"
    args = [sys.executable, "-m", "do_emulator", "--listen", "127.0.0.1:0", "--token", TOKEN,
            "--state-file", str(directory / "state.json"), "--port-file", str(port_file), "--name", name]
    if materialize:
        args.append("--materialize")
    log = (directory / "emulator.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"emulator did not start: {(directory / 'emulator.log').read_text()[-2000:]}")
        time.sleep(0.1)
    text = port_file.read_text().strip()
    url = text if text.startswith("http") else f"http://127.0.0.1:{text}"
    return EmulatorProcess(url, proc, name)


def stop_emulator(emulator: EmulatorProcess, materialized: bool = False) -> None:
    emulator.proc.terminate()
    try:
        emulator.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        emulator.proc.kill()
    if materialized:
        subprocess.run([sys.executable, "-m", "do_emulator", "--cleanup", "--name", emulator.name],
                       cwd=REPO, check=False, timeout=300)


@dataclass
class Project:
    root: Path
    env: str

    @property
    def spec_path(self) -> Path:
        return self.root / "inventories" / self.env / "platform.yml"

    def spec(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.spec_path.read_text()))

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))

    def environ(self, token: str | None = TOKEN) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN_")}
        env.update({"PLATFORM_PROJECT_DIR": str(self.root), "PLATFORM_CONFIG_DIR": str(self.root / ".config"),
                    "COLUMNS": "200"})
        if token is not None:
            env["DIGITALOCEAN_TOKEN"] = token
        return env

    def cli(self, *args: str, token: str | None = TOKEN, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, env=self.environ(token),
                              timeout=timeout, check=False)


def do_spec(env: str, endpoint: str, vpc: str, **overrides: Any) -> dict[str, Any]:
    """A digitalocean spec of the smallest sizes each group accepts (they fit this machine)."""
    spec: dict[str, Any] = {
        "name": env,
        "provider": "digitalocean",
        "region": "fra1",
        "domain": "platform.internal",
        "vpc_cidr": vpc,
        "admin_cidrs": ["203.0.113.0/24"],
        "api_endpoint": endpoint,
        "allow_volume_deletion": False,
        "minio": {"parity": 2},
        "groups": {
            "trino_coordinator": {"count": 1, "size": "s-2vcpu-4gb"},
            "trino_worker": {"count": 1, "size": "s-2vcpu-4gb"},
            "minio": {"count": 4, "size": "s-1vcpu-1gb", "volume_gb": 10},
            "postgres": {"count": 1, "size": "s-1vcpu-2gb", "volume_gb": 10},
            "monitoring": {"count": 1, "size": "s-1vcpu-2gb"},
        },
    }
    spec.update(overrides)
    return spec


def make_project(root: Path, spec: dict[str, Any]) -> Project:
    """A project with one digitalocean environment; role settings copied from the shipped `local` one.

    The `local` settings declare what a container cannot do (read-only /proc/sys, the machine's
    open-file limit); materialised droplets are such containers too.
    """
    env_dir = root / "inventories" / spec["name"]
    shutil.copytree(REPO / "inventories/local/group_vars", env_dir / "group_vars",
                    ignore=shutil.ignore_patterns("vault.yml"))
    project = Project(root, spec["name"])
    project.write_spec(spec)
    return project

"""`verify`: testinfra checks shipped in ``platform_ctl/checks/``, run against the environment's hosts.

The checks run in a pytest subprocess over real SSH (testinfra's ansible backend reads the
generated inventory); a small plugin records each result per host for the pass/fail table. The
checks of different hosts run side by side (pytest-xdist, ``WORKERS`` processes): most of a check's
time is an SSH round trip or a wait on one host (Prometheus' next scrape, say), which the others
need not queue behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from platform_ctl.errors import PreflightError
from platform_ctl.events import Event, Reporter, discard
from platform_ctl.paths import control_dir

if TYPE_CHECKING:
    from platform_ctl.environment import Environment

CHECKS_DIR = Path(__file__).parent / "checks"
#: Processes running checks at once (never more than the environment has hosts).
WORKERS = 4


@dataclass(frozen=True)
class CheckResult:
    host: str
    check: str
    outcome: str  # passed / failed / skipped / error
    message: str = ""


@dataclass
class VerifyReport:
    results: list[CheckResult] = field(default_factory=list)
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.outcome in ("passed", "skipped") for r in self.results)

    def by_host(self) -> dict[str, list[CheckResult]]:
        table: dict[str, list[CheckResult]] = {}
        for r in self.results:
            table.setdefault(r.host, []).append(r)
        return table

    def failed_summary(self) -> str:
        bad = [r for r in self.results if r.outcome not in ("passed", "skipped")]
        if not self.results:
            return f"no check ran (log: {self.log})"
        return "; ".join(f"{r.host}: {r.check}: {r.message}" for r in bad[:5]) + f" (log: {self.log})"


def verify(env: Environment, report: Reporter = discard) -> VerifyReport:
    """Run every shipped check against every host of the environment."""
    from platform_ctl.runner import ansible_env

    if not env.inventory.exists():
        raise PreflightError(f"environment {env.name!r} has no inventory yet: run `platform-ctl deploy {env.name}`")
    out_dir = env.state_dir / "logs" / "verify"
    out_dir.mkdir(parents=True, exist_ok=True)
    results_file = out_dir / "results.json"
    log = out_dir / "pytest.log"
    results_file.unlink(missing_ok=True)
    # One SSH master per host for all the checks (testinfra opens a new connection per command
    # unless told where the master's socket lives).
    ssh_config = env.state_dir / "ssh" / "verify_config"
    ssh_config.parent.mkdir(parents=True, exist_ok=True)
    ssh_config.write_text(
        f"Host *\n  ControlMaster auto\n  ControlPath {control_dir(env.state_dir)}/verify-%C\n  ControlPersist 120s\n"
    )
    environ = {
        **os.environ,
        **ansible_env(env.state_dir, env.vault_password_file()),
        "PLATFORM_VERIFY_RESULTS": str(results_file),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    cmd = [
        sys.executable, "-m", "pytest", str(CHECKS_DIR),
        "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR),
        "-p", "platform_ctl.verify_plugin", "-p", "no:cacheprovider",
        # Each check module names its hosts (testinfra_hosts, an inventory group).
        f"--ansible-inventory={env.inventory}", "--connection=ansible",
        f"--ssh-config={ssh_config}",
        "-n", str(min(WORKERS, len(env.spec.hosts()))),
        "-q", "--tb=short", "--color=no",
    ]
    report(Event("task", phase="verify", task=f"testinfra checks on {len(env.spec.hosts())} hosts"))
    with open(log, "w") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=environ, check=False, cwd=out_dir)
    results = []
    if results_file.exists():
        results = [CheckResult(**r) for r in json.loads(results_file.read_text())]
    for r in results:
        report(Event("host_result", phase="verify", host=r.host, task=r.check,
                     status="ok" if r.outcome == "passed" else r.outcome))
    return VerifyReport(results, log)

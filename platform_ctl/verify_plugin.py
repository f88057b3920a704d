"""pytest plugin used by `platform-ctl verify`: records every check's outcome per host as JSON."""

from __future__ import annotations

import json
import os
import re
from typing import Any

_HOST = re.compile(r"\[(?:ansible|ssh|paramiko)://([^\]]+)\]$")
_results: list[dict[str, str]] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    match = _HOST.search(report.nodeid)
    host = match.group(1) if match else "-"
    check = report.nodeid.split("::")[-1].split("[")[0]
    message = ""
    if report.outcome == "failed":
        crash = getattr(report.longrepr, "reprcrash", None)
        message = (crash.message if crash else str(report.longrepr)).strip().splitlines()[0][:300]
    outcome = "error" if report.when == "setup" and report.outcome == "failed" else report.outcome
    _results.append({"host": host, "check": check, "outcome": outcome, "message": message})


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("PLATFORM_VERIFY_RESULTS")
    # With pytest-xdist the controller gets every worker's reports too: it alone writes the file.
    if path and not hasattr(session.config, "workerinput"):
        with open(path, "w") as f:
            json.dump(_results, f, indent=1)

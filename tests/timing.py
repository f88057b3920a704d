"""The suite's timing table: where a run's minutes went, printed at the end of every run.

As a pytest plugin (``-p tests.timing`` in pyproject's addopts) it records every test's duration
(setup, call and teardown) with its tier (the directory under tests/), and fixtures and background
lanes record the spans a test's duration hides with :func:`record`: an environment's deploy, a
Molecule scenario's run. With ``PLATFORM_CTL_TIMINGS`` set to a directory (scripts/test.sh makes
one) every record is appended to ``spans.jsonl`` there, next to the shell's own steps (setup, lint)
and a sample of the machine's CPU counters every few seconds (``cpu.log``), and ``python
tests/timing.py report DIR`` prints the table. Without it, pytest prints the table of its own part
at the end of the session.

The table has one row per setup step, lint tool, Molecule scenario, environment deploy and
end-to-end test; unit and integration tests are one row per file. ``cpu`` is how busy the machine's
cores were during the row (``cpu.log``): a row near 100 % waited for CPU, one far below waited for
something else. Molecule's scenarios run beside the other tiers, so rows overlap and do not add up
to the total, which is the run's wall time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ENV = "PLATFORM_CTL_TIMINGS"
SPANS = "spans.jsonl"
CPU_LOG = "cpu.log"
#: Tiers in the table's order.
TIERS = ("setup", "lint", "unit", "integration", "molecule", "deploy", "e2e", "other")
#: Tiers listed per file rather than per test (many short tests).
BY_FILE = ("unit", "integration")

_records: list[dict[str, Any]] = []


def record(tier: str, item: str, start: float, end: float, **extra: Any) -> None:
    """One row of the table: ``item`` of ``tier`` ran from ``start`` to ``end`` (epoch seconds)."""
    row = {"tier": tier, "item": item, "start": start, "end": end, **extra}
    _records.append(row)
    directory = os.environ.get(ENV)
    if directory:
        # One line per write: the Molecule lane's thread and the e2e deploy's record concurrently.
        with open(Path(directory) / SPANS, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class Span:
    """``with Span(tier, item):`` records the block's wall time (also when it raises)."""

    def __init__(self, tier: str, item: str, **extra: Any) -> None:
        self.tier, self.item, self.extra = tier, item, extra

    def __enter__(self) -> Span:
        self.start = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        record(self.tier, self.item, self.start, time.time(), **self.extra)


# -- pytest plugin -------------------------------------------------------------------------------
_tests: dict[str, dict[str, Any]] = {}


def _tier(nodeid: str) -> str:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" and parts[1] in TIERS else "other"


def pytest_runtest_logreport(report: Any) -> None:
    if not report.nodeid.startswith("tests/"):
        return  # a pytest run beside the suite's that read the same configuration (Molecule's verifier)
    row = _tests.setdefault(report.nodeid, {"start": report.start, "outcome": "passed"})
    row["end"] = report.stop
    if report.failed:
        row["outcome"] = "failed"
    elif report.skipped and row["outcome"] == "passed":
        row["outcome"] = "skipped"
    if report.when == "teardown":
        _tests.pop(report.nodeid)
        nodeid = report.nodeid.split("[")[0]  # a parametrized test's cases: one row
        tier = _tier(nodeid)
        item = nodeid.split("::")[0].removeprefix(f"tests/{tier}/") if tier in BY_FILE else \
            nodeid.removeprefix(f"tests/{tier}/")
        record(tier, item, row["start"], row["end"], outcome=row["outcome"], test=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if os.environ.get(ENV) or not _records:
        return  # scripts/test.sh prints the whole run's table
    terminalreporter.write_sep("=", "timing")
    for line in table(_records, []):
        terminalreporter.write_line(line)


# -- the table -----------------------------------------------------------------------------------
def _cpu_samples(path: Path) -> list[tuple[float, float, float]]:
    """(epoch, busy jiffies, total jiffies) from lines ``EPOCH cpu user nice system idle iowait ...``."""
    samples = []
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) < 6 or fields[1] != "cpu":
                continue
            values = [int(v) for v in fields[2:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            samples.append((float(fields[0]), float(sum(values) - idle), float(sum(values))))
    return samples


def _busy(samples: list[tuple[float, float, float]], start: float, end: float) -> str:
    inside = [s for s in samples if start - 2.5 <= s[0] <= end + 2.5]
    if len(inside) < 2 or inside[-1][2] == inside[0][2]:
        return ""
    return f"{100 * (inside[-1][1] - inside[0][1]) / (inside[-1][2] - inside[0][2]):.0f}%"


def _rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records merged per (tier, item): tests of one file become one row (their summed time)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        key = (r["tier"], r["item"])
        row = merged.get(key)
        if row is None:
            merged[key] = {**r, "seconds": r["end"] - r["start"], "count": 1}
        else:
            row["seconds"] += r["end"] - r["start"]
            row["count"] += 1
            row["start"], row["end"] = min(row["start"], r["start"]), max(row["end"], r["end"])
            if r.get("outcome") == "failed":
                row["outcome"] = "failed"
    return sorted(merged.values(), key=lambda r: (TIERS.index(r["tier"]) if r["tier"] in TIERS else len(TIERS),
                                                 r["start"]))


def table(records: list[dict[str, Any]], samples: list[tuple[float, float, float]]) -> list[str]:
    """The table's lines: a row per item, a subtotal per tier, the total wall time."""
    if not records:
        return ["(nothing recorded)"]
    rows = _rows(records)
    for r in rows:
        r["name"] = r["item"] + (f" ({r['count']} tests)" if r.get("test") and r["count"] > 1 else "")
    origin = min(r["start"] for r in rows)
    width = min(100, max(40, *(len(r["name"]) for r in rows)))
    lines = [f"{'tier':<12}{'item':<{width}}  {'start':>7}  {'seconds':>8}  {'cpu':>5}"]
    by_tier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_tier[r["tier"]].append(r)
    for tier, tier_rows in by_tier.items():
        for r in tier_rows:
            name = r["name"]
            if len(name) > width:
                name = "…" + name[-(width - 1):]
            flag = "  FAILED" if r.get("outcome") == "failed" else ""
            start = r["start"] - origin
            lines.append(f"{tier:<12}{name:<{width}}  {int(start) // 60:>4}:{int(start) % 60:02d}  "
                         f"{r['seconds']:>8.1f}  {_busy(samples, r['start'], r['end']):>5}{flag}")
        if len(tier_rows) == 1:
            continue
        first, last = min(r["start"] for r in tier_rows), max(r["end"] for r in tier_rows)
        lines.append(f"{'':<12}{'= ' + tier + ', first start to last end':<{width}}  {'':>7}  "
                     f"{last - first:>8.1f}  {_busy(samples, first, last):>5}")
    end = max(r["end"] for r in rows)
    lines.append(f"{'total':<12}{'wall time of the run':<{width}}  {'':>7}  {end - origin:>8.1f}  "
                 f"{_busy(samples, origin, end):>5}")
    return lines


def report(directory: Path) -> None:
    spans = directory / SPANS
    records = [json.loads(line) for line in spans.read_text().splitlines() if line.strip()] \
        if spans.exists() else []
    print("== timing (seconds; Molecule runs beside the other tiers, so rows overlap; cpu: the machine's "
          "cores busy during the row)")
    for line in table(records, _cpu_samples(directory / CPU_LOG)):
        print(line)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "report":
        sys.exit("usage: python tests/timing.py report DIRECTORY")
    report(Path(sys.argv[2]))

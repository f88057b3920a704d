"""The record of what the commands that change an environment did: ``.platform/<env>.history.jsonl``.

Next to the environment's state directory rather than in it, so it outlives ``destroy`` (which
records itself there last).

One JSON object per line, appended and flushed as things happen, so a run killed in the middle
leaves the steps it finished on record. Each line has ``time`` (UTC, ISO 8601), ``command`` (e.g.
``scale-out``), ``run`` (the id of the invocation, shared by its lines), ``event`` (``start``,
``step``, ``done`` or ``failed``) and what the event is about (``step``, ``changed``, ``seconds``,
``error`` …). ``--check`` runs change nothing and write nothing here.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUFFIX = ".history.jsonl"


def history_path(state_dir: Path) -> Path:
    """``.platform/<env>.history.jsonl`` for the state directory ``.platform/<env>``."""
    return state_dir.with_name(state_dir.name + SUFFIX)


class History:
    """The lines of one invocation of one command."""

    def __init__(self, state_dir: Path, command: str, **details: Any) -> None:
        self.path = history_path(state_dir)
        self.command = command
        self.run = uuid.uuid4().hex[:12]
        self.details = details

    def write(self, event: str, **fields: Any) -> None:
        line = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "command": self.command,
                "run": self.run, "event": event, **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=False, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def step(self, step: str, **fields: Any) -> None:
        self.write("step", step=step, **fields)


@contextmanager
def recorded(state_dir: Path, command: str, **details: Any) -> Iterator[History]:
    """Write ``start`` with ``details``, then ``done`` or ``failed`` (with the error) and the duration."""
    history = History(state_dir, command, **details)
    history.write("start", **details)
    started = time.monotonic()
    try:
        yield history
    except BaseException as exc:
        message = getattr(exc, "message", "") or str(exc) or type(exc).__name__
        history.write("failed", error=message, seconds=round(time.monotonic() - started, 1))
        raise
    history.write("done", seconds=round(time.monotonic() - started, 1))


def read(state_dir: Path) -> list[dict[str, Any]]:
    """Every line of the environment's history (a torn last line, from a kill mid-write, is left out)."""
    path = history_path(state_dir)
    if not path.exists():
        return []
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


@dataclass(frozen=True)
class Run:
    """One invocation of a command, from its lines: when, what, how it ended, its steps."""

    run: str
    command: str
    started: str
    #: done, failed, or running (no end line: still running, or killed; a rerun resumes it).
    outcome: str
    seconds: float | None
    steps: tuple[str, ...]
    #: What the command was asked (its start line's details), and the error it failed with.
    details: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def describe(self) -> str:
        """The details in a few words: ``group=trino_worker after=2``."""
        shown = {k: v for k, v in self.details.items() if v not in (None, "", [], {}, False)
                 and k not in ("access_keys", "logins", "spec_digest")}
        return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in shown.items())


def runs(state_dir: Path) -> list[Run]:
    """The environment's history, one :class:`Run` per invocation, oldest first."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for line in read(state_dir):
        if "run" in line:
            grouped.setdefault(str(line["run"]), []).append(line)
    result = []
    for run_id, lines in grouped.items():
        start = next((line for line in lines if line.get("event") == "start"), lines[0])
        end = next((line for line in reversed(lines) if line.get("event") in ("done", "failed")), None)
        details = {k: v for k, v in start.items() if k not in ("time", "command", "run", "event")}
        result.append(Run(run_id, str(start.get("command", "?")), str(start.get("time", "?")),
                          str(end["event"]) if end else "running", end.get("seconds") if end else None,
                          tuple(str(line.get("step")) for line in lines if line.get("event") == "step"),
                          details, str(end.get("error", "")) if end else ""))
    return result

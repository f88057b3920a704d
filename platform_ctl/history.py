"""The record of what day-2 commands changed: ``.platform/<env>/history.jsonl``.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILE_NAME = "history.jsonl"


def history_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


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

"""Progress events: the core reports through a callback, the CLI decides how to show them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal[
    "phase_start", "phase_done", "phase_skip", "phase_failed",
    "task", "host_result", "message", "stats",
]


@dataclass(frozen=True)
class Event:
    """One thing that happened during a run.

    Attributes:
        kind: what happened.
        phase: the deploy phase it belongs to.
        host: the host concerned, if any.
        task: the Ansible task or infrastructure step concerned, if any.
        status: ok / changed / failed / skipped / unreachable for host results.
        message: free text for humans.
        data: structured extras (per-host stats, durations).
    """

    kind: EventKind
    phase: str = ""
    host: str = ""
    task: str = ""
    status: str = ""
    message: str = ""
    data: dict[str, object] = field(default_factory=dict)


Reporter = Callable[[Event], None]


def discard(_event: Event) -> None:
    """A reporter that ignores everything (for callers that don't show progress)."""

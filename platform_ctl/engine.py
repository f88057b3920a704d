"""The one engine every command that changes an environment runs on: deploy, scale-out/in,
rotate-secrets, backup, restore (and destroy's record).

An operation is a list of :class:`Step` run in order against a *record* of the steps it completed.
A resumable record lives on disk (``.platform/<env>/operation.json`` for day-2 operations,
``deploy.json`` for deploy), saved after each step, so a run killed in the middle resumes at the
first step not done when the same command runs again. Backup and restore are not resumable (a rerun
takes a new backup, or restores again): their record is :class:`Once`, kept in memory.

Whatever runs, :func:`run_operation` appends its ``start``, every step (with what changed and how
long it took) and ``done``/``failed`` to the environment's history (platform_ctl.history), which
``platform-ctl history ENV`` reads back. The checks every operation makes before acting are here
too, so they say the same thing with the same exit code whichever command asks: another operation
is unfinished (:func:`require_no_pending`), the environment is not deployed
(:func:`require_deployed`); and the step that ends most of them, the shipped checks or a failure
(:func:`verify_step`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from platform_ctl.catalogue import RESTART_SENTENCES, RESTART_STATS
from platform_ctl.errors import PlatformCtlError, UsageError, VerifyFailed
from platform_ctl.events import Event, Reporter
from platform_ctl.history import History, recorded
from platform_ctl.paths import write_text_atomic

if TYPE_CHECKING:
    from platform_ctl.environment import Environment

#: The file deploy records its completed phases in (``finished`` once verify passed).
DEPLOY_RECORD = "deploy.json"
#: The file a day-2 operation records its plan and completed steps in, one at a time per environment.
OPERATION_RECORD = "operation.json"


@dataclass
class Step:
    """One step of an operation: its name in the record, what it does (said before it runs), the work
    (returning the details history keeps: hosts, what changed, restarts measured)."""

    name: str
    what: str
    run: Callable[[], dict[str, object]]


@dataclass
class StepsResult:
    """What the steps of an operation did (or, with ``check_only``, would do)."""

    resumed: bool
    skipped: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    changed: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The restarts the roles measured, by component: roles/minio's simultaneous restart (nodes,
    #: seconds without write quorum), roles/trino's coordinator restart (seconds answering nothing).
    restarts: dict[str, dict[str, float]] = field(default_factory=dict)
    check_only: bool = False
    plan: list[tuple[str, str]] = field(default_factory=list)


class Record(Protocol):
    """An operation's progress: the steps it completed, saved after each one, closed at the end."""

    completed: list[str]

    def save(self, state_dir: Path) -> None: ...

    def close(self, state_dir: Path) -> None: ...


@dataclass
class Once:
    """The record of an operation that is not resumed (backup, restore): in memory only."""

    completed: list[str] = field(default_factory=list)

    def save(self, state_dir: Path) -> None:
        pass

    def close(self, state_dir: Path) -> None:
        pass


class OperationFile:
    """A day-2 operation kept in ``operation.json``: its plan and progress, removed when it ends.

    Subclasses are dataclasses with ``command``, ``started`` and ``completed``, and say what they are
    (``summary``) and which command line finishes them (``resume``); both are saved with the record so
    another command can name an unfinished operation without knowing its kind.
    """

    command: str
    started: str

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / OPERATION_RECORD

    @property
    def summary(self) -> str:
        raise NotImplementedError

    def resume(self, env: str) -> str:
        raise NotImplementedError

    def save(self, state_dir: Path) -> None:
        data = {**vars(self), "_summary": self.summary, "_resume": self.resume("{env}")}
        write_text_atomic(self.path(state_dir), json.dumps(data, indent=2) + "\n")

    def close(self, state_dir: Path) -> None:
        self.path(state_dir).unlink(missing_ok=True)

    def unfinished(self, env: str) -> str:
        """The sentence that stops another command while this operation is unfinished."""
        return Pending(self.command, self.started, self.summary, self.resume(env)).unfinished(env)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Any:
        return cls(**{k: v for k, v in data.items() if not k.startswith("_")})


@dataclass(frozen=True)
class Pending:
    """An unfinished day-2 operation as its record says, whatever its kind."""

    command: str
    started: str
    summary: str
    resume: str
    data: dict[str, Any] = field(default_factory=dict)

    def unfinished(self, env: str) -> str:
        return (f"an interrupted `{self.summary}` (started {self.started}) is not finished: run "
                f"`{self.resume.replace('{env}', env)}` to finish it")


def pending_operation(state_dir: Path) -> Pending | None:
    """The environment's unfinished day-2 operation (scale, rotate-secrets), if any."""
    path = OperationFile.path(state_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    command = str(data.get("command", "?"))
    return Pending(command, str(data.get("started", "?")), str(data.get("_summary", command)),
                   str(data.get("_resume", f"platform-ctl {command} {{env}}")), data)


def require_no_pending(env: Environment, then: str = "") -> None:
    """Refuse (exit 2, nothing changed) while another operation of the environment is unfinished."""
    pending = pending_operation(env.state_dir)
    if pending is not None:
        raise UsageError(f"{pending.unfinished(env.name)}{', then ' + then if then else ' first'}; nothing was changed")


def deployed(env: Environment) -> bool:
    """Whether a deploy of the environment ran to its end (verify passed) and its inventory exists."""
    path = env.state_dir / DEPLOY_RECORD
    return env.inventory.exists() and path.exists() and bool(json.loads(path.read_text()).get("finished"))


def require_deployed(env: Environment, what: str) -> None:
    """Refuse (exit 2, nothing changed) to ``what`` an environment no deploy finished."""
    if not deployed(env):
        raise UsageError(f"{env.name} is not fully deployed (no finished `platform-ctl deploy {env.name}`): "
                         f"deploy it first, then {what}")


def verify_step(env: Environment, report: Reporter) -> dict[str, object]:
    """The shipped checks on every host; :class:`VerifyFailed` when one fails."""
    from platform_ctl.verify import verify

    result = verify(env, report)
    if not result.ok:
        raise VerifyFailed(f"verify {env.name}: {result.failed_summary()}")
    return {"checks": sum(len(v) for v in result.by_host().values()), "report": result}


def run_phase(env: Environment, phase: str, playbook: str, limit: list[str] | None, report: Reporter,
              tags: tuple[str, ...] = (), extravars: dict[str, object] | None = None) -> dict[str, object]:
    """Run one playbook (on ``limit``, or every host): the hosts, what changed on each, the restarts
    measured, and the run itself under ``result``."""
    from platform_ctl.runner import run_playbook

    result = run_playbook(playbook, env.inventory, env.state_dir, report, phase, extravars=extravars,
                          vault_password_file=env.vault_password_file(),
                          limit=",".join(limit) if limit is not None else None, tags=tags)
    details: dict[str, object] = {"hosts": limit if limit is not None else sorted(result.stats),
                                  "changed": {h: s.changed for h, s in result.stats.items()}, "result": result}
    restarts = {component: {"unavailable_s": float(result.data[key]["seconds"]),
                            **({"nodes": int(result.data[key]["nodes"])} if "nodes" in result.data[key] else {})}
                for key, component in RESTART_STATS.items() if result.data.get(key)}
    if restarts:
        details["restarts"] = restarts
    return details


def run_operation(env: Environment, command: str, steps: Sequence[Step], record: Record, result: StepsResult,
                  report: Reporter, close: bool = True, **details: Any) -> None:
    """Run the steps ``record`` has not completed, each recorded in history; close the record at the end
    (``close=False``: leave it open, for a deploy stopped early with ``--to``)."""
    with recorded(env.state_dir, command, **details) as history:
        for step in steps:
            if step.name in record.completed:
                result.skipped.append(step.name)
                report(Event("phase_skip", phase=step.name, message="completed by the interrupted run"))
                continue
            _run_step(step, result, history, report)
            record.completed.append(step.name)
            record.save(env.state_dir)
        if close:
            record.close(env.state_dir)


#: Details a step returns for the caller only, not for history (objects, not JSON).
_NOT_RECORDED = ("result", "report")


def _run_step(step: Step, result: StepsResult, history: History, report: Reporter) -> None:
    started = time.monotonic()
    report(Event("phase_start", phase=step.name, message=step.what))
    try:
        details = step.run()
    except PlatformCtlError as exc:
        report(Event("phase_failed", phase=step.name, message=exc.message))
        raise
    seconds = time.monotonic() - started
    result.durations[step.name] = seconds
    changed = details.get("changed")
    if isinstance(changed, dict):
        result.changed[step.name] = changed
    restarts = details.get("restarts")
    if isinstance(restarts, dict):
        for component, measure in restarts.items():
            result.restarts[component] = measure
            report(Event("message", phase=step.name, data={"component": component, **measure},
                         message=RESTART_SENTENCES[component].format(**measure)))
    history.step(step.name, seconds=round(seconds, 1), **{k: v for k, v in details.items() if k not in _NOT_RECORDED})
    report(Event("phase_done", phase=step.name, data={"seconds": seconds}))

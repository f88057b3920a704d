"""Day-2 `backup` and `restore`: pgBackRest on the postgres hosts, through ansible/playbooks/ops/.

Both run against a deployed environment (its generated inventory) and return what the repository
holds afterwards, read from the report each host writes to the controller.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from platform_ctl.engine import Once, Step, StepsResult, require_deployed, require_no_pending, run_operation, run_phase
from platform_ctl.errors import UsageError
from platform_ctl.events import Event, Reporter, discard

if TYPE_CHECKING:
    from platform_ctl.environment import Environment

BACKUP_TYPES = ("full", "diff", "incr")


@dataclass(frozen=True)
class BackupSet:
    label: str
    type: str
    started: datetime
    stopped: datetime
    size: int
    repo_size: int


@dataclass(frozen=True)
class HostReport:
    """The state of one host's repository after a day-2 run."""

    host: str
    backups: list[BackupSet]
    wal_min: str
    wal_max: str
    timeline: int
    target: str
    restore_set: str = ""  # the set a restore to ``target`` starts from (roles/postgresql's choice)
    restore_problem: str = ""  # why no set can reach ``target``, when restore_set is ''
    off_history: tuple[str, ...] = ()  # backups on timelines a restore abandoned

    @classmethod
    def from_json(cls, data: dict) -> HostReport:
        info = data["info"]
        backups = [
            BackupSet(b["label"], b["type"], datetime.fromtimestamp(b["timestamp"]["start"], UTC),
                      datetime.fromtimestamp(b["timestamp"]["stop"], UTC), b["info"]["size"],
                      b["info"]["repository"]["delta"])
            for b in info.get("backup", [])
        ]
        archives = [a for a in info.get("archive", []) if a.get("min")]
        chosen = data.get("restore_from", {})
        return cls(data["host"], backups, archives[-1]["min"] if archives else "",
                   archives[-1]["max"] if archives else "", int(data["timeline"]), data.get("target", ""),
                   chosen.get("set", ""), chosen.get("message", ""), tuple(chosen.get("not_on_history", ())))


def parse_target(text: str, now: datetime | None = None) -> datetime:
    """A restore target: an ISO 8601 time with a UTC offset (or Z), in the past."""
    try:
        when = datetime.fromisoformat(text.strip())  # Python 3.11: a space or T, and Z, are accepted
    except ValueError:
        raise UsageError(f"--to {text!r}: not a time; use ISO 8601 with an offset, e.g. "
                               "2026-11-26T01:30:00+00:00 or 2026-11-26T01:30:00Z") from None
    if when.tzinfo is None:
        raise UsageError(f"--to {text!r}: give the UTC offset (e.g. {text}+00:00 or {text}Z): "
                               "a time without one is ambiguous")
    if when > (now or datetime.now(UTC)):
        raise UsageError(f"--to {text!r}: in the future; recovery can only reach committed history")
    return when.astimezone(UTC)


def pg_time(when: datetime) -> str:
    """The target as PostgreSQL's recovery_target_time reads it (microseconds, UTC offset)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _run(env: Environment, playbook: str, phase: str, report: Reporter, extravars: dict,
         record: bool = True) -> list[HostReport]:
    """Run an ops playbook on the postgres hosts and read the report each wrote; with ``record``, as an
    operation of the engine (refused while another is unfinished, recorded in history)."""
    require_deployed(env, f"{phase} it")
    if env.spec.groups.get("postgres") is None or not env.spec.groups["postgres"].count:
        raise UsageError(f"{env.name} has no postgres group: nothing to back up or restore")
    if record:
        require_no_pending(env)
    reports = env.state_dir / "ops" / phase
    hosts: list[HostReport] = []

    def run() -> dict[str, object]:
        shutil.rmtree(reports, ignore_errors=True)
        reports.mkdir(parents=True)
        details = run_phase(env, phase, f"ops/{playbook}", None, report,
                            extravars={**extravars, "postgresql_ops_report_dir": str(reports)})
        hosts[:] = [HostReport.from_json(json.loads(p.read_text())) for p in sorted(reports.glob("*.json"))]
        details["repository"] = [
            {"host": h.host, "timeline": h.timeline, "target": h.target, "wal_max": h.wal_max,
             "latest_backup": h.backups[-1].label if h.backups else None} for h in hosts]
        return details

    if not record:
        run()
        return hosts
    run_operation(env, phase, [Step(phase, f"{playbook} on the postgres hosts", run)], Once(), StepsResult(False),
                  discard, **extravars)
    return hosts


def repository(env: Environment, report: Reporter = discard, target: datetime | None = None) -> list[HostReport]:
    """What each postgres host's repository holds now and the set a restore to ``target`` (None: the
    latest state) would start from, read only (for ``--check``)."""
    report(Event("phase_start", phase="check", message="read the backup repository"))
    hosts = _run(env, "backup_info.yml", "check", report,
                 {"postgresql_restore_target": pg_time(target) if target else ""}, record=False)
    report(Event("phase_done", phase="check"))
    return hosts


def restore_plan(host: HostReport, target: datetime | None) -> str:
    """What ``restore --to target`` would do on ``host``, or why it cannot (raised, changing nothing).
    The set is the role's choice (pgbackrest_restore_set): the newest backup that ended by the target
    on the history of the timeline recovery follows."""
    if not host.backups:
        raise UsageError(f"{host.host}: the repository holds no backup: nothing to restore from")
    if not host.restore_set:
        raise UsageError(f"--to {target.isoformat() if target else 'the latest state'}: {host.host}: "
                         f"{host.restore_problem or 'no backup can start this restore'}; nothing was changed")
    chosen = next(b for b in host.backups if b.label == host.restore_set)
    skipped = (f"; not {', '.join(host.off_history)}, on a timeline a restore abandoned" if host.off_history else "")
    if target is None:
        return (f"{host.host}: restore backup {chosen.label} and replay WAL to the end of the archive "
                f"({host.wal_max or 'none archived'}){skipped}")
    return (f"{host.host}: restore backup {chosen.label} (ended {chosen.stopped.isoformat()}) "
            f"and replay WAL to {pg_time(target)}{skipped}")


def backup(env: Environment, report: Reporter = discard, kind: str = "full") -> list[HostReport]:
    """Take a pgBackRest backup of ``kind`` on every postgres host now."""
    if kind not in BACKUP_TYPES:
        raise UsageError(f"--type {kind!r}: allowed: {', '.join(BACKUP_TYPES)}")
    report(Event("phase_start", phase="backup", message=f"{kind} backup"))
    hosts = _run(env, "backup.yml", "backup", report, {"postgresql_backup_type": kind})
    report(Event("phase_done", phase="backup"))
    return hosts


def restore(env: Environment, report: Reporter = discard, target: datetime | None = None) -> list[HostReport]:
    """Restore every postgres host to ``target`` (None: the end of the archived WAL)."""
    report(Event("phase_start", phase="restore", message=f"to {pg_time(target)}" if target else "to the latest state"))
    hosts = _run(env, "restore.yml", "restore", report,
                 {"postgresql_restore_target": pg_time(target) if target else ""})
    report(Event("phase_done", phase="restore"))
    return hosts

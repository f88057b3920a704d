"""How the CLI shows progress and results (rich). Core code never imports this."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from platform_ctl.events import Event

if TYPE_CHECKING:
    from platform_ctl.backups import HostReport
    from platform_ctl.deploy import CheckResult, DeployResult
    from platform_ctl.engine import StepsResult
    from platform_ctl.errors import PlaybookFailed
    from platform_ctl.history import Run
    from platform_ctl.infra import HostStatus
    from platform_ctl.monitoring import MonitoringStatus
    from platform_ctl.reach import Endpoints
    from platform_ctl.rotation import RotationResult
    from platform_ctl.scaling import ScaleResult
    from platform_ctl.verify import VerifyReport

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

STATUS_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red",
                "skipped": "dim", "ignored": "dim", "error": "red"}


class JsonEvents:
    """Reporter printing one JSON object per event."""

    def __call__(self, event: Event) -> None:
        print(json.dumps(asdict(event), default=str), flush=True)

    def __enter__(self) -> JsonEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveProgress:
    """Reporter showing the phase, the task and per-host ok/changed/failed counts as they happen."""

    def __init__(self) -> None:
        self.phase = ""
        self.task = ""
        self.counts: dict[str, dict[str, int]] = {}
        self.live = Live(self._render(), console=console, refresh_per_second=8, transient=True)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def _render(self) -> Group:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for col in ("host", "ok", "changed", "failed"):
            table.add_column(col, justify="left" if col == "host" else "right")
        for host, c in sorted(self.counts.items()):
            table.add_row(host, str(c.get("ok", 0)), Text(str(c.get("changed", 0)), "yellow"),
                          Text(str(c.get("failed", 0)), "red" if c.get("failed") else ""))
        head = Text.assemble(("phase ", "dim"), (self.phase, "bold cyan"), ("  task ", "dim"), self.task[:70])
        return Group(head, table)

    def __call__(self, event: Event) -> None:
        out = self.live.console
        if event.kind == "phase_start":
            self.phase, self.task, self.counts = event.phase, "", {}
            out.print(f"[bold cyan]▶ {event.phase}[/]")
        elif event.kind == "phase_done":
            seconds = event.data.get("seconds")
            out.print(f"[green]✓ {event.phase}[/]" + (f" [dim]{seconds:.1f}s[/]" if seconds is not None else ""))
        elif event.kind == "phase_skip":
            out.print(f"[dim]↷ {event.phase}: {escape(event.message)}[/]")
        elif event.kind == "phase_failed":
            out.print(f"[red]✗ {event.phase}[/]")
        elif event.kind == "task":
            self.task = f"{event.host}: {event.task}" if event.host else event.task
        elif event.kind == "host_result" and event.host:
            bucket = "failed" if event.status in ("failed", "unreachable", "error") else (
                "changed" if event.status == "changed" else "ok")
            self.counts.setdefault(event.host, {})[bucket] = self.counts.get(event.host, {}).get(bucket, 0) + 1
        elif event.kind == "message":
            out.print(f"  [dim]{event.phase}:[/] {escape(event.message)}")
        self.live.update(self._render())


def reporter(as_json: bool) -> JsonEvents | LiveProgress:
    return JsonEvents() if as_json else LiveProgress()


def show_deploy(result: DeployResult, vault_hint: str) -> None:
    table = Table(title=f"deploy {result.env}", title_justify="left")
    for col in ("host", "groups", "address", "ok", "changed", "failed"):
        table.add_column(col)
    stats: dict[str, dict[str, int]] = {}
    for pb in result.playbooks.values():
        for host, s in pb.stats.items():
            agg = stats.setdefault(host, {"ok": 0, "changed": 0, "failed": 0})
            agg["ok"] += s.ok
            agg["changed"] += s.changed
            agg["failed"] += s.failed + s.unreachable
    for h in result.hosts:
        row = stats.get(h.name, {})
        table.add_row(h.name, ",".join(h.groups), h.private_ip, str(row.get("ok", "-")),
                      str(row.get("changed", "-")), str(row.get("failed", "-")))
    console.print(table)
    if result.resumed_from:
        console.print(f"resumed at phase [bold]{result.resumed_from}[/] (skipped: {', '.join(result.skipped)})")
    if result.verify is not None:
        passed = sum(r.outcome == "passed" for r in result.verify.results)
        console.print(f"verify: {passed}/{len(result.verify.results)} checks passed")
    if result.stopped_after:
        console.print(f"[yellow]stopped after phase {result.stopped_after}[/] (--to): `platform-ctl deploy "
                      f"{result.env}` goes on from the next phase")
    for notice in result.notices:
        console.print(f"[yellow]notice:[/] {notice}")
    console.print(f"changed={sum(result.changed_per_host().values())} in total; secrets: {vault_hint}")
    console.print(f"ssh: platform-ctl ssh {result.env} HOST")
    if not result.stopped_after:
        console.print(f"services: platform-ctl endpoints {result.env} (URLs, users, how to get each credential)")


def show_scale(env: str, result: ScaleResult) -> None:
    """The plan (with --check) or what each step changed, and the hosts of the group afterwards."""
    op = result.operation
    assert op is not None
    if result.check_only:
        show_plan(op.summary, result, op.completed)
        return
    show_steps(f"{op.command} {env} {op.group}: {op.before} → {op.after}", result)
    members = [h.name for h in result.hosts if op.group in h.groups]
    console.print(f"{op.group}: {', '.join(members) or 'no hosts'}; recorded in .platform/{env}.history.jsonl")


def show_plan(summary: str, result: StepsResult, completed: list[str]) -> None:
    """A day-2 command's --check: its steps, done or to do; nothing changed."""
    console.print(f"plan: {summary}{' (resuming the interrupted run)' if result.resumed else ''}")
    for name, what in result.plan:
        mark = "done" if name in completed else "todo"
        console.print(escape(f"  [{mark}] {name}: {what}"))
    console.print("nothing was changed (--check)")


def show_rotation(env: str, result: RotationResult) -> None:
    """The plan and what it interrupts (with --check), or what each step changed and cost."""
    rotation = result.rotation
    assert rotation is not None
    for sentence in result.disruptions:
        console.print(f"[yellow]interrupts:[/] {sentence}")
    if result.check_only:
        show_plan(rotation.summary, result, rotation.completed)
        return
    show_steps(f"rotate-secrets {env}{rotation.option}", result)
    console.print(f"old credentials refused: {', '.join(rotation.refused)}; "
                  f"recorded in .platform/{env}.history.jsonl")


def show_restarts(result: StepsResult) -> None:
    """The unavailability the roles measured while restarting a component (MinIO, Trino)."""
    from platform_ctl.engine import RESTART_SENTENCES

    for component, measure in result.restarts.items():
        console.print(RESTART_SENTENCES[component].format(**measure))


def show_steps(title: str, result: StepsResult) -> None:
    """The table of an operation's steps: seconds, and what changed per host."""
    table = Table(title=title, title_justify="left")
    for col in ("step", "seconds", "changed per host"):
        table.add_column(col)
    for name, what in result.plan:
        if name in result.skipped:
            table.add_row(name, "-", "done by the interrupted run")
            continue
        changed = result.changed.get(name)
        text = ", ".join(f"{h}={n}" for h, n in sorted(changed.items())) if changed else what
        table.add_row(name, f"{result.durations.get(name, 0):.1f}", text)
    console.print(table)
    show_restarts(result)


def show_check(result: CheckResult) -> None:
    console.print(f"[bold]deploy {result.env} --check[/]: nothing was changed")
    console.print(f"infrastructure: {result.infrastructure}")
    for action, address in result.infrastructure_changes:
        console.print(f"  {action:8} {escape(address)}")
    if result.playbooks_skipped:
        console.print(f"playbooks: {result.playbooks_skipped}")
    for phase, pb in result.playbooks.items():
        would = {h: s.changed for h, s in pb.stats.items() if s.changed}
        detail = ", ".join(f"{h}={n}" for h, n in sorted(would.items())) or "no host would change"
        console.print(f"playbook {phase}: {detail} (diff: {pb.log_dir / 'stdout'})")


def show_verify(report: VerifyReport) -> None:
    table = Table(title="verify", title_justify="left")
    for col in ("host", "passed", "failed", "failing checks"):
        table.add_column(col)
    for host, results in sorted(report.by_host().items()):
        bad = [r for r in results if r.outcome not in ("passed", "skipped")]
        table.add_row(host, str(len(results) - len(bad)), Text(str(len(bad)), "red" if bad else "green"),
                      Text("\n".join(f"{r.check}: {r.message}" for r in bad)))
    console.print(table)
    verdict = "[green]all green[/]" if report.ok else f"[red]FAILED[/] (log: {escape(str(report.log))})"
    console.print(f"verify: {sum(r.outcome == 'passed' for r in report.results)}/{len(report.results)} passed, "
                  + verdict)


def show_status(env: str, hosts: list[HostStatus], monitoring: MonitoringStatus | None = None,
                unavailable: str = "") -> None:
    table = Table(title=f"status {env}", title_justify="left")
    for col in ("host", "groups", "address", "state", "ssh", "services"):
        table.add_column(col)
    services = monitoring.by_host() if monitoring else {}
    for h in hosts:
        up = h.state == "running" and h.ssh
        cell = Text()
        for t in services.get(h.name, []):
            cell.append(f"{t.service} {'up' if t.up else 'DOWN'}  ", "green" if t.up else "red")
        table.add_row(h.name, ",".join(h.groups), h.address or "-",
                      Text(h.state, "green" if h.state == "running" else "red"),
                      Text("up" if h.ssh else "down", "green" if up else "red"), cell if monitoring else Text("?"))
    console.print(table)
    console.print(f"{sum(h.state == 'running' and h.ssh for h in hosts)}/{len(hosts)} hosts up")
    if monitoring is None:
        console.print(f"[red]monitoring unavailable:[/] {escape(unavailable)}")
        return
    console.print(f"{len(monitoring.targets) - len(monitoring.down)}/{len(monitoring.targets)} services up "
                  f"(read from {monitoring.source})")
    for t in monitoring.down:
        console.print(f"  [red]down[/] {t.host} {t.service}: {escape(t.error or 'no answer')}")
    if not monitoring.alerts:
        console.print("alerts: none firing")
        return
    alerts = Table(title="alerts", title_justify="left")
    for col in ("alert", "state", "severity", "host", "since (UTC)", "summary"):
        alerts.add_column(col)
    for a in monitoring.alerts:
        alerts.add_row(a.name, Text(a.state, "red" if a.state == "firing" else "yellow"), a.severity, a.host or "-",
                       a.since, escape(a.summary))
    console.print(alerts)


def show_backups(title: str, hosts: list[HostReport]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("host", "backup", "type", "stopped (UTC)", "size", "in repository"):
        table.add_column(col)
    for h in hosts:
        for b in h.backups[-5:]:
            table.add_row(h.host, b.label, b.type, b.stopped.strftime("%Y-%m-%d %H:%M:%S"),
                          _mib(b.size), _mib(b.repo_size))
    console.print(table)
    for h in hosts:
        target = f"; restored to {h.target}" if h.target else ""
        console.print(f"{h.host}: WAL archived {h.wal_min or '-'} .. {h.wal_max or '-'}, timeline {h.timeline}{target}")


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def show_playbook_failure(exc: PlaybookFailed) -> None:
    table = Table(title=f"{exc.playbook} failed", title_justify="left", title_style="bold red")
    for col in ("host", "task", "message"):
        table.add_column(col, overflow="fold")
    for host, task, msg in exc.failures[:20]:
        table.add_row(Text(host), Text(task), Text(msg))
    err_console.print(table)
    err_console.print(f"full log: {exc.log}")


def is_interactive() -> bool:
    return sys.stdout.isatty()


def show_history(env: str, runs: list[Run]) -> None:
    """``platform-ctl history``: one row per command run, oldest first."""
    table = Table(title=f"history {env}", title_justify="left")
    for col in ("started (UTC)", "command", "outcome", "seconds", "steps", "details"):
        table.add_column(col, overflow="fold")
    style = {"done": "green", "failed": "red", "running": "yellow"}
    for run in runs:
        error = f" [red]{escape(run.error)}[/]" if run.error else ""
        table.add_row(run.started.replace("+00:00", ""), run.command,
                      f"[{style.get(run.outcome, '')}]{run.outcome}[/]",
                      "-" if run.seconds is None else f"{run.seconds:.0f}", str(len(run.steps)),
                      escape(run.describe()) + error)
    console.print(table)
    if not runs:
        console.print(f"nothing recorded for {env} yet")


def show_endpoints(found: Endpoints) -> None:
    """``platform-ctl endpoints``: one row per service, the CA to trust, and how to reach them from outside."""
    table = Table(title=f"endpoints {found.env}", title_justify="left")
    for col in ("service", "url", "user", "credential"):
        table.add_column(col, overflow="fold")
    for r in found.services:
        table.add_row(r.service, escape(r.url), escape(r.user) or "-", escape(r.credential))
    console.print(table)
    if not found.services:
        console.print(f"{found.env} has no host serving users")
        return
    console.print(f"CA to trust: {found.ca} (curl --cacert, REQUESTS_CA_BUNDLE, a JDBC truststore)")
    if found.behind_vpc:
        console.print("the URLs are the hosts' private addresses, which their certificates name; from outside the "
                      "VPC, through SSH (then the URL at localhost):")
        for r in found.services:
            console.print(f"  {r.service}: {escape(r.tunnel)}, then {escape(r.tunnel_url)}"
                          + (" (also open from anywhere at the host's public address, which its certificate "
                             "does not name)" if r.public else ""), soft_wrap=True)

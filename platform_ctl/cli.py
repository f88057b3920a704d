"""The `platform-ctl` command: thin wrappers around the core functions.

Each command parses its options, calls one core function and renders the result. Heavy imports
stay inside the commands so `--help` is fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from platform_ctl import __version__
from platform_ctl.errors import PlatformCtlError, UsageError
from platform_ctl.params import debug_option, env_argument, json_option, project_dir_option

if TYPE_CHECKING:
    from datetime import datetime

    from platform_ctl.backups import HostReport
    from platform_ctl.environment import Environment

F = TypeVar("F", bound=Callable[..., Any])


def boundary(func: F) -> F:
    """Turn PlatformCtlError into one message and its exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except PlatformCtlError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            from rich.markup import escape

            from platform_ctl.display import err_console, show_playbook_failure
            from platform_ctl.errors import PlaybookFailed

            if isinstance(exc, PlaybookFailed):
                show_playbook_failure(exc)
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _env(ctx: click.Context, name: str) -> Any:
    from platform_ctl.environment import Environment
    from platform_ctl.paths import Project

    return Environment.load(Project.discover(ctx.obj["project_dir"]), name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="platform-ctl")
@project_dir_option
@debug_option
@click.pass_context
def main(ctx: click.Context, project_dir: Path | None, debug: bool) -> None:
    """Provision and operate the data platform described by inventories/ENV/platform.yml."""
    ctx.obj = {"project_dir": project_dir, "debug": debug}


@main.command()
@env_argument
@click.option("--provider", type=click.Choice(["digitalocean", "local"]), default=None,
              help="Backend of the new environment (default: local for `local`, else digitalocean).")
@click.option("--region", default=None, help="DigitalOcean region slug, e.g. fra1.")
@click.option("--force", is_flag=True, help="Overwrite an existing platform.yml.")
@click.pass_context
@boundary
def init(ctx: click.Context, env: str, provider: str | None, region: str | None, force: bool) -> None:
    """Scaffold inventories/ENV/: spec, group_vars and a vault of generated secrets."""
    from platform_ctl.display import console
    from platform_ctl.envinit import init_environment
    from platform_ctl.paths import Project

    project = Project.discover(ctx.obj["project_dir"])
    result = init_environment(project, env, provider=provider or ("local" if env == "local" else "digitalocean"),
                              region=region, force=force)
    for path in result.created:
        console.print(f"created {path}")
    console.print(f"next: edit inventories/{env}/platform.yml, then `platform-ctl deploy {env}`")


@main.command()
@env_argument
@click.pass_context
@boundary
def validate(ctx: click.Context, env: str) -> None:
    """Check inventories/ENV/platform.yml without touching anything."""
    environment = _env(ctx, env)
    click.echo(f"{environment.project.spec_path(env)}: valid ({len(environment.spec.hosts())} hosts)")


@main.command()
@env_argument
@click.option("--from", "from_phase", default=None, metavar="PHASE",
              help="Start at this phase even if an earlier run completed it.")
@click.option("--to", "to_phase", default=None, metavar="PHASE",
              help="Stop after this phase (e.g. connect: the hosts exist and answer SSH); the next deploy goes on "
                   "from the phase after it.")
@click.option("--check", "check_only", is_flag=True,
              help="Show the infrastructure plan and Ansible's check/diff; change nothing.")
@json_option
@click.pass_context
@boundary
def deploy(ctx: click.Context, env: str, from_phase: str | None, to_phase: str | None, check_only: bool,
           as_json: bool) -> None:
    """Create the hosts, converge every role and verify the result."""
    from platform_ctl.deploy import deploy as run_deploy
    from platform_ctl.display import reporter, show_check, show_deploy, show_verify

    environment = _env(ctx, env)
    if check_only:
        from platform_ctl.deploy import check

        with reporter(as_json) as report:
            checked = check(environment, report)
        if not as_json:
            show_check(checked)
        return
    with reporter(as_json) as report:
        result = run_deploy(environment, report, from_phase=from_phase, to_phase=to_phase)
    if not as_json:
        if result.verify is not None:
            show_verify(result.verify)
        show_deploy(result, vault_hint=str(environment.project.vault_path(env)))


@main.command()
@env_argument
@click.pass_context
@boundary
def verify(ctx: click.Context, env: str) -> None:
    """Run the shipped testinfra checks against every host; print a table per host."""
    from platform_ctl.display import show_verify
    from platform_ctl.errors import VerifyFailed
    from platform_ctl.verify import verify as run_verify

    report = run_verify(_env(ctx, env))
    show_verify(report)
    if not report.ok:
        raise VerifyFailed(f"verify {env}: {report.failed_summary()}")


@main.command()
@env_argument
@json_option
@click.pass_context
@boundary
def status(ctx: click.Context, env: str, as_json: bool) -> None:
    """Show every host and service of the environment, up or down, and the firing alerts.

    Host state and SSH come from the infrastructure; services and alerts from the environment's
    Prometheus and Alertmanager (through SSH to a monitoring host). Exits 1 when a host or a
    service is down or the monitoring cannot be read; firing alerts alone do not change it.
    """
    from platform_ctl.display import show_status
    from platform_ctl.monitoring import status_document
    from platform_ctl.operations import status_report

    report = status_report(_env(ctx, env))
    if as_json:
        click.echo(json.dumps(status_document(report.hosts, report.monitoring, report.unavailable)))
    else:
        show_status(env, report.hosts, report.monitoring, report.unavailable)
    if report.exit_code:
        sys.exit(report.exit_code)


@main.command()
@env_argument
@click.option("--with-data", is_flag=True, help="Delete volumes too (the spec's allow_volume_deletion does the same).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (an environment without data volumes).")
@click.option("--confirm", "confirm_name", default=None, metavar="ENV",
              help="The environment's name, typed: confirms destroying a DigitalOcean environment's data.")
@click.pass_context
@boundary
def destroy(ctx: click.Context, env: str, with_data: bool, yes: bool, confirm_name: str | None) -> None:
    """Remove every host and network of the environment (volumes only with --with-data)."""
    from platform_ctl.display import reporter
    from platform_ctl.operations import confirm_destroy
    from platform_ctl.operations import destroy as run_destroy

    environment = _env(ctx, env)
    confirm_destroy(environment, with_data=with_data, yes=yes, typed_name=confirm_name,
                    ask_name=lambda question: click.prompt(question, default="", show_default=False),
                    ask_yes=lambda question: click.confirm(question, abort=True))
    with reporter(False) as report:
        run_destroy(environment, report, with_data=with_data)
    click.echo(f"destroyed {env}")


@main.command()
@env_argument
@click.option("--type", "kind", type=click.Choice(["full", "diff", "incr"]), default="full", show_default=True,
              help="pgBackRest backup type (diff and incr build on the last full backup).")
@click.option("--check", "check_only", is_flag=True, help="Show the repository and what would run; change nothing.")
@json_option
@click.pass_context
@boundary
def backup(ctx: click.Context, env: str, kind: str, check_only: bool, as_json: bool) -> None:
    """Back up PostgreSQL to its pgBackRest repository now (scheduled backups run anyway)."""
    from platform_ctl.backups import backup as run_backup
    from platform_ctl.display import reporter, show_backups

    environment = _env(ctx, env)
    if check_only:
        _show_repository_plan(environment, as_json, lambda h: f"{h.host}: take a {kind} backup now", f"backup {env}")
        return
    with reporter(as_json) as report:
        hosts = run_backup(environment, report, kind)
    if not as_json:
        show_backups(f"backup {env}", hosts)


@main.command()
@env_argument
@click.option("--to", "target", default=None, metavar="TIME",
              help="Point in time (ISO 8601 with offset, e.g. 2026-11-26T01:30:00Z); default: the latest state.")
@click.option("--yes", is_flag=True, help="Confirm overwriting the data (required except on local environments).")
@click.option("--check", "check_only", is_flag=True,
              help="Show the backup the restore would start from; change nothing.")
@json_option
@click.pass_context
@boundary
def restore(ctx: click.Context, env: str, target: str | None, yes: bool, check_only: bool, as_json: bool) -> None:
    """Restore PostgreSQL from its pgBackRest repository, replacing the current data."""
    from platform_ctl.backups import parse_target, restore_plan
    from platform_ctl.backups import restore as run_restore
    from platform_ctl.display import reporter, show_backups

    environment = _env(ctx, env)
    when = parse_target(target) if target is not None else None
    if check_only:
        _show_repository_plan(environment, as_json, lambda h: restore_plan(h, when), f"restore {env}", when)
        return
    if environment.spec.provider != "local" and not yes:
        raise UsageError(
            f"restore replaces the PostgreSQL data of {env} ({environment.spec.provider}) with the backup"
            f"{' as of ' + when.isoformat() if when else ''}: add --yes to confirm; nothing was changed")
    with reporter(as_json) as report:
        hosts = run_restore(environment, report, when)
    if not as_json:
        show_backups(f"restore {env}", hosts)


def _scale_command(command: str, doc: str, example: str) -> None:
    """Register `scale-out`/`scale-in`: the same options and one core function."""

    @main.command(name=command, help=doc)
    @env_argument
    @click.argument("group")
    @click.option("--count", "count", default=None, metavar="N",
                  help=f"{example}; omitted when finishing an interrupted run.")
    @click.option("--check", "check_only", is_flag=True, help="Show the steps and hosts; change nothing.")
    @json_option
    @click.pass_context
    @boundary
    def run(ctx: click.Context, env: str, group: str, count: str | None, check_only: bool, as_json: bool) -> None:
        from platform_ctl.display import reporter, show_scale
        from platform_ctl.scaling import scale

        environment = _env(ctx, env)
        with reporter(as_json) as report:
            result = scale(environment, command, group, count, report, check=check_only)
        if not as_json:
            show_scale(env, result)


_scale_command(
    "scale-out",
    "Add hosts to GROUP (trino_worker, apps; minio: a new server pool, all nodes restarted together) with the "
    "platform serving; run again to finish an interrupted run.",
    "+N adds N hosts, N is the new total")
_scale_command(
    "scale-in",
    "Drain and remove Trino workers (GROUP trino_worker); run again to finish an interrupted run.",
    "-N removes N hosts, N is the new total")


@main.command(name="rotate-secrets")
@env_argument
@click.option("--only", "only", default=None, metavar="COMPONENT",
              help="What to rotate: minio (each client's MinIO user), minio-root (MinIO's root credentials), "
                   "postgres (each user's PostgreSQL login, the superuser's password), trino (the nodes' internal "
                   "shared secret; all restart together), passwords (Trino's users', Dagster's proxy users' "
                   "and JupyterLab's token), ca (a new CA with a trust overlap, every certificate "
                   "re-issued); omitted when finishing an interrupted run.")
@click.option("--yes", is_flag=True, help="Accept the interruption a rotation says it causes, without asking.")
@click.option("--check", "check_only", is_flag=True, help="Show the steps and what they interrupt; change nothing.")
@json_option
@click.pass_context
@boundary
def rotate_secrets(ctx: click.Context, env: str, only: str | None, yes: bool, check_only: bool, as_json: bool) -> None:
    """Generate new secrets into the vault and apply them, old ones refused at the end; run again to finish
    an interrupted run."""
    from platform_ctl.display import reporter, show_rotation
    from platform_ctl.rotation import rotate

    environment = _env(ctx, env)
    with reporter(as_json) as report:
        plan = rotate(environment, only, report, check=True)
    if not check_only and plan.disruptions and not yes:
        said = "; ".join(plan.disruptions)
        if not sys.stdin.isatty():
            raise UsageError(f"{said}: add --yes to accept that; nothing was changed")
        click.confirm(f"{said}. Go on?", abort=True)
    if check_only:
        result = plan
    else:
        with reporter(as_json) as report:
            result = rotate(environment, only, report)
    if not as_json:
        show_rotation(env, result)


def _show_repository_plan(environment: Environment, as_json: bool, plan: Callable[[HostReport], str],
                          title: str, target: datetime | None = None) -> None:
    """``backup --check`` / ``restore --check``: the repository now and the plan per host."""
    from platform_ctl.backups import repository
    from platform_ctl.display import console, reporter, show_backups

    with reporter(as_json) as report:
        hosts = repository(environment, report, target)
    lines = [plan(h) for h in hosts]
    if as_json:
        click.echo(json.dumps({"plan": lines, "changed": False}))
        return
    show_backups(f"{title} --check: the repository now", hosts)
    for line in lines:
        console.print(f"would: {line}")
    console.print("nothing was changed (--check)")


@main.command()
@env_argument
@json_option
@click.pass_context
@boundary
def history(ctx: click.Context, env: str, as_json: bool) -> None:
    """List what the commands that change the environment did (deploy, scale, rotations, backup, restore,
    destroy): one row per run, oldest first."""
    from dataclasses import asdict

    from platform_ctl.display import show_history
    from platform_ctl.history import runs
    from platform_ctl.paths import Project

    recorded = runs(Project.discover(ctx.obj["project_dir"]).state_dir(env))
    if as_json:
        click.echo(json.dumps([asdict(r) for r in recorded], default=str))
    else:
        show_history(env, recorded)


@main.command()
@env_argument
@json_option
@click.pass_context
@boundary
def endpoints(ctx: click.Context, env: str, as_json: bool) -> None:
    """List how to reach each service of the deployed environment: URL, user, credential, the CA to trust."""
    from platform_ctl.display import show_endpoints
    from platform_ctl.reach import endpoints as list_endpoints

    found = list_endpoints(_env(ctx, env))
    if as_json:
        click.echo(json.dumps(found.document()))
    else:
        show_endpoints(found)


@main.command()
@env_argument
@click.argument("service")
@click.pass_context
@boundary
def credentials(ctx: click.Context, env: str, service: str) -> None:
    """Print SERVICE's credential (password or token) from the environment's vault, alone on one line."""
    from platform_ctl.reach import credential

    click.echo(credential(_env(ctx, env), service))


@main.command(context_settings={"ignore_unknown_options": True})
@env_argument
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@boundary
def ssh(ctx: click.Context, env: str, host: str, command: tuple[str, ...]) -> None:
    """Open a shell on HOST (or run COMMAND there) as the admin user."""
    from platform_ctl.operations import ssh_argv

    argv = ssh_argv(_env(ctx, env), host, command)
    os.execvp(argv[0], argv)  # noqa: S606 - replaces this process with the user's ssh session


if __name__ == "__main__":
    main()

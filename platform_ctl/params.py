"""Options shared by commands, defined once. Each can also come from a PLATFORM_* variable."""

from __future__ import annotations

from pathlib import Path

import click

from platform_ctl.errors import PlatformCtlError
from platform_ctl.paths import check_env_name


def _env_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_env_name(value)
    except PlatformCtlError as exc:
        raise click.BadParameter(exc.message) from None


env_argument = click.argument("env", callback=_env_name, metavar="ENV")
project_dir_option = click.option(
    "--project-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PLATFORM_PROJECT_DIR",
    default=None, help="Directory holding inventories/ (default: the nearest one above the cwd).",
)
debug_option = click.option("--debug", is_flag=True, envvar="PLATFORM_DEBUG", help="Show tracebacks.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable events (JSON lines).")

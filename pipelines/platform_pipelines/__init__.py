"""The platform's example Dagster code location (roles/dagster serves it by default).

Loaded by ``dagster code-server start --module-name platform_pipelines`` on the apps hosts, from
the dagster wheelhouse's virtualenv:

- ``platform_heartbeat`` (job ``heartbeat``): an asset any operator may materialize to see a run go
  through the queue, the daemon and the code server into the run storage, and, where they are
  configured, reach Trino as the pipelines user and list the landing bucket with its key (so a run
  fails when a credential of the code server is wrong); the Dagster role's Molecule scenario (no
  Trino, no MinIO) and rotate-secrets' end-to-end test launch it.
- the orders pipeline (``orders.py``, job ``orders``): CSV files landing in MinIO, loaded into
  Iceberg and transformed by the dbt project in ``pipelines/dbt`` on Trino, started by the
  ``landing_orders_sensor``.

A user's own code location replaces this package (roles/dagster: dagster_code_location_src,
dagster_code_location_module).
"""

from __future__ import annotations

import datetime
import socket
import sys
from pathlib import Path

from dagster import Definitions, MaterializeResult, asset, define_asset_job
from dagster_dbt import DbtCliResource

from .landing import landing_orders
from .orders import DBT_PROJECT, landing_orders_sensor, orders_dbt, orders_job
from .settings import Settings


@asset(description="The host and time of the run that materialized it, the Trino user and the landing objects it "
                   "saw: proof that runs launch and complete with the code server's credentials.")
def platform_heartbeat() -> MaterializeResult:
    settings = Settings.from_environment()
    metadata: dict[str, str | int] = {
        "host": socket.gethostname(),
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if settings.trino_password:
        cursor = settings.trino().cursor()
        cursor.execute("SELECT current_user")
        metadata["trino_user"] = cursor.fetchall()[0][0]
    if settings.landing_endpoint:
        metadata["landing_objects"] = len(settings.landing_objects())
    return MaterializeResult(metadata=metadata)


heartbeat_job = define_asset_job("heartbeat", selection=[platform_heartbeat])

defs = Definitions(
    assets=[platform_heartbeat, landing_orders, orders_dbt],
    jobs=[heartbeat_job, orders_job],
    sensors=[landing_orders_sensor],
    # dbt from the same virtualenv as the code server (its bin/ is not on the units' PATH).
    resources={"dbt": DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=str(Path(sys.executable).parent / "dbt"))},
)

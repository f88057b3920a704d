"""The platform's example Dagster code location (roles/dagster serves it by default).

Loaded by ``dagster code-server start --module-name platform_pipelines`` on the apps hosts, from
the dagster wheelhouse's virtualenv. ``platform_heartbeat`` is an asset any operator may
materialize to see a run go through the queue, the daemon and the code server into the run
storage; the Dagster role's Molecule scenario launches it. A user's own code location replaces
this package (roles/dagster: dagster_code_location_src, dagster_code_location_module).
"""

from __future__ import annotations

import datetime
import socket

from dagster import Definitions, MaterializeResult, asset, define_asset_job


@asset(description="The host and time of the run that materialized it: proof that runs launch and complete.")
def platform_heartbeat() -> MaterializeResult:
    return MaterializeResult(metadata={
        "host": socket.gethostname(),
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    })


heartbeat_job = define_asset_job("heartbeat", selection=[platform_heartbeat])

defs = Definitions(assets=[platform_heartbeat], jobs=[heartbeat_job])

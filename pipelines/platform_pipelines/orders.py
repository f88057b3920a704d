"""The orders pipeline: landing/orders, then the dbt project (pipelines/dbt) on Trino, started by
a sensor when a new object lands.

The dbt manifest is built by roles/dagster at deploy time (``dbt parse``, offline) into
PLATFORM_DBT_MANIFEST_DIR (the project's target/ when unset, as in development); each run's dbt
writes its own target directory under PLATFORM_DBT_RUNS_DIR. ``dbt build`` runs each model's
tests right after it, so a failing staging test skips the marts: a bad file fails the run and
leaves the published marts as they were.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import hashlib
import json
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from .landing import landing_orders
from .settings import Settings

DBT_PROJECT = DbtProject(project_dir=Path(__file__).resolve().parent.parent / "dbt",
                         target_path=Settings.from_environment().dbt_manifest_dir)
DBT_PROJECT.prepare_if_dev()


@dbt_assets(manifest=DBT_PROJECT.manifest_path, project=DBT_PROJECT, name="orders_dbt")
def orders_dbt(context: AssetExecutionContext, dbt: DbtCliResource):
    runs = Settings.from_environment().dbt_runs_dir
    yield from dbt.cli(["build"], context=context, target_path=runs / context.run.run_id).stream()


orders_job = define_asset_job("orders", selection=AssetSelection.assets(landing_orders).downstream(),
                              description="Load the landing bucket's new orders, then build and test the dbt models.")


@sensor(job=orders_job, minimum_interval_seconds=15, default_status=DefaultSensorStatus.RUNNING,
        description="One run of the orders job when objects under s3://landing/orders/ are new or replaced.")
def landing_orders_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    settings = Settings.from_environment()
    if not settings.landing_endpoint:
        return SkipReason("no landing store in this environment (PLATFORM_LANDING_ENDPOINT is empty)")
    objects = settings.landing_objects()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    new = sorted(key for key, etag in objects.items() if seen.get(key) != etag)
    # The cursor follows the bucket, removals included, so a file put back later counts as new.
    context.update_cursor(json.dumps(objects, sort_keys=True))
    if not new:
        return SkipReason(f"no new object among {len(objects)} under s3://{settings.landing_bucket}/"
                          f"{settings.landing_prefix}")
    run_key = hashlib.sha256(json.dumps({k: objects[k] for k in new}, sort_keys=True).encode()).hexdigest()[:32]
    return RunRequest(run_key=run_key, tags={"landing/objects": ",".join(new)[:1000]})

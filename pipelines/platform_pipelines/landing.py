"""The landing/orders asset: CSV objects under s3://landing/orders/ mirrored into iceberg.landing.orders.

Every value is kept as text with the object it came from (dbt's staging types and checks it). A run
loads the objects not loaded yet, and drops the rows of objects since removed or replaced, so that
replacing or deleting a bad file is how a user unblocks the pipeline.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import csv
import datetime
import io

from dagster import AssetExecutionContext, Failure, MaterializeResult, asset

from .settings import Settings

#: The CSV's columns, in the landing table's order; a file may have more, never fewer.
COLUMNS = ("order_id", "customer_id", "order_date", "status", "amount")
TABLE = "iceberg.landing.orders"
#: Rows per INSERT statement (one statement per batch, not one per row).
BATCH = 500

DDL = (
    "CREATE SCHEMA IF NOT EXISTS iceberg.landing",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{c} varchar" for c in COLUMNS)
    + ", source_file varchar, source_etag varchar, loaded_at timestamp(6) with time zone)",
)


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def read_rows(key: str, body: bytes) -> list[tuple[str | None, ...]]:
    """The file's rows in COLUMNS order; a file without a header naming every column is refused."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Failure(f"s3 object {key} is not UTF-8 text: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise Failure(f"s3 object {key}: its header lacks {', '.join(missing)} "
                      f"(a landing CSV has the columns {', '.join(COLUMNS)})")
    return [tuple(row.get(c) for c in COLUMNS) for row in reader]


@asset(key_prefix=["landing"], name="orders", group_name="orders",
       description="Every CSV under the landing bucket's orders/ prefix, one text row per line "
                   "(iceberg.landing.orders).")
def landing_orders(context: AssetExecutionContext) -> MaterializeResult:
    settings = Settings.from_environment()
    objects = settings.landing_objects()
    cursor = settings.trino().cursor()
    for statement in DDL:
        cursor.execute(statement)
        cursor.fetchall()
    cursor.execute(f"SELECT DISTINCT source_file, source_etag FROM {TABLE}")  # noqa: S608 (a constant)
    loaded = {(key, etag) for key, etag in cursor.fetchall()}
    stale = sorted({key for key, etag in loaded if objects.get(key) != etag})
    if stale:
        context.log.info(f"dropping the rows of {len(stale)} removed or replaced object(s): {', '.join(stale)}")
        # S608: every value is a quoted literal (_literal doubles its quotes); Trino's client has no bulk binding.
        cursor.execute(f"DELETE FROM {TABLE} WHERE source_file IN ({', '.join(map(_literal, stale))})")  # noqa: S608
        cursor.fetchall()
    new = sorted(key for key, etag in objects.items() if (key, etag) not in loaded)
    at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    rows = 0
    s3 = settings.s3()
    for key in new:
        body = s3.get_object(Bucket=settings.landing_bucket, Key=key)["Body"].read()
        lines = read_rows(key, body)
        tail = f"{_literal(key)}, {_literal(objects[key])}, TIMESTAMP '{at}'"
        for start in range(0, len(lines), BATCH):
            values = ", ".join("(" + ", ".join(map(_literal, line)) + f", {tail})"
                               for line in lines[start:start + BATCH])
            cursor.execute(f"INSERT INTO {TABLE} VALUES {values}")  # noqa: S608 (quoted literals, as above)
            cursor.fetchall()
        rows += len(lines)
        context.log.info(f"loaded {len(lines)} rows of s3://{settings.landing_bucket}/{key}")
    return MaterializeResult(metadata={"objects": len(objects), "loaded_objects": len(new), "loaded_rows": rows,
                                       "dropped_objects": len(stale), "loaded_at": at})

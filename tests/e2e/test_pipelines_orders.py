"""The example pipelines on the shared e2e environment: files landing in MinIO become Iceberg marts.

A generated CSV is put into s3://landing/orders/ with the root credentials (a producer's); Dagster's
landing sensor launches one run of the `orders` job, which loads it into iceberg.landing.orders and
runs `dbt build` on Trino as the pipelines user. The marts are then read back as admin and their
counts and sums compared with the generated source. A second file merges into the orders mart (no
duplicate, a new snapshot, the old values readable at the earlier one); a bad file fails a dbt test
and leaves the marts' snapshots as they were. Then an analyst's JupyterLab kernels (Python and R,
over the token-authenticated websocket) read those marts with the same figures and can change
nothing. Runs after test_monitoring.py (pytest orders files by name); the files are removed at the
end of the first test, so that no later test finds a run to launch.
"""

from __future__ import annotations

import csv
import datetime
import io
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Cluster, Dagster

pytestmark = pytest.mark.e2e

BUCKET = "landing"
STATUSES = ("placed", "shipped", "returned")
#: A run loads, then builds and tests four dbt models on Trino: minutes on a busy two-core machine.
RUN_S = 600


def _orders(ids: range, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    start = datetime.date(2026, 11, 1)
    return [{"order_id": str(i), "customer_id": str(rng.randint(1, 40)),
             "order_date": (start + datetime.timedelta(days=rng.randint(0, 29))).isoformat(),
             "status": rng.choice(STATUSES), "amount": f"{rng.randint(100, 99999) / 100:.2f}"} for i in ids]


def _csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _run_for(dagster: Dagster, key: str, known: set[str]) -> dict[str, Any]:
    """The one run the sensor launched for ``key``, once it has ended (its id not in ``known``)."""
    runs: list[dict[str, Any]] = []

    def ended() -> bool:
        nonlocal runs
        runs = [r for r in dagster.runs("orders")
                if r["id"] not in known and key in r["tags"].get("landing/objects", "").split(",")]
        return bool(runs) and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)

    deadline = time.monotonic() + RUN_S
    while not ended():
        assert time.monotonic() < deadline, f"no run of the orders job for {key} ended within {RUN_S} s: {runs}"
        time.sleep(3)
    assert len(runs) == 1, f"the sensor launched {len(runs)} runs for {key}: {runs}"
    return runs[0]


def _marts(cluster: Cluster, ids: range, version: str = "") -> dict[str, Any]:
    """Rows, distinct orders and the sum of amounts of the orders mart among ``ids`` (at a snapshot)."""
    at = f" FOR VERSION AS OF {version}" if version else ""
    (count, distinct, total), = cluster.query(
        f"SELECT count(*), count(DISTINCT order_id), coalesce(sum(amount), 0) FROM iceberg.marts.orders{at} "
        f"WHERE order_id BETWEEN {ids.start} AND {ids.stop - 1}")
    return {"count": count, "distinct": distinct, "sum": total}


def _totals(cluster: Cluster) -> tuple[int, Decimal]:
    """The orders and revenue of daily_revenue in all ((0, 0) before its first build)."""
    exists = cluster.query("SELECT count(*) FROM iceberg.information_schema.tables "
                           "WHERE table_schema = 'marts' AND table_name = 'daily_revenue'")
    if exists == [[0]]:
        return 0, Decimal("0")
    (orders, revenue), = cluster.query("SELECT coalesce(sum(orders), 0), coalesce(sum(revenue), 0) "
                                       "FROM iceberg.marts.daily_revenue")
    return orders, revenue


def _snapshot(cluster: Cluster, table: str) -> str:
    return str(cluster.query(f'SELECT snapshot_id FROM iceberg.marts."{table}$snapshots" '
                             "ORDER BY committed_at DESC LIMIT 1")[0][0])


def _expected(rows: list[dict[str, str]]) -> dict[str, Any]:
    latest = {r["order_id"]: r for r in rows}  # a later file's row replaces the earlier one
    return {"count": len(latest), "distinct": len(latest),
            "sum": sum((Decimal(r["amount"]) for r in latest.values()), Decimal("0")),
            "revenue": sum((Decimal(r["amount"]) for r in latest.values() if r["status"] != "returned"),
                           Decimal("0"))}


def _figures(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: expected[k] for k in ("count", "distinct", "sum")}


def test_landing_files_become_iceberg_marts_through_the_sensor_and_dbt(cluster: Cluster):
    dagster = Dagster(cluster)
    minio = cluster.minio()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    keys = [f"orders/{stamp}-{name}.csv" for name in ("first", "second", "bad")]
    # Order ids of this run only, so that the figures hold on an environment with earlier marts.
    base = int(time.time()) * 10_000
    ids = range(base + 1, base + 10_000)
    first = _orders(range(base + 1, base + 301), seed=1)
    # The second file corrects 60 orders of the first and adds 120.
    second = [{**row, "amount": f"{Decimal(row['amount']) + Decimal('1.25'):.2f}", "status": "shipped"}
              for row in first[240:]] + _orders(range(base + 301, base + 421), seed=2)
    bad = [{**row, "order_id": str(base + 1000 + i), "amount": "-5.00"} for i, row in enumerate(first[:3])]
    known = {r["id"] for r in dagster.runs("orders")}
    earlier = _totals(cluster)
    try:
        # 1. A file lands: one run, every dbt test passing, the marts equal to the source.
        body = _csv(first)
        minio.put_object(BUCKET, keys[0], io.BytesIO(body), len(body))
        run = _run_for(dagster, keys[0], known)
        checks = dagster.check_results(run["id"])
        assert run["status"] == "SUCCESS", run
        assert len(checks) == 11, checks
        assert all(checks.values()), checks
        expected = _expected(first)
        assert _marts(cluster, ids) == _figures(expected)
        assert _totals(cluster) == (earlier[0] + expected["count"], earlier[1] + expected["revenue"])
        # The marts are Parquet files of the warehouse bucket.
        paths = [p for (p,) in cluster.query('SELECT DISTINCT "$path" FROM iceberg.marts.orders')]
        assert paths, "the orders mart has no data file"
        assert all(p.startswith("s3://warehouse/") and p.endswith(".parquet") for p in paths), paths
        stored = {o.object_name for o in minio.list_objects("warehouse", prefix=paths[0][len("s3://warehouse/"):]
                                                            .rsplit("/", 1)[0] + "/", recursive=True)}
        assert {p[len("s3://warehouse/"):] for p in paths} <= stored
        before = _snapshot(cluster, "orders")

        # 2. A second file merges: corrected rows replaced, new ones added, a new snapshot; the
        #    earlier state still readable at its snapshot.
        known.add(run["id"])
        body = _csv(second)
        minio.put_object(BUCKET, keys[1], io.BytesIO(body), len(body))
        run = _run_for(dagster, keys[1], known)
        assert run["status"] == "SUCCESS", run
        expected = _expected(first + second)
        assert _marts(cluster, ids) == _figures(expected)
        published = {"orders": _snapshot(cluster, "orders"), "daily_revenue": _snapshot(cluster, "daily_revenue")}
        assert published["orders"] != before
        assert _marts(cluster, ids, before) == _figures(_expected(first))
        assert _totals(cluster) == (earlier[0] + expected["count"], earlier[1] + expected["revenue"])

        # 3. A bad file (negative amounts): a dbt test fails, the run fails, the marts stay as published.
        known.add(run["id"])
        body = _csv(bad)
        minio.put_object(BUCKET, keys[2], io.BytesIO(body), len(body))
        run = _run_for(dagster, keys[2], known)
        checks = dagster.check_results(run["id"])
        assert run["status"] == "FAILURE", run
        assert checks.get("non_negative_stg_orders_amount") is False, checks
        assert {t: _snapshot(cluster, t) for t in published} == published
        assert _marts(cluster, ids) == _figures(expected)
    finally:
        for key in keys:
            minio.remove_object(BUCKET, key)


KERNEL_EXEC = Path(__file__).resolve().parents[2] / "molecule" / "apps" / "tests" / "kernel_exec.py"

PYTHON_CHECKS = """
import os
import pandas as pd
import s3fs
import trino

user = os.environ["PLATFORM_TRINO_USER"]
conn = trino.dbapi.connect(host=os.environ["PLATFORM_TRINO_HOST"], port=int(os.environ["PLATFORM_TRINO_PORT"]),
                           http_scheme="https", user=user, auth=trino.auth.BasicAuthentication(user, PASSWORD),
                           verify=os.environ["PLATFORM_CA_BUNDLE"])
cursor = conn.cursor()
cursor.execute("SELECT order_id, amount FROM iceberg.marts.orders")
orders = pd.DataFrame(cursor.fetchall(), columns=[c[0] for c in cursor.description])
print("user", user)
print("rows", len(orders))
print("sum", orders["amount"].sum())
try:
    cursor.execute("DROP TABLE iceberg.marts.orders")
    cursor.fetchall()
    print("drop allowed")
except trino.exceptions.TrinoUserError as refused:
    print("drop", refused.error_name)
fs = s3fs.S3FileSystem()
print("listed", len(fs.ls("warehouse")) > 0)
try:
    with fs.open("warehouse/jupyter-write-check", "wb") as f:
        f.write(b"written from a notebook")
    print("write allowed")
except PermissionError:
    print("write refused")
"""

R_COUNT = """
suppressPackageStartupMessages({
  library(curl)
  library(jsonlite)
})
get <- function(url, body = NULL) {
  h <- new_handle(userpwd = paste0(Sys.getenv("PLATFORM_TRINO_USER"), ":", PASSWORD), httpauth = 1L,
                  cainfo = Sys.getenv("PLATFORM_CA_BUNDLE"))
  if (!is.null(body)) handle_setopt(h, customrequest = "POST", postfields = body)
  fromJSON(rawToChar(curl_fetch_memory(url, handle = h)$content))
}
answer <- get(sprintf("https://%s:%s/v1/statement", Sys.getenv("PLATFORM_TRINO_HOST"),
                      Sys.getenv("PLATFORM_TRINO_PORT")), "SELECT count(*) FROM iceberg.marts.orders")
rows <- NULL
repeat {
  if (!is.null(answer$error)) stop(answer$error$message)
  if (!is.null(answer$data)) rows <- answer$data
  if (is.null(answer$nextUri)) break
  answer <- get(answer$nextUri)
}
cat("count", rows[1, 1], "\\n")
"""


def _kernel(cluster: Cluster, kernel: str, code: str) -> str:
    """``code`` run in a new ``kernel`` of apps1's JupyterLab, over its token-authenticated websocket."""
    apps = sorted(h for h in cluster.addresses if h.startswith("apps"))[0]
    done = cluster.deployed.exec(
        apps, "env", f"JUPYTER_TOKEN={cluster.vault['vault_jupyterlab_token']}",
        "/opt/platform/jupyter/current/bin/python", "-c", KERNEL_EXEC.read_text(),
        f"{cluster.addresses[apps]}:8888", kernel, code, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_analysts_read_the_marts_from_jupyterlab_kernels_and_change_nothing(cluster: Cluster):
    # After the test above: the marts it published, as admin sees them.
    (count, total), = cluster.query("SELECT count(*), sum(amount) FROM iceberg.marts.orders")
    assert count > 0
    password = repr(cluster.vault["vault_trino_analyst_password"])
    said = dict(line.split(" ", 1) for line in
                _kernel(cluster, "python3", f"PASSWORD = {password}\n{PYTHON_CHECKS}").strip().splitlines())
    # The kernel is the analyst's: it reads the marts into pandas with admin's figures, cannot drop a
    # mart, and with MinIO's jupyter user lists the warehouse but cannot write to it.
    assert said == {"user": "analyst", "rows": str(count), "sum": str(total), "drop": "PERMISSION_DENIED",
                    "listed": "True", "write": "refused"}, said
    assert cluster.query("SELECT count(*), sum(amount) FROM iceberg.marts.orders") == [[count, total]]
    assert not any(o.object_name == "jupyter-write-check" for o in cluster.minio().list_objects("warehouse"))
    # The R kernel counts the same rows through Trino's HTTP API.
    out = _kernel(cluster, "ir", f"PASSWORD <- {password.replace(chr(39), chr(34))}\n{R_COUNT}")
    assert out.split() == ["count", str(count)], out

"""Trino on the shared e2e environment: SQL over Iceberg tables in MinIO with the catalog in PostgreSQL.

Through the `trino` Python client over HTTPS with the vault's admin password, TLS verified against
the environment's CA (a wrong password refused is the Molecule trino scenario's). Runs after
test_postgresql_backups.py and before test_teardown_destroy.py (pytest orders files by name).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from e2e_support import Cluster
from trino.exceptions import TrinoUserError

pytestmark = pytest.mark.e2e


def test_every_node_is_active(cluster: Cluster, deployed):
    rows = cluster.query("SELECT coordinator, state FROM system.runtime.nodes")
    workers = deployed.spec["groups"]["trino_worker"]["count"]
    assert sorted(rows) == sorted([[True, "active"]] + [[False, "active"]] * workers)


def test_iceberg_table_lives_in_minio_with_its_catalog_in_postgresql(cluster: Cluster):
    cluster.query("CREATE SCHEMA IF NOT EXISTS iceberg.e2e WITH (location = 's3://warehouse/e2e')")
    cluster.query("DROP TABLE IF EXISTS iceberg.e2e.orders")
    cluster.query("CREATE TABLE iceberg.e2e.orders (id bigint, amount decimal(10, 2)) WITH (format = 'PARQUET')")
    cluster.query("INSERT INTO iceberg.e2e.orders VALUES (1, 10.00), (2, 20.00), (3, 30.00)")
    first = cluster.query('SELECT snapshot_id FROM iceberg.e2e."orders$snapshots" ORDER BY committed_at DESC LIMIT 1')
    cluster.query("UPDATE iceberg.e2e.orders SET amount = amount * 2 WHERE id = 2")
    assert cluster.query("SELECT id, amount FROM iceberg.e2e.orders ORDER BY id") == [
        [1, Decimal("10.00")], [2, Decimal("40.00")], [3, Decimal("30.00")]]
    # Time travel to the snapshot before the update.
    assert cluster.query(f"SELECT id, amount FROM iceberg.e2e.orders FOR VERSION AS OF {first[0][0]} ORDER BY id") == [
        [1, Decimal("10.00")], [2, Decimal("20.00")], [3, Decimal("30.00")]]

    # Data and metadata files are objects of the warehouse bucket.
    keys = [o.object_name for o in cluster.minio().list_objects("warehouse", prefix="e2e/", recursive=True)]
    assert any(k.endswith(".parquet") for k in keys), keys
    assert any(k.endswith(".metadata.json") for k in keys), keys
    # The table is a row of Iceberg's JDBC catalog in PostgreSQL, pointing at the current metadata
    # (the example pipeline has tables named orders too, in the landing and marts namespaces).
    row = cluster.psql("iceberg_catalog", "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"
                                          " WHERE table_namespace = 'e2e' AND table_name = 'orders'")
    namespace, name, location = row.split("|")
    assert (namespace, name) == ("e2e", "orders")
    assert location.startswith("s3://warehouse/e2e/")


def test_each_user_reaches_what_the_access_rules_give_it(cluster: Cluster):
    # roles/trino's rules.json: pipelines (dbt's writer) builds a mart; the analyst reads it, owns the
    # sandbox, and can neither change nor drop the mart; pipelines cannot write the sandbox; monitoring
    # runs no query at all.
    cluster.query("CREATE SCHEMA IF NOT EXISTS iceberg.marts", user="pipelines")
    cluster.query("DROP TABLE IF EXISTS iceberg.marts.access_check", user="pipelines")
    cluster.query("CREATE TABLE iceberg.marts.access_check AS SELECT * FROM tpch.tiny.nation", user="pipelines")
    assert cluster.query("SELECT count(*) FROM iceberg.marts.access_check", user="analyst") == [[25]]
    cluster.query("CREATE SCHEMA IF NOT EXISTS iceberg.sandbox", user="analyst")
    refused = {"analyst": ["DROP TABLE iceberg.marts.access_check",
                           "INSERT INTO iceberg.marts.access_check SELECT * FROM tpch.tiny.nation",
                           "CREATE TABLE iceberg.marts.analysts_own (id bigint)"],
               "pipelines": ["CREATE SCHEMA iceberg.not_a_pipelines_schema",
                             "CREATE TABLE iceberg.sandbox.pipelines_own (id bigint)"],
               "monitoring": ["SELECT 1"]}
    for user, statements in refused.items():
        for sql in statements:
            with pytest.raises(TrinoUserError, match="Access Denied"):
                cluster.query(sql, user=user)
    cluster.query("DROP TABLE IF EXISTS iceberg.sandbox.nations", user="analyst")
    cluster.query("CREATE TABLE iceberg.sandbox.nations AS SELECT nationkey FROM iceberg.marts.access_check",
                  user="analyst")
    assert cluster.query("SELECT count(*) FROM iceberg.sandbox.nations", user="analyst") == [[25]]
    cluster.query("DROP TABLE iceberg.sandbox.nations", user="analyst")
    cluster.query("DROP TABLE iceberg.marts.access_check", user="pipelines")


# TPC-H's published answers at scale factor 1 (the qualification database), Q1 and Q6 with the
# specification's validation parameters.
Q1 = """
SELECT returnflag, linestatus, sum(quantity), sum(extendedprice),
       sum(extendedprice * (1 - discount)), sum(extendedprice * (1 - discount) * (1 + tax)),
       avg(quantity), avg(extendedprice), avg(discount), count(*)
FROM tpch.sf1.lineitem
WHERE shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY
GROUP BY returnflag, linestatus ORDER BY returnflag, linestatus
"""
Q1_ANSWER = [
    ["A", "F", "37734107.00", "56586554400.73", "53758257134.87", "55909065222.83", "25.52", "38273.13", "0.05",
     1478493],
    ["N", "F", "991417.00", "1487504710.38", "1413082168.05", "1469649223.19", "25.52", "38284.47", "0.05", 38854],
    ["N", "O", "74476040.00", "111701729697.74", "106118230307.61", "110367043872.50", "25.50", "38249.12", "0.05",
     2920374],
    ["R", "F", "37719753.00", "56568041380.90", "53741292684.60", "55889619119.83", "25.51", "38250.85", "0.05",
     1478870],
]
Q6 = """
SELECT sum(extendedprice * discount) FROM tpch.sf1.lineitem
WHERE shipdate >= DATE '1994-01-01' AND shipdate < DATE '1995-01-01'
  AND discount BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND quantity < 24
"""


def _cents(value) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01'))}"


def test_tpch_q1_and_q6_return_the_published_answers(cluster: Cluster):
    rows = cluster.query(Q1)
    assert [[r[0], r[1], *(_cents(v) for v in r[2:9]), r[9]] for r in rows] == Q1_ANSWER
    assert _cents(cluster.query(Q6)[0][0]) == "123141078.23"

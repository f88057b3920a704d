-- The published orders: new and changed orders merged in by order_id (Iceberg MERGE), each run one
-- new snapshot; an earlier state stays readable with FOR VERSION AS OF / FOR TIMESTAMP AS OF.
-- views_enabled false: the new rows go through a temporary table, since the Iceberg JDBC catalog has
-- no views (dbt-trino's default for a merge is a temporary view).
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='order_id',
    on_schema_change='fail',
    on_table_exists='replace',
    views_enabled=false,
) }}

select order_id, customer_id, order_date, status, amount, loaded_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where loaded_at > (select coalesce(max(loaded_at), timestamp '1970-01-01 00:00:00 UTC') from {{ this }})
{% endif %}

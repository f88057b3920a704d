-- Typed orders, one row per order: the newest load of an order wins (a later file corrects an earlier
-- one). A value that does not parse becomes null, which the tests in schema.yml refuse.
with typed as (
    select
        try_cast(trim(order_id) as bigint) as order_id,
        try_cast(trim(customer_id) as bigint) as customer_id,
        try_cast(trim(order_date) as date) as order_date,
        lower(trim(status)) as status,
        try_cast(trim(amount) as decimal(12, 2)) as amount,
        source_file,
        loaded_at,
        row_number() over (
            partition by trim(order_id) order by loaded_at desc, source_file desc
        ) as newest
    from {{ source('landing', 'orders') }}
)

select order_id, customer_id, order_date, status, amount, source_file, loaded_at
from typed
where newest = 1

-- Revenue per day of the published orders (returned orders count for nothing), rebuilt from the
-- orders mart by each run: CREATE OR REPLACE keeps the table's snapshot history.
{{ config(materialized='table', on_table_exists='replace') }}

select
    order_date,
    count(*) as orders,
    sum(case when status = 'returned' then 0 else amount end) as revenue
from {{ ref('orders') }}
group by order_date

WITH revenue0 AS (
    SELECT suppkey AS supplier_no,
           sum(CAST(extendedprice AS decimal(12, 2)) * (1 - CAST(discount AS decimal(12, 2)))) AS total_revenue
    FROM lineitem
    WHERE shipdate >= DATE '1996-01-01'
      AND shipdate < DATE '1996-01-01' + INTERVAL '3' MONTH
    GROUP BY suppkey
)
SELECT s.suppkey, s.name, s.address, s.phone, r.total_revenue
FROM supplier AS s, revenue0 AS r
WHERE s.suppkey = r.supplier_no
  AND r.total_revenue = (SELECT max(total_revenue) FROM revenue0)
ORDER BY s.suppkey

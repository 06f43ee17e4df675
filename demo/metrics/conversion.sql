-- A unit converts when it makes at least one purchase (aggregation: max of the indicator).
select
    unit_id,
    occurred_at as measured_at,
    1 as value
from {{ ref('stg_events') }}
where event_type = 'purchase'

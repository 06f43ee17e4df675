-- Revenue per purchase: the ratio of a unit's revenue to its purchases, summed over units (delta method).
select
    unit_id,
    occurred_at as measured_at,
    value,
    1 as denominator
from {{ ref('stg_events') }}
where event_type = 'purchase'

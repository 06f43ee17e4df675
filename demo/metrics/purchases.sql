-- Number of purchases; each purchase counts one.
select
    unit_id,
    occurred_at as measured_at,
    1 as value
from {{ ref('stg_events') }}
where event_type = 'purchase'

-- Sessions, for day-7 retention: a unit is retained when it has one in its day-7 window.
select
    unit_id,
    occurred_at as measured_at,
    1 as value
from {{ ref('stg_events') }}
where event_type = 'session'

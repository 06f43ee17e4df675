-- Revenue per user: the revenue of every purchase (heavy-tailed; winsorization comes with the metric settings).
select
    unit_id,
    occurred_at as measured_at,
    value
from {{ ref('stg_events') }}
where event_type = 'purchase'

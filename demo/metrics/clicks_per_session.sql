-- Clicks per session: clicks count in the numerator, sessions in the denominator.
select
    unit_id,
    occurred_at as measured_at,
    case when event_type = 'click' then 1 else 0 end as value,
    case when event_type = 'session' then 1 else 0 end as denominator
from {{ ref('stg_events') }}
where event_type in ('click', 'session')

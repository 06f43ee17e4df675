-- Days with a session: the day number of each session, counted distinct per unit.
select
    unit_id,
    occurred_at as measured_at,
    {{ dbt.datediff("cast('2000-01-01' as date)", 'cast(occurred_at as date)', 'day') }} as value  -- noqa: LT05
from {{ ref('stg_events') }}
where event_type = 'session'

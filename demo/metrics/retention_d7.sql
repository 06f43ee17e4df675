-- Sessions, for day-7 retention: a unit is retained when it has one in its day-7 window.
select
    unit_id,
    measured_at,
    value
from {{ ref('sessions_per_user') }}

-- Minutes of audio played; one measurement per streaming session.
select
    unit_id,
    occurred_at as measured_at,
    value
from {{ ref('stg_events') }}
where event_type = 'stream'

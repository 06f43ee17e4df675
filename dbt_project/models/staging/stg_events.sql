-- Clean, deduplicated product events.
select
    event_id,
    unit_id,
    event_type,
    occurred_at,
    value,
    logged_at
from {{ ref('stg_events_checked') }}
where quarantine_reason is null

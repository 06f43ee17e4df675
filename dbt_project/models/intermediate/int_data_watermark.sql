-- The last complete day of data: every as-of date is at most this day.
select cast(max(occurred_at) as date) as watermark_date
from {{ ref('stg_events') }}

-- Orders per user after exposure: one row per order (unit_id, measured_at, value).
select
    user_id as unit_id,
    ordered_at as measured_at,
    1 as value
from {{ source('facts', 'orders') }}

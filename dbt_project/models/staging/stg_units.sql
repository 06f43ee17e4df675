-- Clean units, one row each, with their dimensions.
select
    unit_id,
    country,
    platform,
    signup_date,
    cast({{ dbt.date_trunc('year', 'signup_date') }} as date) as signup_cohort
from {{ ref('stg_units_checked') }}
where quarantine_reason is null

-- Clean units, one row each, with their dimensions (and the project's own: see stg_units_checked).
select
    unit_id,
    country,
    platform,
    signup_date,
    {%- for dimension in env_var('VERDICT_UNIT_DIMENSIONS', '').split(',') | reject('equalto', '') %}
        {{ dimension }},
    {%- endfor %}
    cast({{ dbt.date_trunc('year', 'signup_date') }} as date) as signup_cohort
from {{ ref('stg_units_checked') }}
where quarantine_reason is null

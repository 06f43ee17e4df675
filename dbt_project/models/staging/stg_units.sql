with source as (
    select * from {{ source('raw', 'units') }}
)

select
    cast(unit_id as {{ dbt.type_string() }}) as unit_id,
    coalesce(cast(country as {{ dbt.type_string() }}), 'unknown') as country,
    coalesce(cast(platform as {{ dbt.type_string() }}), 'unknown') as platform,
    cast(signup_date as date) as signup_date,
    cast({{ dbt.date_trunc('year', 'cast(signup_date as date)') }} as date) as signup_cohort
from source

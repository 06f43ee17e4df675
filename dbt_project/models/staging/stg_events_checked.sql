{{ config(materialized="table") }}

-- Every raw event row, typed, with the reason it is quarantined (null for clean rows).
-- A redelivered event keeps its first-logged copy; later copies are quarantined as duplicates.
with source as (
    select * from {{ source('raw', 'events') }}
),

typed as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(unit_id as {{ dbt.type_string() }}) as unit_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(value as {{ type_double() }}) as value,
        cast(logged_at as {{ dbt.type_timestamp() }}) as logged_at,
        row_number() over (
            partition by event_id
            order by logged_at, occurred_at, unit_id
        ) as delivery_number
    from source
)

select
    event_id,
    unit_id,
    event_type,
    occurred_at,
    value,
    logged_at,
    case
        when event_id is null then 'null_event_id'
        when unit_id is null then 'null_unit_id'
        when {{ is_impossible_timestamp('occurred_at', 'logged_at') }} then 'impossible_timestamp'
        when event_type not in ({{ "'" ~ var('event_types') | join("', '") ~ "'" }}) then 'unknown_event_type'
        when delivery_number > 1 then 'duplicate_event_id'
    end as quarantine_reason
from typed

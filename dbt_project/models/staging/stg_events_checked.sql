{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='replace_where',
    incremental_predicates=[logged_scope_filter('DBT_INCREMENTAL_TARGET')],
) }}

-- Every raw event row, typed (timestamps in UTC), with the reason it is quarantined (null for clean rows).
-- A redelivered event keeps its first-logged copy; later copies are quarantined as duplicates.
-- Incremental: a run reprocesses the rows logged on or after the last logged day it has, counting the copies of
-- each event id it already holds from earlier days.

-- the raw timestamps in UTC (macros/utc_timestamp.sql)
{% set occurred_at_utc = raw_timestamp(source('raw', 'events'), 'occurred_at') %}
{% set logged_at_utc = raw_timestamp(source('raw', 'events'), 'logged_at') %}
-- the product's event types (the events source's event_types in verdict.yml); empty: every type is known
{% set event_types = env_var('VERDICT_EVENT_TYPES', '').split(',') | reject('equalto', '') | list %}

with source as (
    select * from {{ source('raw', 'events') }}
    {% if is_incremental() %}
        where {{ logged_scope_filter(logged_at=logged_at_utc) }}
    {% endif %}
),

typed as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(unit_id as {{ dbt.type_string() }}) as unit_id,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        {{ occurred_at_utc }} as occurred_at,
        {{ readable_double('value') }} as value,
        {{ value_problem('value', readable_double('value')) }} as value_problem,
        {{ logged_at_utc }} as logged_at,
        row_number() over (
            partition by event_id
            order by {{ logged_at_utc }}, {{ occurred_at_utc }}, unit_id
        ) as delivery_number
    from source
),

{% if is_incremental() %}
    earlier_copies as (
        select
            event_id,
            count(*) as copies
        from {{ this }}
        where
            not {{ logged_scope_filter() }}
            and event_id in (select typed.event_id from typed)
        group by event_id
    ),
{% endif %}

delivered as (
    select
        typed.*,
        {% if is_incremental() %}
            typed.delivery_number + coalesce(earlier_copies.copies, 0) as delivery
        {% else %}
            typed.delivery_number as delivery
        {% endif %}
    from typed
    {% if is_incremental() %}
        left join earlier_copies
            on typed.event_id = earlier_copies.event_id
    {% endif %}
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
        when trim(unit_id) = '' then 'blank_unit_id'
        when {{ is_logged_in_future('logged_at') }} then 'logged_in_future'
        when {{ is_impossible_timestamp('occurred_at', 'logged_at') }} then 'impossible_timestamp'
        when {{ is_late_arrival('occurred_at', 'logged_at') }} then 'late_arrival'
        {% if event_types %}
            when event_type not in ({{ "'" ~ event_types | join("', '") ~ "'" }}) then 'unknown_event_type'
        {% endif %}
        when delivery > 1 then 'duplicate_event_id'
        when value_problem is not null then value_problem
    end as quarantine_reason
from delivered

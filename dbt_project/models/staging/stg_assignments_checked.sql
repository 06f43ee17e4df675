{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='replace_where',
    incremental_predicates=[logged_scope_filter('DBT_INCREMENTAL_TARGET')],
) }}

-- Every raw assignment row, typed (timestamps in UTC), with the reason it is quarantined (null for clean rows).
-- Incremental: a run reprocesses the rows logged on or after the last logged day it has.

-- the raw timestamps in UTC (macros/utc_timestamp.sql)
{% set assigned_at_utc = raw_timestamp(source('raw', 'assignments'), 'assigned_at') %}
{% set logged_at_utc = raw_timestamp(source('raw', 'assignments'), 'logged_at') %}
-- an assignment log without times (VERDICT_TIMED_ASSIGNMENTS=0): every unit is assigned at its experiment's start
{% set timed = env_var('VERDICT_TIMED_ASSIGNMENTS', '1') == '1' %}
{% if not timed %}
    {% set assigned_at_utc = 'cast(starts.start_date as ' ~ dbt.type_timestamp() ~ ')' %}
    {% set logged_at_utc = assigned_at_utc %}
{% endif %}

with source as (
    select * from {{ source('raw', 'assignments') }}
    {% if is_incremental() and timed %}
        where {{ logged_scope_filter(logged_at=logged_at_utc) }}
    {% endif %}
),

typed as (
    select
        cast(source.experiment_id as {{ dbt.type_string() }}) as experiment_id,
        cast(source.unit_id as {{ dbt.type_string() }}) as unit_id,
        cast(source.variant as {{ dbt.type_string() }}) as variant,
        {{ assigned_at_utc }} as assigned_at,
        {{ logged_at_utc }} as logged_at
    from source
    {% if not timed %}
        left join {{ ref('stg_experiments') }} as starts
            on cast(source.experiment_id as {{ dbt.type_string() }}) = starts.experiment_id
    {% endif %}
),

experiments as (
    select * from {{ ref('stg_experiments') }}
),

variants as (
    select * from {{ ref('stg_experiment_variants') }}
)

select
    typed.*,
    case
        when typed.unit_id is null then 'null_unit_id'
        when trim(typed.unit_id) = '' then 'blank_unit_id'
        when {{ is_logged_in_future('typed.logged_at') }} then 'logged_in_future'
        when {{ is_impossible_timestamp('typed.assigned_at', 'typed.logged_at') }} then 'impossible_timestamp'
        when {{ is_late_arrival('typed.assigned_at', 'typed.logged_at') }} then 'late_arrival'
        when experiments.experiment_id is null then 'unknown_experiment'
        when variants.variant is null then 'unknown_variant'
        when typed.assigned_at < cast(experiments.start_date as {{ dbt.type_timestamp() }})
            then 'before_experiment_start'
        when
            typed.assigned_at
            >= {{ dbt.dateadd('day', 1, 'cast(experiments.end_date as ' ~ dbt.type_timestamp() ~ ')') }}
            then 'after_experiment_end'
    end as quarantine_reason
from typed
left join experiments
    on typed.experiment_id = experiments.experiment_id
left join variants
    on
        typed.experiment_id = variants.experiment_id
        and typed.variant = variants.variant
{% if is_incremental() and not timed %}
    -- without times the scope is known only once each row has its experiment's start
    where {{ logged_scope_filter(logged_at='typed.logged_at') }}
{% endif %}

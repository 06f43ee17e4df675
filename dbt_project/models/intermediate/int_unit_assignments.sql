{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='delete+insert',
    unique_key=['experiment_id', 'unit_id'],
) }}

-- One row per experiment and unit: the first exposure and how many variants the unit was seen in.
-- Incremental: a run recomputes the units with assignment rows logged on or after the last logged day it has seen.
with assignments as (
    select * from {{ ref('stg_assignments') }}
),

{% if is_incremental() %}
    recent_units as (
        select distinct
            experiment_id,
            unit_id
        from assignments
        where cast(logged_at as date) >= (
            select coalesce(max(cast(last_logged_at as date)), cast('{{ var("earliest_valid_timestamp") }}' as date))
            from {{ this }}
        )
    ),
{% endif %}

unit_assignments as (
    select assignments.*
    from assignments
    {% if is_incremental() %}
        inner join recent_units
            on
                assignments.experiment_id = recent_units.experiment_id
                and assignments.unit_id = recent_units.unit_id
    {% endif %}
)

select
    experiment_id,
    unit_id,
    min(assigned_at) as first_exposed_at,
    count(distinct variant) as variant_count,
    min(variant) as variant,  -- the variant when variant_count = 1
    max(logged_at) as last_logged_at
from unit_assignments
group by experiment_id, unit_id

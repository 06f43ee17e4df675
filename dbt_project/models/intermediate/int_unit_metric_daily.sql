-- Each analysed unit's metric per day inside its measurement window: the day's aggregate of its measurements
-- (sum, max, count, or for count_distinct the number of values first seen that day) and, for ratios, the sum of
-- the denominators. Skipped measurements (null values under `null_values: skip`) are left out.
-- Incremental: a run recomputes the days from its scope start (see macros/incremental.sql) on; a count_distinct
-- metric looks at the whole window to know which values are new on those days.
{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='replace_where',
    incremental_predicates=['measured_date >= ' ~ incremental_scope_start('DBT_INCREMENTAL_TARGET')],
    post_hook="{{ delete_crossover_units() }}",
) }}

-- Read only by incremental runs: -- depends_on: {{ ref('int_metric_definitions') }}

with unit_metrics as (
    select * from {{ ref('int_unit_metrics') }}
),

measurements as (
    select * from {{ ref('int_metric_measurements') }}
    where not is_skipped
    {% if is_incremental() %}
        and (
            measured_at is null
            or measured_at >= cast({{ incremental_scope_start() }} as {{ dbt.type_timestamp() }})
            or metric_id in (
                select metric_id from {{ ref('int_metric_definitions') }}
                where aggregation = 'count_distinct'
            )
        )
    {% endif %}
),

in_window as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.metric_id,
        unit_metrics.aggregation,
        -- a unit-level metric's value (no time) counts at the start of the unit's window
        coalesce(measurements.measured_at, unit_metrics.window_start_at) as measured_at,
        measurements.value,
        measurements.denominator
    from unit_metrics
    inner join measurements
        on
            unit_metrics.unit_id = measurements.unit_id
            and unit_metrics.metric_id = measurements.metric_id
            and (
                measurements.measured_at is null
                or measurements.measured_at >= unit_metrics.window_start_at
                and (unit_metrics.window_end_at is null or measurements.measured_at < unit_metrics.window_end_at)
            )
),

counted as (
    select * from in_window
    where aggregation != 'count_distinct'

    union all

    -- count_distinct: each value counts once, on the day it is first seen
    select
        experiment_id,
        unit_id,
        metric_id,
        aggregation,
        min(measured_at) as measured_at,
        1.0 as value,
        null as denominator
    from in_window
    where aggregation = 'count_distinct'
    group by experiment_id, unit_id, metric_id, aggregation, value
),

daily as (
    select
        experiment_id,
        unit_id,
        metric_id,
        cast(measured_at as date) as measured_date,
        cast(case min(aggregation)
            when 'max' then max(value)
            when 'count' then count(*)
            else sum(value)
        end as {{ type_double() }}) as daily_value,
        cast(sum(denominator) as {{ type_double() }}) as daily_denominator
    from counted
    group by experiment_id, unit_id, metric_id, cast(measured_at as date)
)

select
    daily.*,
    {{ events_and_assignments_logged_through() }} as logged_through_at
from daily
{% if is_incremental() %}
    where daily.measured_date >= {{ incremental_scope_start() }}
{% endif %}

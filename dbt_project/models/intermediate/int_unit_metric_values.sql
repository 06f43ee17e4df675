{{ config(materialized="table") }}

-- Each exposed unit's value of each of its experiment's metrics at each as-of date.
-- Cumulative metrics count everything from the unit's exposure to the end of the as-of date.
-- Windowed metrics (window_days = N) count the first N days after exposure, and a unit enters
-- only once its whole window has elapsed by the end of the as-of date.
with exposures as (
    select * from {{ ref('int_exposures') }}
),

experiment_metrics as (
    select
        experiment_metrics.experiment_id,
        experiment_metrics.metric_id,
        definitions.aggregation,
        definitions.window_days
    from {{ ref('stg_experiment_metrics') }} as experiment_metrics
    inner join {{ ref('int_metric_definitions') }} as definitions
        on experiment_metrics.metric_id = definitions.metric_id
),

unit_metrics as (
    select
        exposures.experiment_id,
        exposures.unit_id,
        exposures.variant,
        exposures.exposed_at,
        exposures.exposure_date,
        experiment_metrics.metric_id,
        experiment_metrics.aggregation,
        experiment_metrics.window_days
    from exposures
    inner join experiment_metrics
        on exposures.experiment_id = experiment_metrics.experiment_id
),

daily as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.metric_id,
        cast(measurements.measured_at as date) as measured_date,
        case unit_metrics.aggregation
            when 'max' then max(measurements.value)
            when 'count' then count(*)
            else sum(measurements.value)
        end as daily_value
    from unit_metrics
    inner join {{ ref('int_metric_measurements') }} as measurements
        on
            unit_metrics.unit_id = measurements.unit_id
            and unit_metrics.metric_id = measurements.metric_id
            and measurements.measured_at >= unit_metrics.exposed_at
            and (
                unit_metrics.window_days is null
                or measurements.measured_at
                < {{ dbt.dateadd('day', 'unit_metrics.window_days', 'unit_metrics.exposed_at') }}
            )
    group by 1, 2, 3, 4, unit_metrics.aggregation
),

spine as (
    select
        unit_metrics.*,
        days.as_of_date
    from unit_metrics
    inner join {{ ref('int_experiment_days') }} as days
        on
            unit_metrics.experiment_id = days.experiment_id
            and unit_metrics.exposure_date <= days.as_of_date
),

cumulative as (
    select
        spine.experiment_id,
        spine.unit_id,
        spine.variant,
        spine.metric_id,
        spine.as_of_date,
        spine.exposed_at,
        spine.window_days,
        case spine.aggregation
            when 'max' then max(coalesce(daily.daily_value, 0)) over (
                partition by spine.experiment_id, spine.unit_id, spine.metric_id
                order by spine.as_of_date rows between unbounded preceding and current row
            )
            else sum(coalesce(daily.daily_value, 0)) over (
                partition by spine.experiment_id, spine.unit_id, spine.metric_id
                order by spine.as_of_date rows between unbounded preceding and current row
            )
        end as value
    from spine
    left join daily
        on
            spine.experiment_id = daily.experiment_id
            and spine.unit_id = daily.unit_id
            and spine.metric_id = daily.metric_id
            and spine.as_of_date = daily.measured_date
)

select
    experiment_id,
    unit_id,
    variant,
    metric_id,
    as_of_date,
    cast(value as {{ type_double() }}) as value
from cumulative
where
    window_days is null
    or {{ dbt.dateadd('day', 'window_days', 'exposed_at') }}
    <= {{ dbt.dateadd('day', 1, 'cast(as_of_date as ' ~ dbt.type_timestamp() ~ ')') }}

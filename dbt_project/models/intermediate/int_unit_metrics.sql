-- One row per exposed unit and metric of its experiment: the unit's exposure, the metric's settings, and the
-- unit's pre-exposure covariate for variance reduction (CUPED): the metric aggregated over the
-- `covariate_lookback_days` days before the exposure. Units with no measurement there get 0 and
-- has_history = false (counted in the marts).
with unit_metrics as (
    select
        exposures.experiment_id,
        exposures.unit_id,
        exposures.variant,
        exposures.exposed_at,
        exposures.exposure_date,
        experiment_metrics.metric_id,
        experiment_metrics.metric_type,
        experiment_metrics.aggregation,
        experiment_metrics.window_days
    from {{ ref('int_exposures') }} as exposures
    inner join {{ ref('int_experiment_metrics') }} as experiment_metrics
        on exposures.experiment_id = experiment_metrics.experiment_id
),

history as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.metric_id,
        case min(unit_metrics.aggregation)
            when 'max' then max(measurements.value)
            when 'count' then count(*)
            else sum(measurements.value)
        end as covariate
    from unit_metrics
    inner join {{ ref('int_metric_measurements') }} as measurements
        on
            unit_metrics.unit_id = measurements.unit_id
            and unit_metrics.metric_id = measurements.metric_id
            and measurements.measured_at < unit_metrics.exposed_at
            and measurements.measured_at
            >= {{ dbt.dateadd('day', -1 * var('covariate_lookback_days'), 'unit_metrics.exposed_at') }}
    group by 1, 2, 3
)

select
    unit_metrics.*,
    cast(coalesce(history.covariate, 0) as {{ type_double() }}) as covariate,
    history.covariate is not null as has_history
from unit_metrics
left join history
    on
        unit_metrics.experiment_id = history.experiment_id
        and unit_metrics.unit_id = history.unit_id
        and unit_metrics.metric_id = history.metric_id

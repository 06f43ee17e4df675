-- The units each experiment analyses, from when. Without an exposure filter: every exposed unit from its first
-- exposure. With one (triggered analysis): only units with a measurement of the filter metric at or after their
-- exposure, each from the first such measurement; windows and the pre-exposure covariate count from there.
with exposures as (
    select
        exposures.*,
        experiments.exposure_filter_metric
    from {{ ref('int_exposures') }} as exposures
    inner join {{ ref('stg_experiments') }} as experiments
        on exposures.experiment_id = experiments.experiment_id
),

triggers as (
    select
        exposures.experiment_id,
        exposures.unit_id,
        min(measurements.measured_at) as triggered_at
    from exposures
    inner join {{ ref('int_metric_measurements') }} as measurements
        on
            exposures.unit_id = measurements.unit_id
            and exposures.exposure_filter_metric = measurements.metric_id
            and measurements.measured_at >= exposures.exposed_at
            and not measurements.is_skipped
    where exposures.exposure_filter_metric is not null
    group by exposures.experiment_id, exposures.unit_id
)

select
    exposures.experiment_id,
    exposures.unit_id,
    exposures.variant,
    coalesce(triggers.triggered_at, exposures.exposed_at) as exposed_at,
    cast(coalesce(triggers.triggered_at, exposures.exposed_at) as date) as exposure_date
from exposures
left join triggers
    on
        exposures.experiment_id = triggers.experiment_id
        and exposures.unit_id = triggers.unit_id
where exposures.exposure_filter_metric is null or triggers.triggered_at is not null

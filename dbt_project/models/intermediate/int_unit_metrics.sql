-- One row per analysed unit and metric of its experiment: the unit's exposure, the metric's settings, the
-- unit's measurement window and the date it enters the analysis, and its pre-exposure covariate for variance
-- reduction (CUPED): the metric aggregated over the `covariate_lookback_days` days before the exposure. Units
-- with no measurement there get 0 and has_history = false (counted in the marts).
--
-- The window rule: a cumulative metric (no window_days) measures [exposed_at, as-of date] and the unit enters on
-- its exposure date. A windowed metric measures [exposed_at + offset, exposed_at + offset + window_days) and the
-- unit enters on the first as-of date by whose end that window has fully elapsed.
--
-- Incremental: a run recomputes the units exposed from its scope start (see macros/incremental.sql) on: an earlier
-- unit's exposure and pre-exposure measurements can no longer change. Units that became crossovers are dropped.
{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='replace_where',
    incremental_predicates=[
        'exposed_at >= cast(' ~ incremental_scope_start('DBT_INCREMENTAL_TARGET') ~ ' as ' ~ dbt.type_timestamp() ~ ')'
    ],
    post_hook="{{ delete_crossover_units() }}",
) }}

with unit_metrics as (
    select
        exposures.experiment_id,
        exposures.unit_id,
        exposures.variant,
        exposures.exposed_at,
        exposures.exposure_date,
        experiment_metrics.metric_id,
        experiment_metrics.analysis_type,
        experiment_metrics.aggregation,
        experiment_metrics.window_days,
        experiment_metrics.window_offset_days,
        experiment_metrics.threshold,
        experiment_metrics.winsorize_lower,
        experiment_metrics.winsorize_upper,
        {{ dbt.dateadd('day', 'coalesce(experiment_metrics.window_offset_days, 0)', 'exposures.exposed_at') }}
            as window_start_at,
        case
            when experiment_metrics.window_days is not null
                then {{ dbt.dateadd(
                    'day',
                    'experiment_metrics.window_offset_days + experiment_metrics.window_days',
                    'exposures.exposed_at'
                ) }}
        end as window_end_at
    from {{ ref('int_analysis_exposures') }} as exposures
    inner join {{ ref('int_experiment_metrics') }} as experiment_metrics
        on exposures.experiment_id = experiment_metrics.experiment_id
    {% if is_incremental() %}
        where exposures.exposed_at >= cast({{ incremental_scope_start() }} as {{ dbt.type_timestamp() }})
    {% endif %}
),

history as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.metric_id,
        case min(unit_metrics.aggregation)
            when 'max' then max(measurements.value)
            when 'count' then count(*)
            when 'count_distinct' then count(distinct measurements.value)
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
            and not measurements.is_skipped
    group by unit_metrics.experiment_id, unit_metrics.unit_id, unit_metrics.metric_id
)

select
    unit_metrics.*,
    -- the window [start, end) has elapsed by the end of day D when end <= D + 1 day
    case
        when unit_metrics.window_end_at is null then unit_metrics.exposure_date
        when cast(cast(unit_metrics.window_end_at as date) as {{ dbt.type_timestamp() }}) = unit_metrics.window_end_at
            then cast({{ dbt.dateadd('day', -1, 'cast(unit_metrics.window_end_at as date)') }} as date)
        else cast(unit_metrics.window_end_at as date)
    end as entry_date,
    cast(coalesce(history.covariate, 0) as {{ type_double() }}) as covariate,
    history.covariate is not null as has_history,
    {{ events_and_assignments_logged_through() }} as logged_through_at
from unit_metrics
left join history
    on
        unit_metrics.experiment_id = history.experiment_id
        and unit_metrics.unit_id = history.unit_id
        and unit_metrics.metric_id = history.metric_id

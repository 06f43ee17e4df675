{%- set days_shown = var('exposure_days_shown') -%}
-- The effect by days since exposure (novelty and learning effects), exploratory: per experiment x metric x variant
-- x day since exposure (0: the exposure day, up to var exposure_days_shown), at each experiment's latest as-of date,
-- the units whose measurement window holds that day by then and the sum and sum of squares of their value on that
-- day (0 on a day without measurements). For the mean metrics whose daily values add up (aggregation sum or count),
-- before winsorization. The columns are metric_segment_stats' (dimension days_since_exposure, the day as segment),
-- so the engine tests them as it tests segments, into experiment_exposure_day_results.
with last_dates as (
    select distinct
        experiment_id,
        last_date as as_of_date
    from {{ ref('int_experiment_days') }}
),

units as (
    select
        unit_metrics.experiment_id,
        unit_metrics.metric_id,
        unit_metrics.variant,
        unit_metrics.unit_id,
        unit_metrics.exposure_date,
        last_dates.as_of_date,
        {{ days_between('unit_metrics.exposure_date', 'cast(unit_metrics.window_start_at as date)') }}
            as first_day,
        least(
            {{ days_between('unit_metrics.exposure_date', 'last_dates.as_of_date') }},
            coalesce(
                {{ days_between(
                    'unit_metrics.exposure_date',
                    'cast(' ~ dbt.dateadd('second', -1, 'unit_metrics.window_end_at') ~ ' as date)'
                ) }},
                {{ days_shown - 1 }}
            ),
            {{ days_shown - 1 }}
        ) as last_day
    from {{ ref('int_unit_metrics') }} as unit_metrics
    inner join last_dates
        on unit_metrics.experiment_id = last_dates.experiment_id
    where
        unit_metrics.analysis_type = 'mean'
        and unit_metrics.aggregation in ('sum', 'count')
        and unit_metrics.exposure_date <= last_dates.as_of_date
),

day_numbers as (
    {% for day in range(days_shown) %}
        select {{ day }} as days_since_exposure
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

cohorts as (
    select
        experiment_id,
        metric_id,
        variant,
        as_of_date,
        first_day,
        last_day,
        count(*) as units
    from units
    group by experiment_id, metric_id, variant, as_of_date, first_day, last_day
),

units_per_day as (
    select
        cohorts.experiment_id,
        cohorts.metric_id,
        cohorts.variant,
        cohorts.as_of_date,
        day_numbers.days_since_exposure,
        sum(cohorts.units) as n
    from cohorts
    inner join day_numbers
        on day_numbers.days_since_exposure between cohorts.first_day and cohorts.last_day
    group by
        cohorts.experiment_id,
        cohorts.metric_id,
        cohorts.variant,
        cohorts.as_of_date,
        day_numbers.days_since_exposure
),

daily_values as (
    select
        units.experiment_id,
        units.metric_id,
        units.variant,
        units.last_day,
        daily.daily_value,
        {{ days_between('units.exposure_date', 'daily.measured_date') }} as days_since_exposure
    from units
    inner join {{ ref('int_unit_metric_daily') }} as daily
        on
            units.experiment_id = daily.experiment_id
            and units.unit_id = daily.unit_id
            and units.metric_id = daily.metric_id
    where daily.measured_date <= units.as_of_date
),

values_per_day as (
    select
        experiment_id,
        metric_id,
        variant,
        days_since_exposure,
        sum(daily_value) as value_sum,
        sum(daily_value * daily_value) as square_sum
    from daily_values
    where days_since_exposure <= last_day
    group by experiment_id, metric_id, variant, days_since_exposure
)

select
    units_per_day.experiment_id,
    units_per_day.metric_id,
    units_per_day.variant,
    variants.is_control,
    'days_since_exposure' as dimension,
    cast(units_per_day.days_since_exposure as {{ dbt.type_string() }}) as segment,
    units_per_day.as_of_date,
    'mean' as analysis_type,
    cast(units_per_day.n as {{ dbt.type_bigint() }}) as n,
    cast(coalesce(values_per_day.value_sum, 0) as {{ type_double() }}) as sum,
    cast(coalesce(values_per_day.square_sum, 0) as {{ type_double() }}) as sum_sq,
    cast(coalesce(values_per_day.square_sum, 0) as {{ type_double() }}) as sum_sq_abs,
    cast(0 as {{ type_double() }}) as value_shift,
    cast(units_per_day.n as {{ dbt.type_bigint() }}) as units_without_history,
    cast(null as {{ type_double() }}) as cov_sum,
    cast(null as {{ type_double() }}) as cov_sum_sq,
    cast(null as {{ type_double() }}) as cross_sum,
    cast(null as {{ type_double() }}) as den_sum,
    cast(null as {{ type_double() }}) as den_sum_sq,
    cast(null as {{ type_double() }}) as value_den_cross_sum,
    cast(null as {{ type_double() }}) as den_cov_cross_sum
from units_per_day
inner join {{ ref('stg_experiment_variants') }} as variants
    on
        units_per_day.experiment_id = variants.experiment_id
        and units_per_day.variant = variants.variant
left join values_per_day
    on
        units_per_day.experiment_id = values_per_day.experiment_id
        and units_per_day.metric_id = values_per_day.metric_id
        and units_per_day.variant = values_per_day.variant
        and units_per_day.days_since_exposure = values_per_day.days_since_exposure

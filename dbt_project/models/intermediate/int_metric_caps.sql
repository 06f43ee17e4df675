-- Winsorization caps per experiment and winsorized metric: percentiles (from the metric's `winsorize` setting) of
-- the per-unit values of every unit in the analysis at the experiment's last as-of date, units without
-- measurements counting 0. A ratio's numerator and denominator are capped at their own percentiles over the
-- same units (a metric without a denominator gets null denominator caps). Every look of the experiment uses
-- these caps.
with last_dates as (
    select
        experiment_id,
        max(as_of_date) as last_date
    from {{ ref('int_experiment_days') }}
    group by experiment_id
),

units as (
    select unit_metrics.*
    from {{ ref('int_unit_metrics') }} as unit_metrics
    inner join last_dates
        on unit_metrics.experiment_id = last_dates.experiment_id
    where
        (unit_metrics.winsorize_lower is not null or unit_metrics.winsorize_upper is not null)
        and unit_metrics.entry_date <= last_dates.last_date
),

totals as (
    select
        daily.experiment_id,
        daily.unit_id,
        daily.metric_id,
        case min(units.aggregation) when 'max' then max(daily.daily_value) else sum(daily.daily_value) end as value,
        sum(daily.daily_denominator) as denominator
    from {{ ref('int_unit_metric_daily') }} as daily
    inner join units
        on
            daily.experiment_id = units.experiment_id
            and daily.unit_id = units.unit_id
            and daily.metric_id = units.metric_id
    inner join last_dates
        on daily.experiment_id = last_dates.experiment_id
    where daily.measured_date <= last_dates.last_date
    group by daily.experiment_id, daily.unit_id, daily.metric_id
),

unit_values as (
    select
        units.experiment_id,
        units.metric_id,
        units.winsorize_lower,
        units.winsorize_upper,
        coalesce(totals.value, 0) as value,
        case when units.analysis_type = 'ratio' then coalesce(totals.denominator, 0) end as denominator
    from units
    left join totals
        on
            units.experiment_id = totals.experiment_id
            and units.unit_id = totals.unit_id
            and units.metric_id = totals.metric_id
),

ranked as (
    select
        experiment_id,
        metric_id,
        winsorize_lower,
        winsorize_upper,
        value,
        denominator,
        row_number() over (partition by experiment_id, metric_id order by value) - 1 as value_rank,
        row_number() over (partition by experiment_id, metric_id order by denominator) - 1 as denominator_rank,
        count(*) over (partition by experiment_id, metric_id) as units
    from unit_values
)

select
    experiment_id,
    metric_id,
    cast({{ interpolated_percentile('value', 'value_rank', 'winsorize_lower') }} as {{ type_double() }}) as cap_lower,
    cast({{ interpolated_percentile('value', 'value_rank', 'winsorize_upper') }} as {{ type_double() }}) as cap_upper,
    cast({{ interpolated_percentile('denominator', 'denominator_rank', 'winsorize_lower') }} as {{ type_double() }})
        as denominator_cap_lower,
    cast({{ interpolated_percentile('denominator', 'denominator_rank', 'winsorize_upper') }} as {{ type_double() }})
        as denominator_cap_upper,
    count(*) as units
from ranked
group by experiment_id, metric_id

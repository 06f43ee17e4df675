-- The days on which an exposed unit's metric value changes, and by how much: a sparse form of every
-- unit's value at every as-of date, from which the marts accumulate sufficient statistics.
--
-- Cumulative metrics: a unit enters at its exposure date with value 0 and changes on each day with
-- measurements (value_change = new - old, square_change = new^2 - old^2).
-- Windowed metrics (window_days = N): a unit enters, with the total of its first N days after exposure,
-- on the first as-of date by whose end that window has fully elapsed.
-- Each unit carries its pre-exposure covariate x (CUPED): it adds x and x^2 when it enters, and x times
-- every change of its value to the cross sum.
-- Ratio metrics also track the unit's denominator d: its changes, d^2, value x d and d x x (null otherwise).
with unit_metrics as (
    select * from {{ ref('int_unit_metrics') }}
),

daily as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.variant,
        unit_metrics.metric_id,
        unit_metrics.metric_type,
        unit_metrics.aggregation,
        unit_metrics.window_days,
        unit_metrics.covariate,
        cast(measurements.measured_at as date) as measured_date,
        case unit_metrics.aggregation
            when 'max' then max(measurements.value)
            when 'count' then count(*)
            else sum(measurements.value)
        end as daily_value,
        sum(measurements.denominator) as daily_denominator
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
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9
),

running as (
    select
        experiment_id,
        variant,
        metric_id,
        measured_date,
        covariate,
        case aggregation
            when 'max' then max(daily_value) over (
                partition by experiment_id, unit_id, metric_id order by measured_date
                rows between unbounded preceding and current row
            )
            else sum(daily_value) over (
                partition by experiment_id, unit_id, metric_id order by measured_date
                rows between unbounded preceding and current row
            )
        end as value_after,
        coalesce(case aggregation
            when 'max' then max(daily_value) over (
                partition by experiment_id, unit_id, metric_id order by measured_date
                rows between unbounded preceding and 1 preceding
            )
            else sum(daily_value) over (
                partition by experiment_id, unit_id, metric_id order by measured_date
                rows between unbounded preceding and 1 preceding
            )
        end, 0) as value_before,
        sum(daily_denominator) over (
            partition by experiment_id, unit_id, metric_id order by measured_date
            rows between unbounded preceding and current row
        ) as denominator_after,
        case when metric_type = 'ratio' then coalesce(sum(daily_denominator) over (
            partition by experiment_id, unit_id, metric_id order by measured_date
            rows between unbounded preceding and 1 preceding
        ), 0) end as denominator_before
    from daily
    where window_days is null
),

window_totals as (
    select
        experiment_id,
        unit_id,
        metric_id,
        case min(aggregation) when 'max' then max(daily_value) else sum(daily_value) end as window_value,
        sum(daily_denominator) as window_denominator
    from daily
    where window_days is not null
    group by 1, 2, 3
),

windowed_entries as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.variant,
        unit_metrics.metric_id,
        unit_metrics.covariate,
        unit_metrics.has_history,
        {{ dbt.dateadd('day', 'unit_metrics.window_days', 'unit_metrics.exposed_at') }} as window_end,
        coalesce(window_totals.window_value, 0) as window_value,
        case when unit_metrics.metric_type = 'ratio' then coalesce(window_totals.window_denominator, 0) end
            as window_denominator
    from unit_metrics
    left join window_totals
        on
            unit_metrics.experiment_id = window_totals.experiment_id
            and unit_metrics.unit_id = window_totals.unit_id
            and unit_metrics.metric_id = window_totals.metric_id
    where unit_metrics.window_days is not null
)

select
    experiment_id,
    variant,
    metric_id,
    exposure_date as change_date,
    1 as units_entering,
    case when has_history then 0 else 1 end as units_without_history,
    0.0 as value_change,
    0.0 as square_change,
    covariate as covariate_change,
    covariate * covariate as covariate_square_change,
    0.0 as cross_change,
    case when metric_type = 'ratio' then 0.0 end as denominator_change,
    case when metric_type = 'ratio' then 0.0 end as denominator_square_change,
    case when metric_type = 'ratio' then 0.0 end as value_denominator_change,
    case when metric_type = 'ratio' then 0.0 end as denominator_covariate_change
from unit_metrics
where window_days is null

union all

select
    experiment_id,
    variant,
    metric_id,
    measured_date as change_date,
    0 as units_entering,
    0 as units_without_history,
    value_after - value_before as value_change,
    value_after * value_after - value_before * value_before as square_change,
    0.0 as covariate_change,
    0.0 as covariate_square_change,
    covariate * (value_after - value_before) as cross_change,
    denominator_after - denominator_before as denominator_change,
    denominator_after * denominator_after - denominator_before * denominator_before as denominator_square_change,
    value_after * denominator_after - value_before * denominator_before as value_denominator_change,
    covariate * (denominator_after - denominator_before) as denominator_covariate_change
from running

union all

-- The window [exposed_at, window_end) has elapsed by the end of day D when window_end <= D + 1 day.
select
    experiment_id,
    variant,
    metric_id,
    case
        when cast(cast(window_end as date) as {{ dbt.type_timestamp() }}) = window_end
            then {{ dbt.dateadd('day', -1, 'cast(window_end as date)') }}
        else cast(window_end as date)
    end as change_date,
    1 as units_entering,
    case when has_history then 0 else 1 end as units_without_history,
    window_value as value_change,
    window_value * window_value as square_change,
    covariate as covariate_change,
    covariate * covariate as covariate_square_change,
    covariate * window_value as cross_change,
    window_denominator as denominator_change,
    window_denominator * window_denominator as denominator_square_change,
    window_value * window_denominator as value_denominator_change,
    covariate * window_denominator as denominator_covariate_change
from windowed_entries

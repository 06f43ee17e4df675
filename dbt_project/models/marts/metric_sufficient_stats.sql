-- The only data that leaves SQL for the statistics engine: sufficient statistics per
-- experiment x metric x variant x as-of date (unit count, sum and sum of squares of per-unit values),
-- accumulated from the days on which units enter and their values change.
with days as (
    select * from {{ ref('int_experiment_days') }}
),

variants as (
    select * from {{ ref('stg_experiment_variants') }}
),

experiment_metrics as (
    select * from {{ ref('int_experiment_metrics') }}
),

daily_changes as (
    select
        experiment_id,
        variant,
        metric_id,
        change_date,
        sum(units_entering) as units_entering,
        sum(value_change) as value_change,
        sum(square_change) as square_change
    from {{ ref('int_unit_metric_changes') }}
    group by 1, 2, 3, 4
),

cells as (
    select
        days.experiment_id,
        experiment_metrics.metric_id,
        variants.variant,
        variants.is_control,
        days.as_of_date,
        experiment_metrics.metric_type,
        coalesce(daily_changes.units_entering, 0) as units_entering,
        coalesce(daily_changes.value_change, 0) as value_change,
        coalesce(daily_changes.square_change, 0) as square_change
    from days
    inner join variants
        on days.experiment_id = variants.experiment_id
    inner join experiment_metrics
        on days.experiment_id = experiment_metrics.experiment_id
    left join daily_changes
        on
            days.experiment_id = daily_changes.experiment_id
            and variants.variant = daily_changes.variant
            and experiment_metrics.metric_id = daily_changes.metric_id
            and days.as_of_date = daily_changes.change_date
),

accumulated as (
    select
        experiment_id,
        metric_id,
        variant,
        is_control,
        as_of_date,
        metric_type,
        sum(units_entering) over cell_history as n,
        sum(value_change) over cell_history as sum,
        sum(square_change) over cell_history as sum_sq
    from cells
    window cell_history as (
        partition by experiment_id, metric_id, variant
        order by as_of_date
        rows between unbounded preceding and current row
    )
)

select
    experiment_id,
    metric_id,
    variant,
    is_control,
    as_of_date,
    metric_type,
    cast(n as {{ dbt.type_bigint() }}) as n,
    cast(sum as {{ type_double() }}) as sum,
    cast(sum_sq as {{ type_double() }}) as sum_sq
from accumulated

-- The only data that leaves SQL for the statistics engine: sufficient statistics per
-- experiment x metric x variant x as-of date (unit count, sum and sum of squares of per-unit values, and
-- for CUPED the pre-exposure covariate's sum, sum of squares and cross sum with the value), accumulated
-- from the days on which units enter and their values change. Mean metrics whose values are large against their
-- spread are summed as value - value_shift (see int_unit_metric_changes); sum_sq_abs bounds sum_sq's rounding.
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
        sum(units_without_history) as units_without_history,
        sum(value_change) as value_change,
        sum(square_change) as square_change,
        sum(square_abs_change) as square_abs_change,
        max(value_shift) as value_shift,
        sum(covariate_change) as covariate_change,
        sum(covariate_square_change) as covariate_square_change,
        sum(cross_change) as cross_change,
        sum(denominator_change) as denominator_change,
        sum(denominator_square_change) as denominator_square_change,
        sum(value_denominator_change) as value_denominator_change,
        sum(denominator_covariate_change) as denominator_covariate_change
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
        experiment_metrics.analysis_type,
        coalesce(daily_changes.units_entering, 0) as units_entering,
        coalesce(daily_changes.units_without_history, 0) as units_without_history,
        coalesce(daily_changes.value_change, 0) as value_change,
        coalesce(daily_changes.square_change, 0) as square_change,
        coalesce(daily_changes.square_abs_change, 0) as square_abs_change,
        daily_changes.value_shift,
        coalesce(daily_changes.covariate_change, 0) as covariate_change,
        coalesce(daily_changes.covariate_square_change, 0) as covariate_square_change,
        coalesce(daily_changes.cross_change, 0) as cross_change,
        case when experiment_metrics.analysis_type = 'ratio' then coalesce(daily_changes.denominator_change, 0) end
            as denominator_change,
        case
            when experiment_metrics.analysis_type = 'ratio' then coalesce(daily_changes.denominator_square_change, 0)
        end
            as denominator_square_change,
        case
            when experiment_metrics.analysis_type = 'ratio' then coalesce(daily_changes.value_denominator_change, 0)
        end
            as value_denominator_change,
        case
            when experiment_metrics.analysis_type = 'ratio' then coalesce(daily_changes.denominator_covariate_change, 0)
        end
            as denominator_covariate_change
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
        analysis_type,
        sum(units_entering) over cell_history as n,
        sum(value_change) over cell_history as sum,
        sum(square_change) over cell_history as sum_sq,
        sum(square_abs_change) over cell_history as sum_sq_abs,
        coalesce(max(value_shift) over (partition by experiment_id, metric_id), 0) as value_shift,
        sum(units_without_history) over cell_history as units_without_history,
        sum(covariate_change) over cell_history as cov_sum,
        sum(covariate_square_change) over cell_history as cov_sum_sq,
        sum(cross_change) over cell_history as cross_sum,
        sum(denominator_change) over cell_history as den_sum,
        sum(denominator_square_change) over cell_history as den_sum_sq,
        sum(value_denominator_change) over cell_history as value_den_cross_sum,
        sum(denominator_covariate_change) over cell_history as den_cov_cross_sum
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
    analysis_type,
    cast(n as {{ dbt.type_bigint() }}) as n,
    cast(sum as {{ type_double() }}) as sum,
    cast(sum_sq as {{ type_double() }}) as sum_sq,
    cast(sum_sq_abs as {{ type_double() }}) as sum_sq_abs,
    cast(value_shift as {{ type_double() }}) as value_shift,
    cast(units_without_history as {{ dbt.type_bigint() }}) as units_without_history,
    cast(cov_sum as {{ type_double() }}) as cov_sum,
    cast(cov_sum_sq as {{ type_double() }}) as cov_sum_sq,
    cast(cross_sum as {{ type_double() }}) as cross_sum,
    cast(den_sum as {{ type_double() }}) as den_sum,
    cast(den_sum_sq as {{ type_double() }}) as den_sum_sq,
    cast(value_den_cross_sum as {{ type_double() }}) as value_den_cross_sum,
    cast(den_cov_cross_sum as {{ type_double() }}) as den_cov_cross_sum
from accumulated

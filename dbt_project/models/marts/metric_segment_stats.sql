-- Exploratory segments: sufficient statistics per experiment x metric x variant x unit dimension x segment at each
-- experiment's latest as-of date, with the same columns as metric_sufficient_stats. The statistics engine tests
-- them into experiment_segment_results, which never enters a decision.
--
-- Every statistic is a sum over units of a sum of their changes, so it is the sum of the changes of the segment's
-- units up to that date: one join of the changes to the units' segments and an aggregation into the few cells,
-- with no per-unit totals in between.
with last_dates as (
    select distinct
        experiment_id,
        last_date as as_of_date
    from {{ ref('int_experiment_days') }}
),

segment_totals as (
    select
        changes.experiment_id,
        changes.metric_id,
        changes.variant,
        segments.dimension,
        segments.segment,
        last_dates.as_of_date,
        changes.units_entering,
        changes.value_change as value_total,
        changes.square_change as square_total,
        changes.square_abs_change as square_abs_total,
        changes.value_shift,
        changes.units_without_history,
        changes.covariate_change as covariate_total,
        changes.covariate_square_change as covariate_square_total,
        changes.cross_change as cross_total,
        changes.denominator_change as denominator_total,
        changes.denominator_square_change as denominator_square_total,
        changes.value_denominator_change as value_denominator_total,
        changes.denominator_covariate_change as denominator_covariate_total
    from {{ ref('int_unit_metric_changes') }} as changes
    inner join last_dates
        on
            changes.experiment_id = last_dates.experiment_id
            and changes.change_date <= last_dates.as_of_date
    inner join {{ ref('int_unit_segments') }} as segments
        on
            changes.experiment_id = segments.experiment_id
            and changes.unit_id = segments.unit_id
)

select
    segment_totals.experiment_id,
    segment_totals.metric_id,
    segment_totals.variant,
    variants.is_control,
    segment_totals.dimension,
    segment_totals.segment,
    segment_totals.as_of_date,
    experiment_metrics.analysis_type,
    cast(sum(segment_totals.units_entering) as {{ dbt.type_bigint() }}) as n,
    cast(sum(segment_totals.value_total) as {{ type_double() }}) as sum,
    cast(sum(segment_totals.square_total) as {{ type_double() }}) as sum_sq,
    cast(sum(segment_totals.square_abs_total) as {{ type_double() }}) as sum_sq_abs,
    cast(max(segment_totals.value_shift) as {{ type_double() }}) as value_shift,
    cast(sum(segment_totals.units_without_history) as {{ dbt.type_bigint() }}) as units_without_history,
    cast(sum(segment_totals.covariate_total) as {{ type_double() }}) as cov_sum,
    cast(sum(segment_totals.covariate_square_total) as {{ type_double() }}) as cov_sum_sq,
    cast(sum(segment_totals.cross_total) as {{ type_double() }}) as cross_sum,
    cast(sum(segment_totals.denominator_total) as {{ type_double() }}) as den_sum,
    cast(sum(segment_totals.denominator_square_total) as {{ type_double() }}) as den_sum_sq,
    cast(sum(segment_totals.value_denominator_total) as {{ type_double() }}) as value_den_cross_sum,
    cast(sum(segment_totals.denominator_covariate_total) as {{ type_double() }}) as den_cov_cross_sum
from segment_totals
inner join {{ ref('stg_experiment_variants') }} as variants
    on
        segment_totals.experiment_id = variants.experiment_id
        and segment_totals.variant = variants.variant
inner join {{ ref('int_experiment_metrics') }} as experiment_metrics
    on
        segment_totals.experiment_id = experiment_metrics.experiment_id
        and segment_totals.metric_id = experiment_metrics.metric_id
group by
    segment_totals.experiment_id,
    segment_totals.metric_id,
    segment_totals.variant,
    variants.is_control,
    segment_totals.dimension,
    segment_totals.segment,
    segment_totals.as_of_date,
    experiment_metrics.analysis_type

-- Exploratory segments: sufficient statistics per experiment x metric x variant x unit dimension x segment at each
-- experiment's latest as-of date, with the same columns as metric_sufficient_stats. The statistics engine tests
-- them into experiment_segment_results, which never enters a decision.
with last_dates as (
    select distinct
        experiment_id,
        last_date as as_of_date
    from {{ ref('int_experiment_days') }}
),

segment_changes as (
    select
        changes.*,
        segments.dimension,
        segments.segment,
        last_dates.as_of_date
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
    segment_changes.experiment_id,
    segment_changes.metric_id,
    segment_changes.variant,
    variants.is_control,
    segment_changes.dimension,
    segment_changes.segment,
    segment_changes.as_of_date,
    experiment_metrics.analysis_type,
    cast(sum(segment_changes.units_entering) as {{ dbt.type_bigint() }}) as n,
    cast(sum(segment_changes.value_change) as {{ type_double() }}) as sum,
    cast(sum(segment_changes.square_change) as {{ type_double() }}) as sum_sq,
    cast(sum(segment_changes.square_abs_change) as {{ type_double() }}) as sum_sq_abs,
    cast(max(segment_changes.value_shift) as {{ type_double() }}) as value_shift,
    cast(sum(segment_changes.units_without_history) as {{ dbt.type_bigint() }}) as units_without_history,
    cast(sum(segment_changes.covariate_change) as {{ type_double() }}) as cov_sum,
    cast(sum(segment_changes.covariate_square_change) as {{ type_double() }}) as cov_sum_sq,
    cast(sum(segment_changes.cross_change) as {{ type_double() }}) as cross_sum,
    cast(sum(segment_changes.denominator_change) as {{ type_double() }}) as den_sum,
    cast(sum(segment_changes.denominator_square_change) as {{ type_double() }}) as den_sum_sq,
    cast(sum(segment_changes.value_denominator_change) as {{ type_double() }}) as value_den_cross_sum,
    cast(sum(segment_changes.denominator_covariate_change) as {{ type_double() }}) as den_cov_cross_sum
from segment_changes
inner join {{ ref('stg_experiment_variants') }} as variants
    on
        segment_changes.experiment_id = variants.experiment_id
        and segment_changes.variant = variants.variant
inner join {{ ref('int_experiment_metrics') }} as experiment_metrics
    on
        segment_changes.experiment_id = experiment_metrics.experiment_id
        and segment_changes.metric_id = experiment_metrics.metric_id
group by
    segment_changes.experiment_id,
    segment_changes.metric_id,
    segment_changes.variant,
    variants.is_control,
    segment_changes.dimension,
    segment_changes.segment,
    segment_changes.as_of_date,
    experiment_metrics.analysis_type

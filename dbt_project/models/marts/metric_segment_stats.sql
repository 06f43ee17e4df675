-- Exploratory segments: sufficient statistics per experiment x metric x variant x unit dimension x segment at each
-- experiment's latest as-of date, with the same columns as metric_sufficient_stats. The statistics engine tests
-- them into experiment_segment_results, which never enters a decision.
with segment_totals as (
    select
        totals.*,
        segments.dimension,
        segments.segment
    from {{ ref('int_unit_metric_totals') }} as totals
    inner join {{ ref('int_unit_segments') }} as segments
        on
            totals.experiment_id = segments.experiment_id
            and totals.unit_id = segments.unit_id
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

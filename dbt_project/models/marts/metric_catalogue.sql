-- The metric catalogue with its measurement counts: what each metric is, and how much of its data was used (null
-- values skipped, values outside the metric's valid_range set aside).
with counts as (
    select
        metric_id,
        count(*) as measurements,
        sum(case when is_skipped and not is_out_of_range then 1 else 0 end) as skipped_measurements,
        sum(case when is_out_of_range then 1 else 0 end) as out_of_range_measurements
    from {{ ref('int_metric_measurements') }}
    group by metric_id
)

select
    definitions.*,
    cast(coalesce(counts.measurements, 0) as {{ dbt.type_bigint() }}) as measurements,
    cast(coalesce(counts.skipped_measurements, 0) as {{ dbt.type_bigint() }}) as skipped_measurements,
    cast(coalesce(counts.out_of_range_measurements, 0) as {{ dbt.type_bigint() }}) as out_of_range_measurements
from {{ ref('int_metric_definitions') }} as definitions
left join counts
    on definitions.metric_id = counts.metric_id

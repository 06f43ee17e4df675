-- The only data that leaves SQL for the statistics engine: sufficient statistics per
-- experiment x variant x metric x as-of date (unit count, sum and sum of squares of per-unit values).
with unit_values as (
    select * from {{ ref('int_unit_metric_values') }}
),

definitions as (
    select * from {{ ref('int_metric_definitions') }}
),

variants as (
    select * from {{ ref('stg_experiment_variants') }}
)

select
    unit_values.experiment_id,
    unit_values.metric_id,
    unit_values.variant,
    variants.is_control,
    unit_values.as_of_date,
    definitions.metric_type,
    count(*) as n,
    sum(unit_values.value) as sum,
    sum(unit_values.value * unit_values.value) as sum_sq
from unit_values
inner join definitions
    on unit_values.metric_id = definitions.metric_id
inner join variants
    on
        unit_values.experiment_id = variants.experiment_id
        and unit_values.variant = variants.variant
group by 1, 2, 3, 4, 5, 6

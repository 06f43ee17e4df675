-- Cumulative exposed units per experiment, variant and as-of date (crossovers excluded), beside the
-- planned weight: the input of the sample ratio mismatch check. Variants with no units appear with 0.
with days as (
    select * from {{ ref('int_experiment_days') }}
),

variants as (
    select * from {{ ref('stg_experiment_variants') }}
),

exposures_per_day as (
    select
        experiment_id,
        variant,
        exposure_date,
        count(*) as units
    from {{ ref('int_exposures') }}
    group by 1, 2, 3
)

select
    days.experiment_id,
    variants.variant,
    variants.is_control,
    variants.planned_weight,
    days.as_of_date,
    cast(coalesce(sum(exposures_per_day.units), 0) as {{ dbt.type_bigint() }}) as exposed_units
from days
inner join variants
    on days.experiment_id = variants.experiment_id
left join exposures_per_day
    on
        days.experiment_id = exposures_per_day.experiment_id
        and variants.variant = exposures_per_day.variant
        and exposures_per_day.exposure_date <= days.as_of_date
group by 1, 2, 3, 4, 5

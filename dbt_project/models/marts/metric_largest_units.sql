-- The unit with the largest share of each metric's spread, per experiment x metric x variant at each experiment's
-- latest as-of date: a unit whose value alone makes most of the sum of squared deviations (an outlier, a bot, a
-- broken log) decides the test by itself. For means and a ratio's numerator; proportions are bounded.
with unit_values as (
    select
        totals.experiment_id,
        totals.metric_id,
        totals.variant,
        totals.unit_id,
        totals.as_of_date,
        totals.value_total as unit_value
    from {{ ref('int_unit_metric_totals') }} as totals
    inner join {{ ref('int_experiment_metrics') }} as experiment_metrics
        on
            totals.experiment_id = experiment_metrics.experiment_id
            and totals.metric_id = experiment_metrics.metric_id
    where experiment_metrics.analysis_type != 'proportion'
),

deviations as (
    select
        unit_values.*,
        (unit_values.unit_value - avg(unit_values.unit_value) over cell)
        * (unit_values.unit_value - avg(unit_values.unit_value) over cell) as square_deviation
    from unit_values
    window cell as (partition by experiment_id, metric_id, variant)
),

ranked as (
    select
        deviations.*,
        -- the largest deviation; among equal ones (to 12 digits: sums of doubles differ in their last bits between
        -- an incremental build and a full refresh) the first unit id, so every build names the same unit
        row_number() over (
            partition by deviations.experiment_id, deviations.metric_id, deviations.variant
            order by {{ round_significant('deviations.square_deviation', 12) }} desc, deviations.unit_id asc
        ) as deviation_rank
    from deviations
)

select
    experiment_id,
    metric_id,
    variant,
    as_of_date,
    cast(count(*) as {{ dbt.type_bigint() }}) as n,
    cast(max(square_deviation) / nullif(sum(square_deviation), 0) as {{ type_double() }}) as largest_unit_share,
    max(case when deviation_rank = 1 then unit_id end) as largest_unit_id
from ranked
group by experiment_id, metric_id, variant, as_of_date

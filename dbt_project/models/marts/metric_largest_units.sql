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

cells as (
    select
        experiment_id,
        metric_id,
        variant,
        avg(unit_value) as mean_value
    from unit_values
    group by experiment_id, metric_id, variant
),

deviations as (
    select
        unit_values.*,
        (unit_values.unit_value - cells.mean_value) * (unit_values.unit_value - cells.mean_value) as square_deviation
    from unit_values
    inner join cells
        on
            unit_values.experiment_id = cells.experiment_id
            and unit_values.metric_id = cells.metric_id
            and unit_values.variant = cells.variant
),

rounded as (
    -- equal deviations to 12 digits count as a tie (sums of doubles differ in their last bits between an
    -- incremental build and a full refresh): the tied unit with the first id is named, by every build
    select
        deviations.*,
        {{ round_significant('deviations.square_deviation', 12) }} as rounded_deviation
    from deviations
),

spreads as (
    select
        experiment_id,
        metric_id,
        variant,
        as_of_date,
        count(*) as n,
        max(square_deviation) as largest_deviation,
        sum(square_deviation) as total_deviation,
        max(rounded_deviation) as largest_rounded
    from rounded
    group by experiment_id, metric_id, variant, as_of_date
),

largest_units as (
    select
        rounded.experiment_id,
        rounded.metric_id,
        rounded.variant,
        min(rounded.unit_id) as unit_id
    from rounded
    inner join spreads
        on
            rounded.experiment_id = spreads.experiment_id
            and rounded.metric_id = spreads.metric_id
            and rounded.variant = spreads.variant
            and rounded.rounded_deviation = spreads.largest_rounded
    group by rounded.experiment_id, rounded.metric_id, rounded.variant
)

-- aggregates and a join on the few cells, not a sort of every unit
select
    spreads.experiment_id,
    spreads.metric_id,
    spreads.variant,
    spreads.as_of_date,
    cast(spreads.n as {{ dbt.type_bigint() }}) as n,
    cast(spreads.largest_deviation / nullif(spreads.total_deviation, 0) as {{ type_double() }}) as largest_unit_share,
    largest_units.unit_id as largest_unit_id
from spreads
left join largest_units
    on
        spreads.experiment_id = largest_units.experiment_id
        and spreads.metric_id = largest_units.metric_id
        and spreads.variant = largest_units.variant

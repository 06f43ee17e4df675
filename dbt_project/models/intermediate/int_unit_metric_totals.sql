{{ config(materialized='table') }}

-- Each exposed unit's metric at its experiment's latest as-of date: its changes summed (value, square and the
-- covariate and denominator sums), one row per experiment x metric x unit. The segment statistics and the
-- largest-unit shares read these instead of summing every change again each.
with last_dates as (
    select distinct
        experiment_id,
        last_date as as_of_date
    from {{ ref('int_experiment_days') }}
)

select
    changes.experiment_id,
    changes.metric_id,
    changes.variant,
    changes.unit_id,
    last_dates.as_of_date,
    sum(changes.units_entering) as units_entering,
    sum(changes.value_change) as value_total,
    sum(changes.square_change) as square_total,
    sum(changes.square_abs_change) as square_abs_total,
    max(changes.value_shift) as value_shift,
    sum(changes.units_without_history) as units_without_history,
    sum(changes.covariate_change) as covariate_total,
    sum(changes.covariate_square_change) as covariate_square_total,
    sum(changes.cross_change) as cross_total,
    sum(changes.denominator_change) as denominator_total,
    sum(changes.denominator_square_change) as denominator_square_total,
    sum(changes.value_denominator_change) as value_denominator_total,
    sum(changes.denominator_covariate_change) as denominator_covariate_total
from {{ ref('int_unit_metric_changes') }} as changes
inner join last_dates
    on
        changes.experiment_id = last_dates.experiment_id
        and changes.change_date <= last_dates.as_of_date
group by changes.experiment_id, changes.metric_id, changes.variant, changes.unit_id, last_dates.as_of_date

{{ config(materialized='table') }}

-- Each entered unit's value at its experiment's latest as-of date: its value changes summed (of value -
-- value_shift), one row per experiment x metric x unit, which metric_largest_units ranks. The one value column
-- keeps the aggregation over every unit small; the segment statistics sum the changes themselves.
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
    sum(changes.value_change) as value_total
from {{ ref('int_unit_metric_changes') }} as changes
inner join last_dates
    on
        changes.experiment_id = last_dates.experiment_id
        and changes.change_date <= last_dates.as_of_date
group by changes.experiment_id, changes.metric_id, changes.variant, changes.unit_id, last_dates.as_of_date

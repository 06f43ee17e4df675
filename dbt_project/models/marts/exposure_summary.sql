-- Per experiment: units assigned, units excluded for being logged in more than one variant, and the rate.
select
    experiments.experiment_id,
    count(assignments.unit_id) as assigned_units,
    coalesce(sum(case when assignments.variant_count > 1 then 1 else 0 end), 0) as crossover_units,
    coalesce(sum(case when assignments.variant_count = 1 then 1 else 0 end), 0) as exposed_units,
    case
        when count(assignments.unit_id) = 0 then 0.0
        else
            cast(sum(case when assignments.variant_count > 1 then 1 else 0 end) as {{ type_double() }})
            / count(assignments.unit_id)
    end as crossover_rate
from {{ ref('stg_experiments') }} as experiments
left join {{ ref('int_unit_assignments') }} as assignments
    on experiments.experiment_id = assignments.experiment_id
group by 1

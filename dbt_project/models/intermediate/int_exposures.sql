-- The analysis population: each unit's first exposure in each experiment.
-- Units logged in more than one variant (crossovers) are excluded; `exposure_summary` counts them.
select
    experiment_id,
    unit_id,
    variant,
    first_exposed_at as exposed_at,
    cast(first_exposed_at as date) as exposure_date
from {{ ref('int_unit_assignments') }}
where variant_count = 1

-- One row per experiment and unit: the first exposure and how many variants the unit was seen in.
select
    experiment_id,
    unit_id,
    min(assigned_at) as first_exposed_at,
    count(distinct variant) as variant_count,
    min(variant) as variant  -- the variant when variant_count = 1
from {{ ref('stg_assignments') }}
group by experiment_id, unit_id

-- Clean assignment log rows; repeated assignments of a unit are kept (exposures take the first).
select
    experiment_id,
    unit_id,
    variant,
    assigned_at,
    logged_at
from {{ ref('stg_assignments_checked') }}
where quarantine_reason is null

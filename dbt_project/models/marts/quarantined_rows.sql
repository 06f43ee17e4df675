-- Raw rows set aside by staging, with the reason; nothing is dropped without a trace.
select
    'assignments' as source_table,
    quarantine_reason,
    cast({{ dbt.concat(["experiment_id", "':'", "coalesce(variant, '')"]) }} as {{ dbt.type_string() }}) as record_key,
    unit_id,
    assigned_at as occurred_at,
    logged_at
from {{ ref('stg_assignments_checked') }}
where quarantine_reason is not null

union all

select
    'events' as source_table,
    quarantine_reason,
    event_id as record_key,
    unit_id,
    occurred_at,
    logged_at
from {{ ref('stg_events_checked') }}
where quarantine_reason is not null

union all

select
    'units' as source_table,
    quarantine_reason,
    unit_id as record_key,
    unit_id,
    cast(null as {{ dbt.type_timestamp() }}) as occurred_at,
    cast(null as {{ dbt.type_timestamp() }}) as logged_at
from {{ ref('stg_units_checked') }}
where quarantine_reason is not null

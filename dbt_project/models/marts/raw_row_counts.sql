-- For every checked raw table: raw rows = clean rows + quarantined rows, (reasons in `quarantined_rows`).
with checked as (
    select
        'assignments' as source_table,
        quarantine_reason
    from {{ ref('stg_assignments_checked') }}
    union all
    select
        'events' as source_table,
        quarantine_reason
    from {{ ref('stg_events_checked') }}
    union all
    select
        'units' as source_table,
        quarantine_reason
    from {{ ref('stg_units_checked') }}
)

select
    source_table,
    cast(count(*) as {{ dbt.type_bigint() }}) as raw_rows,
    cast(sum(case when quarantine_reason is null then 1 else 0 end) as {{ dbt.type_bigint() }}) as clean_rows,
    cast(sum(case when quarantine_reason is not null then 1 else 0 end) as {{ dbt.type_bigint() }}) as quarantined_rows
from checked
group by 1

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
)

select
    source_table,
    count(*) as raw_rows,
    sum(case when quarantine_reason is null then 1 else 0 end) as clean_rows,
    sum(case when quarantine_reason is not null then 1 else 0 end) as quarantined_rows
from checked
group by 1

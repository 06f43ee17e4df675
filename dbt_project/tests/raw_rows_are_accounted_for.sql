{{ config(meta={"dagster": {"ref": {"name": "quarantined_rows"}}}) }}

-- Every raw assignment, event and unit row is either clean or quarantined: none is lost or duplicated.
with accounted as (
    select
        'assignments' as source_table,
        (select count(*) from {{ source('raw', 'assignments') }}) as raw_rows,
        (select count(*) from {{ ref('stg_assignments') }}) as clean_rows
    union all
    select
        'events' as source_table,
        (select count(*) from {{ source('raw', 'events') }}) as raw_rows,
        (select count(*) from {{ ref('stg_events') }}) as clean_rows
    union all
    select
        'units' as source_table,
        (select count(*) from {{ source('raw', 'units') }}) as raw_rows,
        (select count(*) from {{ ref('stg_units') }}) as clean_rows
),

quarantined as (
    select
        source_table,
        count(*) as quarantined_rows
    from {{ ref('quarantined_rows') }}
    group by 1
)

select accounted.*
from accounted
left join quarantined
    on accounted.source_table = quarantined.source_table
where accounted.raw_rows != accounted.clean_rows + coalesce(quarantined.quarantined_rows, 0)

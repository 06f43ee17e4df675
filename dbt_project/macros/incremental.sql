{#- Incremental work. Raw rows arrive with the time they were logged; a row logged more than
    `late_arrival_days` after the moment it records is quarantined as `late_arrival`. So a nightly run that has
    already seen everything logged up to day W can only receive new rows about moments on or after
    W - late_arrival_days: each incremental model recomputes that range (its scope) and replaces it whole, and a
    full refresh gives the same tables. Every incremental row carries `logged_through_at`, the latest logged_at of
    its sources when it was computed, from which the next run finds its scope. -#}

{#- The first day of the range an incremental model recomputes: the day its last build had seen data up to, less
    the late-arrival allowance (the earliest valid day when the table holds no rows yet). -#}
{% macro incremental_scope_start(relation=none) -%}
    {%- set scope_start -%}
        select coalesce(
            cast({{ dbt.dateadd('day', -1 * var('late_arrival_days'), 'cast(max(logged_through_at) as date)') }} as date),
            cast('{{ var("earliest_valid_timestamp") }}' as date)
        )
        from {{ relation or this }}
    {%- endset -%}
    {{ date_of(scope_start, relation or this) }}
{%- endmacro %}

{#- The day from which a checked raw table is reprocessed: its last logged day (a day may have been partly loaded).
    `logged_at` is the row's logged time in UTC (a raw source's through raw_timestamp).
    Rows without a readable logged_at are quarantined and reprocessed every time, and so are rows logged in the
    future, which never move the scope: one row logged in 2099 cannot stop the next night's rows. -#}
{% macro logged_scope_filter(relation=none, logged_at='logged_at') -%}
    {%- set last_logged_day -%}
        select coalesce(
            max(case when not {{ is_logged_in_future('logged_at') }} then cast(logged_at as date) end),
            cast('{{ var("earliest_valid_timestamp") }}' as date)
        )
        from {{ relation or this }}
    {%- endset -%}
    (
        {{ logged_at }} is null
        or cast({{ logged_at }} as date) >= {{ date_of(last_logged_day, relation or this) }}
    )
{%- endmacro %}

{#- A scope's first day, from `query` on `relation`: when a model runs, the date the query returns, as a literal,
    so that the engine can skip the earlier row groups of a large table (a subquery it can only filter row by row).
    The subquery where the relation is only a name: the placeholder DBT_INCREMENTAL_TARGET of the incremental
    delete's predicates (rendered with the configs) and a unit test's input. -#}
{% macro date_of(query, relation) -%}
    {%- if execute and relation is not string -%}
        {%- set day = run_query(query).columns[0].values()[0] -%}
        cast('{{ day }}' as date)
    {%- else -%}
        ({{ query }})
    {%- endif -%}
{%- endmacro %}

{#- The watermark of a model that reads both events and assignments: the earlier of their latest logged_at. -#}
{% macro events_and_assignments_logged_through() -%}
    least(
        (select max(events.logged_at) from {{ ref('stg_events') }} as events),
        (select max(assignments.last_logged_at) from {{ ref('int_unit_assignments') }} as assignments)
    )
{%- endmacro %}

{#- True when a row was logged more than `late_arrival_days` after the moment it records. -#}
{% macro is_late_arrival(column, logged_at) -%}
    {{ logged_at }} > {{ dbt.dateadd('day', var('late_arrival_days'), column) }}
{%- endmacro %}

{#- Incremental strategy `replace_where`: delete the target's rows that match the model's incremental_predicates
    (its scope), then insert the recomputed scope. Rows that no longer exist go with the rest of their range,
    which an upsert by key would keep. Plain delete and insert, which every SQL warehouse runs; the predicates
    are evaluated before the delete, on the same state the new rows were computed from. As in dbt's
    delete+insert, predicates name the target DBT_INCREMENTAL_TARGET (configs are rendered before `this` is). -#}
{% macro get_incremental_replace_where_sql(arg_dict) -%}
    {%- set predicates = arg_dict['incremental_predicates'] -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'replace_where' in " ~ this ~ " needs incremental_predicates naming its scope"
        ) }}
    {%- endif -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ predicates | join(' and ') | replace('DBT_INCREMENTAL_TARGET', target | string) }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{#- Post-hook: drop an incremental model's rows of units that later showed up in a second variant (crossovers
    leave the analysis, whatever day their rows are from). -#}
{% macro delete_crossover_units() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where exists (
            select 1 from {{ ref('int_unit_assignments') }} as assignments
            where
                assignments.variant_count > 1
                and assignments.experiment_id = {{ this }}.experiment_id
                and assignments.unit_id = {{ this }}.unit_id
        )
    {%- endif -%}
{%- endmacro %}

{#- How the incremental models are materialised: incrementally where the engine can delete a range of a table's rows
    (DuckDB and the SQL warehouses); on Spark, whose Parquet tables cannot, as tables rebuilt whole each night (a
    full refresh gives the same tables, so the rows are those of an incremental build). -#}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'verdict')()) }}
{%- endmacro %}

{% macro default__incremental_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__incremental_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

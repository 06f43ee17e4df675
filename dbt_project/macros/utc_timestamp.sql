{#- A raw timestamp as a UTC timestamp without time zone, whatever the source's type and the session's zone: text
    with an offset ('2026-11-01 15:00+05:00') and timestamptz values are converted to UTC, and a timestamp without a
    zone is taken as UTC (the profile sets the session's TimeZone to UTC). Unreadable text becomes null, which
    staging quarantines. -#}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'verdict')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
    timezone('UTC', try_cast({{ column }} as timestamptz))
{%- endmacro %}

{% macro spark__utc_timestamp(column) -%}
    to_utc_timestamp(try_cast({{ column }} as timestamp), current_timezone())
{%- endmacro %}

{#- A raw table's timestamp column in UTC: the column itself when it already is a timestamp without a zone (the
    session is UTC, so it reads as UTC and its zone maps still prune), else utc_timestamp of it. -#}
{% macro raw_timestamp(relation, column) -%}
    {%- if execute -%}
        {%- for name, data_type in relation_column_types(relation) if name | lower == column | lower -%}
            {%- if data_type | lower in ['timestamp', 'timestamp without time zone', 'datetime'] -%}
                {{ return(column) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(utc_timestamp(column)) }}
{%- endmacro %}

{#- (name, data type) of each column a relation has: a source read in place (dbt-duckdb's external location, a query
    or a file) as well as a table. -#}
{% macro relation_column_types(relation) -%}
    {{ return(adapter.dispatch('relation_column_types', 'verdict')(relation)) }}
{%- endmacro %}

{% macro default__relation_column_types(relation) -%}
    {%- set found = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do found.append((column.name, column.data_type)) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{% macro duckdb__relation_column_types(relation) -%}
    {%- if not relation.external -%}  {#- a table, or a unit test's stand-in for it -#}
        {{ return(default__relation_column_types(relation)) }}
    {%- endif -%}
    {%- set described = run_query('describe select * from ' ~ relation) -%}
    {{ return(zip(described.columns['column_name'].values(), described.columns['column_type'].values()) | list) }}
{%- endmacro %}

{#- The current moment as a UTC timestamp without time zone. -#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'verdict')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    timezone('UTC', current_timestamp)
{%- endmacro %}

{% macro spark__utc_now() -%}
    to_utc_timestamp(current_timestamp(), current_timezone())
{%- endmacro %}

{#- True when a row was logged after now (beyond clock-skew tolerance): its time cannot be real yet, and it must not
    move the incremental scope. -#}
{% macro is_logged_in_future(logged_at) -%}
    ({{ logged_at }} > {{ dbt.dateadd('hour', var('clock_skew_tolerance_hours'), utc_now()) }})
{%- endmacro %}

{#- A raw number as a double (null when unreadable, e.g. the text '12,5'). -#}
{% macro readable_double(column) -%}
    try_cast({{ column }} as {{ type_double() }})
{%- endmacro %}

{#- Why a raw event value cannot be used (null when it can, or is null): not a number, not finite, or larger in
    magnitude than var largest_valid_value (its square would overflow the sums). -#}
{% macro value_problem(raw, typed) -%}
    case
        when {{ raw }} is not null and {{ typed }} is null then 'unreadable_value'
        when not ({{ typed }} * 0 = 0) then 'non_finite_value'
        when abs({{ typed }}) > {{ var('largest_valid_value') }} then 'implausible_value'
    end
{%- endmacro %}

{#- One row per day from start_date to end_date (inclusive) for every row of a relation, as `day_column`.
    Engines spell this differently, so it dispatches per adapter. -#}
{% macro expand_days(relation_sql, start_date, end_date, day_column) -%}
    {{ return(adapter.dispatch('expand_days', 'verdict')(relation_sql, start_date, end_date, day_column)) }}
{%- endmacro %}

{% macro default__expand_days(relation_sql, start_date, end_date, day_column) -%}
    select
        expanded.*,
        cast(day_value as date) as {{ day_column }}
    from ({{ relation_sql }}) as expanded
    cross join unnest(generate_series(
        cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day
    )) as days (day_value)
{%- endmacro %}

{% macro spark__expand_days(relation_sql, start_date, end_date, day_column) -%}
    select
        expanded.*,
        day_value as {{ day_column }}
    from ({{ relation_sql }}) as expanded
    lateral view explode(sequence(
        cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day
    )) days as day_value
{%- endmacro %}

{#- Whole days from one date to another (end - start), as an integer. -#}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'verdict')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    date_diff('day', {{ start_date }}, {{ end_date }})
{%- endmacro %}

{% macro spark__days_between(start_date, end_date) -%}
    datediff({{ end_date }}, {{ start_date }})
{%- endmacro %}

{#- True when a timestamp cannot be real: missing, before the earliest valid date, or later than the
    moment its row was logged (beyond clock-skew tolerance); or when the row has no logged time to check it by. -#}
{% macro is_impossible_timestamp(column, logged_at) -%}
    (
        {{ column }} is null
        or {{ logged_at }} is null
        or {{ column }} < cast('{{ var("earliest_valid_timestamp") }}' as timestamp)
        or {{ column }} > {{ dbt.dateadd('hour', var('clock_skew_tolerance_hours'), logged_at) }}
    )
{%- endmacro %}

{#- The exact (interpolated) percentile of a column within a group; engines spell it differently. -#}
{% macro percentile(column, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'verdict')(column, fraction)) }}
{%- endmacro %}

{% macro default__percentile(column, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}

{% macro spark__percentile(column, fraction) -%}
    percentile({{ column }}, {{ fraction }})
{%- endmacro %}

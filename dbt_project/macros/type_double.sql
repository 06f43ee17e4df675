{#- 8-byte floating point: dbt's type_float() is 4 bytes on some engines (DuckDB), too coarse for sums. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'verdict')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}


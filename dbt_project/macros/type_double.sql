{#- 8-byte floating point: dbt's type_float() is 4 bytes on some engines (DuckDB), too coarse for sums. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'verdict')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}

{#- The value of `arg` on the row where `value` is largest. -#}
{% macro arg_max(arg, value) -%}
    {{ return(adapter.dispatch('arg_max', 'verdict')(arg, value)) }}
{%- endmacro %}

{% macro default__arg_max(arg, value) -%}arg_max({{ arg }}, {{ value }}){%- endmacro %}

{% macro spark__arg_max(arg, value) -%}max_by({{ arg }}, {{ value }}){%- endmacro %}

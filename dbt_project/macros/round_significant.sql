{#- x rounded to `digits` significant decimal digits (0 stays 0). -#}
{% macro round_significant(x, digits) -%}
    {{ return(adapter.dispatch('round_significant', 'verdict')(x, digits)) }}
{%- endmacro %}

{% macro default__round_significant(x, digits) -%}
    case
        when {{ x }} = 0 then 0.0
        else cast(round({{ x }}, {{ digits - 1 }} - cast(floor(log10(abs({{ x }}))) as integer)) as {{ type_double() }})
    end
{%- endmacro %}

{#- Spark's round takes a constant scale only: scale by the power of ten, round, scale back. -#}
{% macro spark__round_significant(x, digits) -%}
    {%- set scale = (digits - 1) ~ ' - cast(floor(log10(abs(' ~ x ~ '))) as int)' -%}
    case
        when {{ x }} = 0 then 0.0
        when {{ scale }} >= 0 then round({{ x }} * power(10, {{ scale }})) / power(10, {{ scale }})
        else round({{ x }} / power(10, -({{ scale }}))) * power(10, -({{ scale }}))
    end
{%- endmacro %}

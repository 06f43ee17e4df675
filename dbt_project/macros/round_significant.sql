{#- x rounded to `digits` significant decimal digits (0 stays 0). -#}
{% macro round_significant(x, digits) -%}
    case
        when {{ x }} = 0 then 0.0
        else cast(round({{ x }}, {{ digits - 1 }} - cast(floor(log10(abs({{ x }}))) as integer)) as {{ type_double() }})
    end
{%- endmacro %}

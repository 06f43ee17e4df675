{#- A metric model's rows as int_metric_measurements reads them (metric_measurement_sql): errors with the problem
    when the model's metric settings are invalid, fails for every measurement
    without a unit or (in a model that returns measured_at) a time, or whose value or denominator is not a finite number (a null one is allowed), and
    errors when a column cannot be read as its type. Metric models are views, so a query error shows only when
    every column is read: this filter reads them all, in one scan, so that a broken metric model fails here,
    on its own, rather than in the union of every metric. An incremental build checks the measurements it will
    read (its scope, see macros/incremental.sql). Applies to metric models (the project's metrics folder). -#}
{% test measurements_are_readable(model, column_name=none) %}
{%- if execute -%}
    {%- set metric = tested_metric(model, 'measurements_are_readable') -%}
    {%- if metric.get('problem') -%}
        {#- invalid settings: the test errors with the problem, which breaks this metric model alone -#}
        {{ exceptions.raise_compiler_error(metric.problem) }}
    {%- endif %}
with measurements as (
    {{ metric_measurement_sql(metric, model) }}
)

select *
from measurements
where
    {{ measurement_test_scope() }}
    and (
        unit_id is null
        {% if has_timestamps(model) %}or measured_at is null{% endif %}
        -- x * 0 is 0 for a finite x and NaN for an infinite one (or NaN); null for null, which is allowed
        or not (value * 0 = 0)
        or not (denominator * 0 = 0)
    )
{%- endif -%}
{% endtest %}

{#- A metric model returns each measurement once: rows equal in unit, time, value and denominator (a join that fans
    out, a source loaded twice) are counted, one failing row per repeated measurement with its copies. A warning:
    two equal measurements can be real. Applies to metric models (the project's metrics folder), in the build's scope. -#}
{% test measurements_are_distinct(model, column_name=none) %}
{%- if execute -%}
    {%- set metric = tested_metric(model, 'measurements_are_distinct') -%}
    {{ config(severity='warn') }}
select
    unit_id,
    measured_at,
    value,
    denominator,
    count(*) as copies
from (
    {% if metric.get('problem') %}
        select null as unit_id, null as measured_at, null as value, null as denominator where 1 = 0
    {% else %}
        {{ metric_measurement_sql(metric, model) }}
    {% endif %}
) as measurements
where {{ measurement_test_scope() }}
group by unit_id, measured_at, value, denominator
having count(*) > 1
{%- endif -%}
{% endtest %}

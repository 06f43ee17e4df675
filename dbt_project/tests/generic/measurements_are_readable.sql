{#- A metric model's rows as int_metric_measurements reads them (metric_measurement_sql): errors with the problem
    when the model's metric settings are invalid, fails for every measurement
    without a unit or a time, or whose value or denominator is not a finite number (a null one is allowed), and
    errors when a column cannot be read as its type. Metric models are views, so a query error shows only when
    every column is read: this filter reads them all, in one scan, so that a broken metric model fails here,
    on its own, rather than in the union of every metric. An incremental build checks the measurements it will
    read (its scope, see macros/incremental.sql). Applies to metric models (models/metrics). -#}
{% test measurements_are_readable(model, column_name=none) %}
{%- if execute -%}
    {%- set metric = metric_nodes() | selectattr('name', 'equalto', model.identifier) | first -%}
    {%- if not metric -%}
        {{ exceptions.raise_compiler_error(
            "measurements_are_readable tests metric models (models/metrics), not " ~ model
        ) }}
    {%- endif %}
    {%- if metric.get('problem') -%}
        {#- invalid settings: the test errors with the problem, which breaks this metric model alone -#}
        {{ exceptions.raise_compiler_error(metric.problem) }}
    {%- endif %}
    {%- set measurements = graph.nodes['model.verdict.int_metric_measurements'] -%}
    {%- set built = adapter.get_relation(measurements.database, measurements.schema, measurements.alias) -%}
with measurements as (
    {{ metric_measurement_sql(metric, model) }}
)

select *
from measurements
where
    {% if built is not none and not flags.FULL_REFRESH %}
        -- an incremental build reads only its scope: earlier measurements were read, and checked, before
        (measured_at is null or measured_at >= cast({{ incremental_scope_start(built) }} as {{ dbt.type_timestamp() }}))
        and (
    {% endif %}
    unit_id is null
    or measured_at is null
    -- x * 0 is 0 for a finite x and NaN for an infinite one (or NaN); null for null, which is allowed
    or not (value * 0 = 0)
    or not (denominator * 0 = 0)
    {% if built is not none and not flags.FULL_REFRESH %}
        )
    {% endif %}
{%- endif -%}
{% endtest %}

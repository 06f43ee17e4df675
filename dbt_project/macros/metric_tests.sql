{#- Helpers of the metric models' tests (tests/generic/measurements_are_readable.sql). -#}

{#- The metric a metric-model test is on (a test on any other model fails to compile). -#}
{% macro tested_metric(model, test_name) -%}
    {%- set metric = metric_nodes() | selectattr('name', 'equalto', model.identifier) | first -%}
    {%- if not metric -%}
        {{ exceptions.raise_compiler_error(test_name ~ " tests metric models (the project's metrics folder), not " ~ model) }}
    {%- endif -%}
    {{ return(metric) }}
{%- endmacro %}

{#- An incremental build reads only its scope of the measurements: earlier ones were read, and checked, before. -#}
{% macro measurement_test_scope() -%}
    {%- set measurements = graph.nodes['model.verdict.int_metric_measurements'] -%}
    {%- set built = adapter.get_relation(measurements.database, measurements.schema, measurements.alias) -%}
    {%- if built is not none and not flags.FULL_REFRESH -%}
        (measured_at is null or measured_at >= cast({{ incremental_scope_start(built) }} as {{ dbt.type_timestamp() }}))
    {%- else -%}
        (1 = 1)
    {%- endif -%}
{%- endmacro %}

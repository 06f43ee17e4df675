{#- The metric layer. A metric is a model in models/metrics whose YAML entry carries `meta.metric`.
    These macros read those settings from the graph (at execution time), validate them, and build the
    catalogue and the union of all measurements. -#}


{% macro metric_nodes() -%}
    {#- Validated metric models as a list of {name, type, aggregation, window_days}. -#}
    {% set metrics = [] %}
    {% if execute %}
        {% for node in graph.nodes.values()
            if node.resource_type == 'model' and node.package_name == project_name
            and node.original_file_path.startswith('models/metrics/') %}
            {% do metrics.append(validated_metric(node)) %}
        {% endfor %}
    {% endif %}
    {{ return(metrics | sort(attribute='name')) }}
{%- endmacro %}

{% macro validated_metric(node) -%}
    {% set where = 'metric model ' ~ node.name ~ ' (' ~ node.original_file_path ~ ')' %}
    {% set settings = node.config.meta.get('metric') %}
    {% if settings is none or settings is not mapping %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric' is missing. Add config: {meta: {metric: {type: mean, aggregation: sum}}} to its entry in models/metrics/_metrics.yml") }}
    {% endif %}
    {% set known = ['type', 'aggregation', 'window_days'] %}
    {% for key in settings if key not in known %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric." ~ key ~ "' is not a known setting. Use only " ~ known | join(', ')) }}
    {% endfor %}
    {% set metric_type = settings.get('type') %}
    {% if metric_type not in ['mean', 'proportion', 'ratio'] %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric.type' is " ~ metric_type ~ ". Set it to one of: mean, proportion, ratio") }}
    {% endif %}
    {% if metric_type == 'ratio' and 'denominator' not in node.columns %}
        {{ exceptions.raise_compiler_error(where ~ ": a ratio metric needs a 'denominator' column. Return it from the model and document it under columns in its YAML entry") }}
    {% endif %}
    {% set aggregation = settings.get('aggregation', 'sum') %}
    {% if aggregation not in ['sum', 'max', 'count'] %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric.aggregation' is " ~ aggregation ~ ". Set it to one of: sum, max, count") }}
    {% endif %}
    {% if metric_type == 'ratio' and aggregation != 'sum' %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric.aggregation' must be sum for a ratio metric (numerator and denominator are summed per unit). Set aggregation: sum") }}
    {% endif %}
    {% if metric_type == 'proportion' and aggregation != 'max' %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric.aggregation' must be max for a proportion metric (a unit either did it or not). Set aggregation: max") }}
    {% endif %}
    {% set window_days = settings.get('window_days') %}
    {% if window_days is not none and (window_days is not number or window_days < 1 or window_days != window_days | int) %}
        {{ exceptions.raise_compiler_error(where ~ ": field 'meta.metric.window_days' is " ~ window_days ~ ". Set a whole number of days of at least 1, or remove it for a cumulative metric") }}
    {% endif %}
    {{ return({'name': node.name, 'unique_id': node.unique_id, 'type': metric_type,
               'aggregation': aggregation, 'window_days': window_days}) }}
{%- endmacro %}

{% macro metric_definitions_sql() -%}
    {% set metrics = metric_nodes() %}
    {% if metrics | length == 0 %}
        select
            cast(null as {{ dbt.type_string() }}) as metric_id,
            cast(null as {{ dbt.type_string() }}) as metric_type,
            cast(null as {{ dbt.type_string() }}) as aggregation,
            cast(null as {{ dbt.type_int() }}) as window_days
        where 1 = 0
    {% endif %}
    {% for metric in metrics %}
        select
            cast('{{ metric.name }}' as {{ dbt.type_string() }}) as metric_id,
            cast('{{ metric.type }}' as {{ dbt.type_string() }}) as metric_type,
            cast('{{ metric.aggregation }}' as {{ dbt.type_string() }}) as aggregation,
            cast({{ 'null' if metric.window_days is none else metric.window_days }} as {{ dbt.type_int() }}) as window_days
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
{%- endmacro %}

{% macro metric_measurements_sql() -%}
    {#- Union of every metric model. Each needs a `-- depends_on: ref(...)` line in the calling model
        so dbt orders it first; a missing line fails with the line to add. -#}
    {% set metrics = metric_nodes() %}
    {% if execute %}
        {% for metric in metrics if metric.unique_id not in model.depends_on.nodes %}
            {{ exceptions.raise_compiler_error("metric model " ~ metric.name ~ " is not listed in " ~ model.original_file_path ~ ". Add the line: -- depends_on: {{ ref('" ~ metric.name ~ "') }}") }}
        {% endfor %}
    {% endif %}
    {% if metrics | length == 0 %}
        select
            cast(null as {{ dbt.type_string() }}) as metric_id,
            cast(null as {{ dbt.type_string() }}) as unit_id,
            cast(null as {{ dbt.type_timestamp() }}) as measured_at,
            cast(null as {{ type_double() }}) as value,
            cast(null as {{ type_double() }}) as denominator
        where 1 = 0
    {% endif %}
    {% for metric in metrics %}
        select
            cast('{{ metric.name }}' as {{ dbt.type_string() }}) as metric_id,
            cast(unit_id as {{ dbt.type_string() }}) as unit_id,
            cast(measured_at as {{ dbt.type_timestamp() }}) as measured_at,
            cast(value as {{ type_double() }}) as value,
            cast({{ 'denominator' if metric.type == 'ratio' else 'null' }} as {{ type_double() }}) as denominator
        from {{ ref(metric.name) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
{%- endmacro %}

{#- The metric layer. A metric is a model in the Verdict project's metrics folder whose YAML entry carries `meta.metric`.
    These macros read those settings from the graph (at execution time), validate them, and build the
    catalogue and the union of all measurements. -#}


{% macro metric_nodes() -%}
    {#- Every metric model as its validated settings ({name, type, aggregation, window_days, ...}), or, when they are
        invalid, {name, unique_id, problem}. -#}
    {% set metrics = [] %}
    {% if execute %}
        {% for node in graph.nodes.values()
            if node.resource_type == 'model' and node.package_name == project_name
            and is_metric_model(node) %}
            {% do metrics.append(validated_metric(node)) %}
        {% endfor %}
    {% endif %}
    {{ return(metrics | sort(attribute='name')) }}
{%- endmacro %}

{% macro is_metric_model(node) -%}
    {#- Whether a node of this project is a metric model: a model in the Verdict project's metrics folder. -#}
    {{ return(node.resource_type == 'model' and node.original_file_path.startswith('metrics/')) }}
{%- endmacro %}

{% macro metric_model_refs() -%}
    {#- A ref() of every metric model of the Verdict project, for dbt to order the models that read them all:
        VERDICT_METRIC_MODELS lists them (pipelines/project.py sets it from the metrics folder's files). -#}
    {% for name in env_var('VERDICT_METRIC_MODELS', '').split(',') if name %}
        -- depends_on: {{ ref(name) }}
    {% endfor %}
{%- endmacro %}

{% macro validated_metric(node) -%}
    {#- The settings of one metric model, with defaults filled in; a bad setting gives its problem, naming model,
        field and fix (invalid_metric). -#}
    {% set where = 'metric model ' ~ node.name ~ ' (' ~ node.original_file_path ~ ')' %}
    {% set settings = node.config.meta.get('metric') %}
    {% if settings is none or settings is not mapping %}
        {{ return(invalid_metric(node, where, 'meta.metric', 'is missing. Add config: {meta: {metric: {type: mean, aggregation: sum}}} to its entry in the YAML beside the model')) }}
    {% endif %}
    {% set known = ['type', 'aggregation', 'window_days', 'window_offset_days', 'winsorize', 'threshold',
                    'null_values', 'valid_range', 'preferred_direction', 'minimum_detectable_effect',
                    'non_inferiority_margin'] %}
    {% for key in settings if key not in known %}
        {{ return(invalid_metric(node, where, 'meta.metric.' ~ key, 'is not a known setting. Use only ' ~ known | join(', '))) }}
    {% endfor %}

    {% set metric_type = settings.get('type') %}
    {% set aggregations = {
        'mean': ['sum', 'max', 'count', 'count_distinct'],
        'count': ['count', 'count_distinct'],
        'proportion': ['max'],
        'ratio': ['sum'],
        'threshold': ['sum', 'max', 'count', 'count_distinct'],
        'retention': ['count'],
    } %}
    {% if metric_type not in aggregations %}
        {{ return(invalid_metric(node, where, 'meta.metric.type', 'is ' ~ metric_type ~ '. Set it to one of: ' ~ aggregations.keys() | join(', '))) }}
    {% endif %}
    {% if metric_type == 'ratio' and 'denominator' not in node.columns %}
        {{ return(invalid_metric(node, where, 'columns', "has no 'denominator': a ratio metric needs one. Return it from the model and document it under columns in its YAML entry")) }}
    {% endif %}
    {% set aggregation = settings.get('aggregation', aggregations[metric_type][0]) %}
    {% if aggregation not in aggregations[metric_type] %}
        {{ return(invalid_metric(node, where, 'meta.metric.aggregation', 'is ' ~ aggregation ~ ', which a ' ~ metric_type ~ ' metric cannot use. Set it to one of: ' ~ aggregations[metric_type] | join(', '))) }}
    {% endif %}

    {% set window_days = settings.get('window_days') %}
    {% if window_days is not none and not is_whole(window_days, 1) %}
        {{ return(invalid_metric(node, where, 'meta.metric.window_days', 'is ' ~ window_days ~ '. Set a whole number of days of at least 1, or remove it for a cumulative metric')) }}
    {% endif %}
    {% set window_offset_days = settings.get('window_offset_days', 0 if window_days is not none else none) %}
    {% if window_offset_days is not none and window_days is none %}
        {{ return(invalid_metric(node, where, 'meta.metric.window_offset_days', 'needs a window: set window_days too (a cumulative metric starts at exposure)')) }}
    {% endif %}
    {% if window_offset_days is not none and not is_whole(window_offset_days, 0) %}
        {{ return(invalid_metric(node, where, 'meta.metric.window_offset_days', 'is ' ~ window_offset_days ~ '. Set a whole number of days of at least 0')) }}
    {% endif %}
    {% if metric_type == 'retention' and window_days is none %}
        {{ return(invalid_metric(node, where, 'meta.metric.window_days', 'is missing: a retention metric asks whether the unit came back in a window. Set window_offset_days and window_days, e.g. 7 and 1 for day-7 retention')) }}
    {% endif %}

    {% set threshold = settings.get('threshold', 1 if metric_type == 'retention' else none) %}
    {% if metric_type == 'threshold' and threshold is not number %}
        {{ return(invalid_metric(node, where, 'meta.metric.threshold', 'is ' ~ (threshold if threshold is not none else 'missing') ~ '. A threshold metric needs a number: the unit counts when its aggregated value reaches it')) }}
    {% endif %}
    {% if threshold is not none and metric_type not in ['threshold', 'retention'] %}
        {{ return(invalid_metric(node, where, 'meta.metric.threshold', 'only applies to threshold and retention metrics. Remove it or set type: threshold')) }}
    {% endif %}

    {% set winsorize = settings.get('winsorize') %}
    {% set caps = {'lower': none, 'upper': none} %}
    {% if winsorize is not none %}
        {% if winsorize is not mapping or winsorize | length == 0 or winsorize.keys() | reject('in', ['lower', 'upper']) | list %}
            {{ return(invalid_metric(node, where, 'meta.metric.winsorize', 'is ' ~ winsorize ~ '. Set percentiles to cap per-unit values at, e.g. {upper: 0.99} or {lower: 0.01, upper: 0.99}')) }}
        {% endif %}
        {% for side, percentile in winsorize.items() %}
            {% if percentile is not number or percentile <= 0 or percentile >= 1 %}
                {{ return(invalid_metric(node, where, 'meta.metric.winsorize.' ~ side, 'is ' ~ percentile ~ '. Set a percentile strictly between 0 and 1, e.g. 0.99')) }}
            {% endif %}
            {% do caps.update({side: percentile}) %}
        {% endfor %}
        {% if caps.lower is not none and caps.upper is not none and caps.lower >= caps.upper %}
            {{ return(invalid_metric(node, where, 'meta.metric.winsorize', 'has lower ' ~ caps.lower ~ ' not below upper ' ~ caps.upper ~ '. Swap them')) }}
        {% endif %}
        {% if metric_type not in ['mean', 'count', 'ratio'] %}
            {{ return(invalid_metric(node, where, 'meta.metric.winsorize', 'does not apply to a ' ~ metric_type ~ ' metric (its unit values are 0 or 1). Remove it')) }}
        {% endif %}
    {% endif %}

    {% set null_values = settings.get('null_values', 'skip') %}
    {% if null_values not in ['skip', 'zero'] %}
        {{ return(invalid_metric(node, where, 'meta.metric.null_values', 'is ' ~ null_values ~ ". Set skip (a measurement with a null value is left out and counted) or zero (it counts as 0)")) }}
    {% endif %}
    {% set valid_range = settings.get('valid_range') %}
    {% set bounds = {'min': none, 'max': none} %}
    {% if valid_range is not none %}
        {% if valid_range is not mapping or valid_range | length == 0 or valid_range.keys() | reject('in', ['min', 'max']) | list %}
            {{ return(invalid_metric(node, where, 'meta.metric.valid_range', 'is ' ~ valid_range ~ '. Set the plausible measurement values, e.g. {min: 0} or {min: 0, max: 1440}: a measurement outside is set aside and counted')) }}
        {% endif %}
        {% for side, bound in valid_range.items() %}
            {% if bound is not number %}
                {{ return(invalid_metric(node, where, 'meta.metric.valid_range.' ~ side, 'is ' ~ bound ~ '. Set a number')) }}
            {% endif %}
            {% do bounds.update({side: bound}) %}
        {% endfor %}
        {% if bounds.min is not none and bounds.max is not none and bounds.min >= bounds.max %}
            {{ return(invalid_metric(node, where, 'meta.metric.valid_range', 'has min ' ~ bounds.min ~ ' not below max ' ~ bounds.max ~ '. Swap them')) }}
        {% endif %}
    {% endif %}
    {% set direction = settings.get('preferred_direction') %}
    {% if direction not in [none, 'increase', 'decrease'] %}
        {{ return(invalid_metric(node, where, 'meta.metric.preferred_direction', 'is ' ~ direction ~ '. Set increase or decrease')) }}
    {% endif %}
    {% for key in ['minimum_detectable_effect', 'non_inferiority_margin'] %}
        {% set relative = settings.get(key) %}
        {% if relative is not none and (relative is not number or relative <= 0) %}
            {{ return(invalid_metric(node, where, 'meta.metric.' ~ key, 'is ' ~ relative ~ '. Set a positive relative effect, e.g. 0.02 for 2%')) }}
        {% endif %}
    {% endfor %}

    {{ return({
        'name': node.name, 'unique_id': node.unique_id, 'type': metric_type,
        'analysis_type': {'count': 'mean', 'threshold': 'proportion', 'retention': 'proportion'}.get(metric_type, metric_type),
        'aggregation': aggregation, 'window_days': window_days, 'window_offset_days': window_offset_days,
        'threshold': threshold, 'winsorize_lower': caps.lower, 'winsorize_upper': caps.upper,
        'null_values': null_values, 'valid_min': bounds.min, 'valid_max': bounds.max, 'preferred_direction': direction,
        'minimum_detectable_effect': settings.get('minimum_detectable_effect'),
        'non_inferiority_margin': settings.get('non_inferiority_margin'),
    }) }}
{%- endmacro %}

{% macro invalid_metric(node, where, field, problem) -%}
    {#- A metric whose settings are invalid: its problem (model, field and fix) instead of its settings. The metric is
        left out of the measurements and its measurements_are_readable test fails with the problem, so only the
        experiments that use it are held back. -#}
    {{ return({'name': node.name, 'unique_id': node.unique_id, 'problem': where ~ ": field '" ~ field ~ "' " ~ problem}) }}
{%- endmacro %}

{% macro is_whole(value, minimum) -%}
    {{ return(value is number and value == value | int and value >= minimum) }}
{%- endmacro %}

{% macro metric_setting_columns() -%}
    {#- The catalogue's columns: setting name -> SQL type. -#}
    {{ return({
        'metric_type': dbt.type_string(), 'analysis_type': dbt.type_string(), 'aggregation': dbt.type_string(),
        'window_days': dbt.type_int(), 'window_offset_days': dbt.type_int(), 'threshold': type_double(),
        'winsorize_lower': type_double(), 'winsorize_upper': type_double(), 'null_values': dbt.type_string(),
        'valid_min': type_double(), 'valid_max': type_double(),
        'preferred_direction': dbt.type_string(), 'minimum_detectable_effect': type_double(),
        'non_inferiority_margin': type_double(),
    }) }}
{%- endmacro %}

{% macro sql_literal(value) -%}
    {%- if value is none -%}null
    {%- elif value is string -%}'{{ value | replace("'", "''") }}'
    {%- else -%}{{ value }}
    {%- endif -%}
{%- endmacro %}

{% macro broken_metric_names() -%}
    {#- The metric models left out of this build's measurements: the var broken_metrics, which the Dagster dbt asset
        sets to the metric models that failed to build or failed their data tests. A name that is not a metric
        model fails, naming the metric models there are. -#}
    {% set names = var('broken_metrics', []) %}
    {% if names is string or names is mapping or names is not iterable %}
        {{ exceptions.raise_compiler_error("var broken_metrics is " ~ names ~ ": set a list of metric model names, e.g. [crash_rate]") }}
    {% endif %}
    {% if execute %}
        {% set known = metric_nodes() | map(attribute='name') | list %}
        {% for name in names if name not in known %}
            {{ exceptions.raise_compiler_error("var broken_metrics names " ~ name ~ ", which is not a metric model. Use some of: " ~ known | join(', ')) }}
        {% endfor %}
    {% endif %}
    {{ return(names | list) }}
{%- endmacro %}

{% macro has_timestamps(relation) -%}
    {#- Whether a metric model returns measured_at: a model without it is a unit-level metric, one value per unit
        taken as measured at the unit's exposure. Read from the built view (metric models are built first); a model
        not built yet (compiling alone) counts as timed. -#}
    {%- if not execute or relation is string -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set columns = relation_column_types(relation) | map('first') | map('lower') | list -%}
    {{ return(not columns or 'measured_at' in columns) }}
{%- endmacro %}

{% macro metric_definitions_sql() -%}
    {#- One row per metric with its validated settings (null, with the problem, when they are invalid), and whether
        this build left its model out as broken (invalid settings, or a model that failed to build or its test). -#}
    {% set metrics = metric_nodes() %}
    {% set columns = metric_setting_columns() %}
    {% set broken = broken_metric_names() %}
    {% for metric in metrics or [none] %}
        select
            cast({{ sql_literal(metric.name if metric else none) }} as {{ dbt.type_string() }}) as metric_id
            {%- for column, data_type in columns.items() %},
            cast({{ sql_literal(metric.get(column | replace('metric_type', 'type')) if metric else none) }} as {{ data_type }}) as {{ column }}
            {%- endfor %},
            cast({{ sql_literal(metric.get('problem') if metric else none) }} as {{ dbt.type_string() }}) as problem,
            cast({{ 'true' if metric and (metric.name in broken or metric.get('problem')) else 'false' }} as {{ dbt.type_boolean() }}) as is_broken
        {% if not metric %}where 1 = 0{% endif %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
{%- endmacro %}

{% macro metric_measurement_sql(metric, relation) -%}
    {#- One metric's measurements from `relation` as the union reads them: typed and tagged with the metric id. A
        measurement whose value (or denominator) is null is kept with is_skipped = true under `null_values: skip`,
        and counts as 0 under `null_values: zero`. A value outside the metric's valid_range is kept with
        is_out_of_range = true and is_skipped = true: set aside, and counted in the catalogue. -#}
    {% set ratio = metric.type == 'ratio' %}
    {% set zero = metric.null_values == 'zero' %}
    {% set value = 'coalesce(value, 0)' if zero else 'value' %}
    {% set denominator = ('coalesce(denominator, 0)' if zero else 'denominator') if ratio else 'null' %}
    {% set out_of_range = [] %}
    {% if metric.valid_min is not none %}{% do out_of_range.append(value ~ ' < ' ~ metric.valid_min) %}{% endif %}
    {% if metric.valid_max is not none %}{% do out_of_range.append(value ~ ' > ' ~ metric.valid_max) %}{% endif %}
    {% set out_of_range = '(' ~ (out_of_range | join(' or ') or 'false') ~ ')' %}
    select
        cast({{ sql_literal(metric.name) }} as {{ dbt.type_string() }}) as metric_id,
        cast(unit_id as {{ dbt.type_string() }}) as unit_id,
        {# a unit-level metric (no measured_at: one value per unit, e.g. from an outcome table) is measured at exposure #}
        cast({{ 'measured_at' if has_timestamps(relation) else 'null' }} as {{ dbt.type_timestamp() }}) as measured_at,
        cast({{ value }} as {{ type_double() }}) as value,
        cast({{ denominator }} as {{ type_double() }}) as denominator,
        {{ value }} is null {% if ratio %}or {{ denominator }} is null{% endif %} or coalesce({{ out_of_range }}, false)
            as is_skipped,
        coalesce({{ out_of_range }}, false) as is_out_of_range
    from {{ relation }}
{%- endmacro %}

{% macro metric_measurements_sql() -%}
    {#- Union of every metric model but the broken ones (broken_metric_names). The calling model refs them all
        (metric_model_refs) so that dbt builds them first; one missing from VERDICT_METRIC_MODELS (dbt run by hand
        without it) fails with the way to set it. -#}
    {% set metrics = metric_nodes() %}
    {% if execute %}
        {% for metric in metrics if metric.unique_id not in model.depends_on.nodes %}
            {{ exceptions.raise_compiler_error("metric model " ~ metric.name ~ " is not in VERDICT_METRIC_MODELS, which lists the metric models for dbt. Run dbt through verdict (verdict run), or set VERDICT_METRIC_MODELS to the comma-separated names of the .sql files in the project's metrics folder") }}
        {% endfor %}
    {% endif %}
    {% set broken = broken_metric_names() %}
    {% for metric in metrics if metric.name not in broken and not metric.get('problem') %}
        {{ metric_measurement_sql(metric, ref(metric.name)) }}
        {% if not loop.last %}union all{% endif %}
    {% else %}
        {{ metric_measurement_sql({'name': none, 'type': none, 'null_values': 'skip', 'valid_min': none, 'valid_max': none},
                                  '(select null as unit_id, null as measured_at, null as value) as no_metrics') }}
        where 1 = 0
    {% endfor %}
{%- endmacro %}

{% macro metric_unit_value(value, lower='cap_lower', upper='cap_upper') -%}
    {#- A unit's analysed value from its aggregated value: 1 or 0 against the metric's threshold (threshold and
        retention metrics), else the value clipped to the winsorization caps (null caps do not clip). -#}
    case
        when threshold is not null then case when {{ value }} >= threshold then 1.0 else 0.0 end
        else least(greatest({{ value }}, coalesce({{ lower }}, {{ value }})), coalesce({{ upper }}, {{ value }}))
    end
{%- endmacro %}

{% macro interpolated_percentile(column, rank, fraction, units='units') -%}
    {#- Aggregate: the percentile `fraction` of `column` over the group by linear interpolation between the ranked
        values around fraction x (units - 1) (percentile_cont), from each row's 0-based `rank` and the group's
        `units`. Written with plain arithmetic so that the fraction may be a column, on any engine. -#}
    case when max({{ fraction }}) is not null and count({{ column }}) > 0 then sum(
        case
            when {{ rank }} = floor({{ fraction }} * ({{ units }} - 1))
                then {{ column }} * (1 - ({{ fraction }} * ({{ units }} - 1) - floor({{ fraction }} * ({{ units }} - 1))))
            when {{ rank }} = floor({{ fraction }} * ({{ units }} - 1)) + 1
                then {{ column }} * ({{ fraction }} * ({{ units }} - 1) - floor({{ fraction }} * ({{ units }} - 1)))
            else 0
        end
    ) end
{%- endmacro %}

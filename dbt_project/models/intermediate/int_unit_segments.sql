-- The segment of each analysed unit in each unit dimension its experiment is broken down by: the dimension's
-- `segment_top_values` most common values among the experiment's units keep their name, the rest are '(other)'
-- (a missing value is 'unknown'). The dimensions are the documented columns of stg_units and the project's own
-- (VERDICT_UNIT_DIMENSIONS: the units source's `dimensions` in verdict.yml).
-- depends_on: {{ ref('stg_units') }}
{% set dimensions = [] %}
{% if execute %}
    {% set units = graph.nodes['model.' ~ project_name ~ '.stg_units'] %}
    {% for column in units.columns if column != 'unit_id' %}
        {% do dimensions.append(column) %}
    {% endfor %}
    {% for column in env_var('VERDICT_UNIT_DIMENSIONS', '').split(',') if column and column not in dimensions %}
        {% do dimensions.append(column) %}
    {% endfor %}
{% endif %}

with dimension_values as (
    {% for dimension in dimensions or [none] %}
        select
            unit_id,
            cast({{ sql_literal(dimension) }} as {{ dbt.type_string() }}) as dimension,
            cast({{ dimension or 'null' }} as {{ dbt.type_string() }}) as dimension_value
        from {{ ref('stg_units') }}
        {% if not dimension %}where 1 = 0{% endif %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

analysed as (
    select
        exposures.experiment_id,
        exposures.unit_id,
        segments.dimension,
        coalesce(dimension_values.dimension_value, 'unknown') as dimension_value
    from {{ ref('int_analysis_exposures') }} as exposures
    inner join {{ ref('stg_experiment_segments') }} as segments
        on exposures.experiment_id = segments.experiment_id
    left join dimension_values
        on
            exposures.unit_id = dimension_values.unit_id
            and segments.dimension = dimension_values.dimension
),

ranked as (
    select
        experiment_id,
        dimension,
        dimension_value,
        row_number() over (
            partition by experiment_id, dimension order by count(*) desc, dimension_value
        ) as value_rank
    from analysed
    group by experiment_id, dimension, dimension_value
)

select
    analysed.experiment_id,
    analysed.unit_id,
    analysed.dimension,
    case
        when ranked.value_rank <= {{ var('segment_top_values') }} then analysed.dimension_value
        else '(other)'
    end as segment
from analysed
inner join ranked
    on
        analysed.experiment_id = ranked.experiment_id
        and analysed.dimension = ranked.dimension
        and analysed.dimension_value = ranked.dimension_value

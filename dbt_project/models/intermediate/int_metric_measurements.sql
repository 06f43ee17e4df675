-- Every measurement of every metric model, tagged with its metric id. A table: the exposure filter, the
-- covariates, the daily values and the catalogue all read it, and the metric models are scanned once.
-- Incremental: a run recomputes the measurements from its scope start (see macros/incremental.sql) on, so a metric
-- model's measurement must not be dated before the event it comes from.
{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='replace_where',
    incremental_predicates=['(measured_at is null or measured_at >= cast(' ~ incremental_scope_start('DBT_INCREMENTAL_TARGET') ~ ' as ' ~ dbt.type_timestamp() ~ '))'],
) }}

-- Every metric model, for dbt to build them first (no list to edit: see macros/metric_catalogue.sql).
{{ metric_model_refs() }}

with measurements as (
    {{ metric_measurements_sql() }}
)

select
    measurements.*,
    (select max(events.logged_at) from {{ ref('stg_events') }} as events) as logged_through_at
from measurements
{% if is_incremental() %}
    -- a unit-level metric's values (no time) are read again by every build
    where
        measurements.measured_at is null
        or measurements.measured_at >= cast({{ incremental_scope_start() }} as {{ dbt.type_timestamp() }})
{% endif %}

-- Every measurement of every metric model, tagged with its metric id. A table: the exposure filter, the
-- covariates, the daily values and the catalogue all read it, and the metric models are scanned once.
{{ config(materialized='table') }}

-- A new metric model is listed here once (dbt must know the dependency before it runs):
-- depends_on: {{ ref('active_days') }}
-- depends_on: {{ ref('clicks_per_session') }}
-- depends_on: {{ ref('conversion') }}
-- depends_on: {{ ref('crash_rate') }}
-- depends_on: {{ ref('minutes_played') }}
-- depends_on: {{ ref('premium_upgrade') }}
-- depends_on: {{ ref('purchases') }}
-- depends_on: {{ ref('retention_d7') }}
-- depends_on: {{ ref('revenue_per_purchase') }}
-- depends_on: {{ ref('revenue_per_user') }}
-- depends_on: {{ ref('sessions_per_user') }}

{{ metric_measurements_sql() }}

-- The metric catalogue: one row per metric model with its validated settings from `meta.metric`.
{{ metric_definitions_sql() }}

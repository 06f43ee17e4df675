-- The metric catalogue: one row per metric model with its validated settings from `meta.metric`, and whether this
-- build left the model out as broken (var broken_metrics).
{{ metric_definitions_sql() }}

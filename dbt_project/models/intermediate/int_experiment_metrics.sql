-- One row per experiment and metric: the metric's role in the experiment and its catalogue settings.
select
    experiment_metrics.experiment_id,
    experiment_metrics.metric_id,
    experiment_metrics.role,
    definitions.metric_type,
    definitions.analysis_type,
    definitions.aggregation,
    definitions.window_days,
    definitions.window_offset_days,
    definitions.threshold,
    definitions.winsorize_lower,
    definitions.winsorize_upper
from {{ ref('stg_experiment_metrics') }} as experiment_metrics
inner join {{ ref('int_metric_definitions') }} as definitions
    on experiment_metrics.metric_id = definitions.metric_id

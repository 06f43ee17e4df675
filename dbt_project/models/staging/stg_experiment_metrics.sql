select
    experiment_id,
    metric_id,
    role,
    cast(minimum_detectable_effect as {{ type_double() }}) as minimum_detectable_effect,
    cast(non_inferiority_margin as {{ type_double() }}) as non_inferiority_margin,
    preferred_direction,
    alternative
from {{ source('registry', 'experiment_metrics') }}

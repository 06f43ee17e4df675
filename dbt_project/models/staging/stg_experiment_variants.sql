select
    experiment_id,
    variant,
    cast(planned_weight as {{ type_double() }}) as planned_weight,
    is_control
from {{ source('registry', 'experiment_variants') }}

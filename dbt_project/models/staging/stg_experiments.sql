select
    experiment_id,
    name as experiment_name,
    owner,
    unit_type,
    cast(start_date as date) as start_date,
    cast(end_date as date) as end_date,
    control_variant,
    cast(alpha as {{ type_double() }}) as alpha,
    cast(power as {{ type_double() }}) as power,
    sequential_method,
    spec_file
from {{ source('registry', 'experiments') }}

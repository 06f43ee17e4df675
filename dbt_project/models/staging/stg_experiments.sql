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
    correction,
    sequential_method,
    cast(planned_units as {{ dbt.type_bigint() }}) as planned_units,
    spending,
    cast(spending_rho as {{ type_double() }}) as spending_rho,
    cast(sequential_tuning as {{ type_double() }}) as sequential_tuning,
    exposure_filter_metric,
    spec_file
from {{ source('registry', 'experiments') }}

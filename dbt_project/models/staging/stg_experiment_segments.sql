select
    experiment_id,
    dimension
from {{ source('registry', 'experiment_segments') }}

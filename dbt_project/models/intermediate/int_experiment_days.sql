-- One row per experiment and as-of date, from its start to its end (or the data watermark).
with experiments as (
    select
        experiments.experiment_id,
        experiments.start_date,
        case
            when experiments.end_date is null or experiments.end_date > watermark.watermark_date
                then watermark.watermark_date
            else experiments.end_date
        end as last_date
    from {{ ref('stg_experiments') }} as experiments
    cross join {{ ref('int_data_watermark') }} as watermark
    where experiments.start_date <= watermark.watermark_date
)

select
    experiment_id,
    start_date,
    last_date,
    as_of_date
from (
    {{ expand_days('select * from experiments', 'start_date', 'last_date', 'as_of_date') }}
) as experiment_days

-- The last complete day of data: every as-of date is at most this day. The data's last day is the latest
-- measurement of any metric, or the latest assignment when it is later (a project's sources need no event log).
select
    cast(greatest(
        (select max(measurements.measured_at) from {{ ref('int_metric_measurements') }} as measurements),
        (select max(assignments.assigned_at) from {{ ref('stg_assignments') }} as assignments)
    ) as date) as watermark_date

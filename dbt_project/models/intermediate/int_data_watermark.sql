-- The last complete day of data: every as-of date is at most this day. It is the latest measurement of any metric
-- (the fact data decides: an assignment log stops when enrolment does); without timed measurements (only unit-level
-- metrics), the latest assignment; and without times in the assignments either, the experiments' end dates, the
-- analysis dates their specs set.
select
    cast(coalesce(
        (select max(measurements.measured_at) from {{ ref('int_metric_measurements') }} as measurements),
        {% if env_var('VERDICT_TIMED_ASSIGNMENTS', '1') == '1' %}
            (select max(assignments.assigned_at) from {{ ref('stg_assignments') }} as assignments)
        {% else %}
            (select max(experiments.end_date) from {{ ref('stg_experiments') }} as experiments)
        {% endif %}
    ) as date) as watermark_date

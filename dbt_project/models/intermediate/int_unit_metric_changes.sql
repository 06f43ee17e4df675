-- The days on which an analysed unit's metric value changes, and by how much: a sparse form of every unit's value
-- at every as-of date, from which the marts accumulate sufficient statistics.
--
-- A unit's value is its aggregated measurements turned into the analysed value by `metric_unit_value`
-- (threshold indicator or winsorization caps).
-- Cumulative metrics: a unit enters on its exposure date with the value of no measurements, and changes on each
-- day with measurements (value_change = new - old, square_change = new^2 - old^2).
-- Windowed metrics: a unit enters, with the value of its whole window, on its entry date (the first as-of date by
-- whose end the window has elapsed).
-- Each unit carries its pre-exposure covariate x (CUPED), turned into a value the same way: it adds x and x^2 when
-- it enters, and x times every change of its value to the cross sum.
-- Ratio metrics also track the unit's denominator d: its changes, d^2, value x d and d x x (null otherwise).
--
-- Incremental: a run recomputes the changes from its scope start (see macros/incremental.sql) on: those of the
-- units entering from then on, or with daily values from then on (from their whole history: a running value needs
-- the earlier days). Earlier changes depend on nothing that can still change, except for winsorized metrics,
-- whose caps move with each day's data and which are recomputed whole. Units that became crossovers are dropped.
--
-- Shifted sums: a mean metric whose values are large against their spread (mean over 100 sd on its first entry
-- date, e.g. an epoch time) is accumulated as value - value_shift (and covariate - value_shift), so the marts'
-- sums of squares keep the variance float64 would otherwise round away. The shift is the first entry date's mean
-- to 3 significant digits, kept by incremental runs once set; 0 for other metrics. A cumulative unit enters with
-- its entry day's measurements, and its later changes of the square are (new - old)(new + old - 2 shift);
-- square_abs_change bounds the rounding they leave in the sums.
{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='replace_where',
    incremental_predicates=[
        '(change_date >= ' ~ incremental_scope_start('DBT_INCREMENTAL_TARGET') ~ ' or is_winsorized)'
    ],
    post_hook="{{ delete_crossover_units() }}",
) }}

with units as (
    select
        unit_metrics.experiment_id,
        unit_metrics.unit_id,
        unit_metrics.variant,
        unit_metrics.metric_id,
        unit_metrics.analysis_type,
        unit_metrics.aggregation,
        unit_metrics.window_days,
        unit_metrics.entry_date,
        unit_metrics.has_history,
        unit_metrics.threshold,
        caps.cap_lower,
        caps.cap_upper,
        caps.denominator_cap_lower,
        caps.denominator_cap_upper,
        {{ metric_unit_value('unit_metrics.covariate') }} as covariate,
        {{ metric_unit_value('0.0') }} as initial_value,
        case
            when unit_metrics.analysis_type = 'ratio' then
                {{ metric_unit_value('0.0', 'caps.denominator_cap_lower', 'caps.denominator_cap_upper') }}
        end as initial_denominator,
        coalesce(unit_metrics.winsorize_lower, unit_metrics.winsorize_upper) is not null as is_winsorized
    from {{ ref('int_unit_metrics') }} as unit_metrics
    left join {{ ref('int_metric_caps') }} as caps
        on
            unit_metrics.experiment_id = caps.experiment_id
            and unit_metrics.metric_id = caps.metric_id
    {% if is_incremental() %}
        where
            unit_metrics.entry_date >= {{ incremental_scope_start() }}
            or coalesce(unit_metrics.winsorize_lower, unit_metrics.winsorize_upper) is not null
            or exists (
                select 1 from {{ ref('int_unit_metric_daily') }} as recent
                where
                    recent.experiment_id = unit_metrics.experiment_id
                    and recent.unit_id = unit_metrics.unit_id
                    and recent.metric_id = unit_metrics.metric_id
                    and recent.measured_date >= {{ incremental_scope_start() }}
            )
    {% endif %}
),

daily as (
    select
        units.*,
        daily.measured_date,
        daily.daily_value,
        daily.daily_denominator
    from units
    inner join {{ ref('int_unit_metric_daily') }} as daily
        on
            units.experiment_id = daily.experiment_id
            and units.unit_id = daily.unit_id
            and units.metric_id = daily.metric_id
),

running as (
    select
        daily.*,
        case daily.aggregation
            when 'max' then max(daily.daily_value) over unit_history
            else sum(daily.daily_value) over unit_history
        end as raw_value,
        sum(daily.daily_denominator) over unit_history as raw_denominator
    from daily
    where daily.window_days is null
    window unit_history as (
        partition by experiment_id, unit_id, metric_id
        order by measured_date
        rows between unbounded preceding and current row
    )
),

running_values as (
    select
        experiment_id,
        unit_id,
        variant,
        metric_id,
        measured_date,
        entry_date,
        covariate,
        is_winsorized,
        {{ metric_unit_value('raw_value') }} as value_after,
        coalesce(lag({{ metric_unit_value('raw_value') }}) over unit_history, initial_value) as value_before,
        case
            when analysis_type = 'ratio' then
                {{ metric_unit_value('raw_denominator', 'denominator_cap_lower', 'denominator_cap_upper') }}
        end as denominator_after,
        case when analysis_type = 'ratio' then coalesce(
            lag({{ metric_unit_value('raw_denominator', 'denominator_cap_lower', 'denominator_cap_upper') }})
                over unit_history,
            initial_denominator
        ) end as denominator_before
    from running
    window unit_history as (partition by experiment_id, unit_id, metric_id order by measured_date)
),

window_totals as (
    select
        experiment_id,
        unit_id,
        metric_id,
        case min(aggregation) when 'max' then max(daily_value) else sum(daily_value) end as window_value,
        sum(daily_denominator) as window_denominator
    from daily
    where window_days is not null
    group by experiment_id, unit_id, metric_id
),

windowed_entries as (
    select
        units.experiment_id,
        units.unit_id,
        units.variant,
        units.metric_id,
        units.analysis_type,
        units.entry_date,
        units.has_history,
        units.covariate,
        units.is_winsorized,
        {{ metric_unit_value('coalesce(window_totals.window_value, 0)') }} as window_value,
        case when units.analysis_type = 'ratio' then {{ metric_unit_value(
            'coalesce(window_totals.window_denominator, 0)', 'denominator_cap_lower', 'denominator_cap_upper'
        ) }} end as window_denominator
    from units
    left join window_totals
        on
            units.experiment_id = window_totals.experiment_id
            and units.unit_id = window_totals.unit_id
            and units.metric_id = window_totals.metric_id
    where units.window_days is not null
)
,

cumulative_entries as (
    -- a cumulative unit enters with its entry day's measurements: one row, not a change from 0 on the same day
    select
        units.*,
        coalesce(entry_day.value_after, units.initial_value) as entry_value,
        case
            when units.analysis_type = 'ratio' then coalesce(entry_day.denominator_after, units.initial_denominator)
        end as entry_denominator
    from units
    left join running_values as entry_day
        on
            units.experiment_id = entry_day.experiment_id
            and units.unit_id = entry_day.unit_id
            and units.metric_id = entry_day.metric_id
            and units.entry_date = entry_day.measured_date
    where units.window_days is null
),

entries as (
    select
        experiment_id,
        unit_id,
        variant,
        metric_id,
        analysis_type,
        is_winsorized,
        entry_date,
        has_history,
        covariate,
        entry_value,
        entry_denominator
    from cumulative_entries

    union all

    select
        experiment_id,
        unit_id,
        variant,
        metric_id,
        analysis_type,
        is_winsorized,
        entry_date,
        has_history,
        covariate,
        window_value as entry_value,
        window_denominator as entry_denominator
    from windowed_entries
),

first_entry_dates as (
    select
        experiment_id,
        metric_id,
        min(entry_date) as entry_date
    from entries
    group by experiment_id, metric_id
),

first_entries as (
    select
        entries.experiment_id,
        entries.metric_id,
        avg(entries.entry_value) as mean_value,
        stddev_pop(entries.entry_value) as sd_value
    from entries
    inner join first_entry_dates
        on
            entries.experiment_id = first_entry_dates.experiment_id
            and entries.metric_id = first_entry_dates.metric_id
            and entries.entry_date = first_entry_dates.entry_date
    where entries.analysis_type = 'mean'
    group by entries.experiment_id, entries.metric_id
),

{% if is_incremental() %}
    -- once set, a metric's shift stays: the rows already accumulated are of value - that shift
    kept_shifts as (
        select
            experiment_id,
            metric_id,
            max(value_shift) as value_shift
        from {{ this }}
        group by experiment_id, metric_id
    ),
{% endif %}

shifts as (
    select
        first_entries.experiment_id,
        first_entries.metric_id,
        {% if is_incremental() %}coalesce(kept_shifts.value_shift, {% endif %}
        case
            when abs(first_entries.mean_value) > 100 * coalesce(first_entries.sd_value, 0)
                then {{ round_significant('first_entries.mean_value', 3) }}
            else 0.0
        end{% if is_incremental() %}){% endif %} as value_shift
    from first_entries
    {% if is_incremental() %}
        left join kept_shifts
            on first_entries.experiment_id = kept_shifts.experiment_id and first_entries.metric_id = kept_shifts.metric_id
    {% endif %}
),

shifted_entries as (
    select
        entries.*,
        coalesce(shifts.value_shift, 0.0) as value_shift,
        entries.entry_value - coalesce(shifts.value_shift, 0.0) as shifted_value,
        entries.covariate - coalesce(shifts.value_shift, 0.0) as shifted_covariate
    from entries
    left join shifts
        on entries.experiment_id = shifts.experiment_id and entries.metric_id = shifts.metric_id
),

later_changes as (
    -- the unit's covariate and entry date came with its daily rows: no join back to the entries
    select
        running_values.*,
        coalesce(shifts.value_shift, 0.0) as value_shift,
        running_values.covariate - coalesce(shifts.value_shift, 0.0) as shifted_covariate
    from running_values
    left join shifts
        on running_values.experiment_id = shifts.experiment_id and running_values.metric_id = shifts.metric_id
    where running_values.measured_date > running_values.entry_date
),

changes as (
    select
        experiment_id,
        unit_id,
        variant,
        metric_id,
        is_winsorized,
        value_shift,
        entry_date as change_date,
        1 as units_entering,
        case when has_history then 0 else 1 end as units_without_history,
        shifted_value as value_change,
        shifted_value * shifted_value as square_change,
        shifted_value * shifted_value as square_abs_change,
        shifted_covariate as covariate_change,
        shifted_covariate * shifted_covariate as covariate_square_change,
        shifted_covariate * shifted_value as cross_change,
        entry_denominator as denominator_change,
        entry_denominator * entry_denominator as denominator_square_change,
        entry_value * entry_denominator as value_denominator_change,
        shifted_covariate * entry_denominator as denominator_covariate_change
    from shifted_entries

    union all

    select
        experiment_id,
        unit_id,
        variant,
        metric_id,
        is_winsorized,
        value_shift,
        measured_date as change_date,
        0 as units_entering,
        0 as units_without_history,
        value_after - value_before as value_change,
        (value_after - value_before) * (value_after + value_before - 2 * value_shift) as square_change,
        abs((value_after - value_before) * (value_after + value_before - 2 * value_shift)) as square_abs_change,
        0.0 as covariate_change,
        0.0 as covariate_square_change,
        shifted_covariate * (value_after - value_before) as cross_change,
        denominator_after - denominator_before as denominator_change,
        denominator_after * denominator_after - denominator_before * denominator_before as denominator_square_change,
        value_after * denominator_after - value_before * denominator_before as value_denominator_change,
        shifted_covariate * (denominator_after - denominator_before) as denominator_covariate_change
    from later_changes
)

select
    changes.*,
    {{ events_and_assignments_logged_through() }} as logged_through_at
from changes
{% if is_incremental() %}
    where changes.change_date >= {{ incremental_scope_start() }} or changes.is_winsorized
{% endif %}

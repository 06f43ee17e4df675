"""End to end: a simulated warehouse through the real nightly Dagster job (registry, dbt build, statistics)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.analysis.health import CHECKS
from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.registry.spec import load_specs
from pipelines.warehouse import read_frame

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def con(nightly_run) -> duckdb.DuckDBPyConnection:
    database, _ = nightly_run
    connection = duckdb.connect(str(database), read_only=True)
    yield connection
    connection.close()


def latest(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """Rows of a results table at each experiment's latest as-of date."""
    return read_frame(
        con, f"select * from main.{table} qualify as_of_date = max(as_of_date) over (partition by experiment_id)"
    )


def spec_metrics(experiment_id: str) -> list[str]:
    """The metrics an experiment's spec lists."""
    return [use.metric for spec in load_specs(DEMO_EXPERIMENTS) if spec.id == experiment_id for use in spec.metrics]


def test_the_job_succeeds(nightly_run):
    _, result = nightly_run
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
                    for e in [e.event_specific_data.materialization]}
    assert {"experiment_results", "experiment_health", "marts/metric_sufficient_stats",
            "registry/experiments"} <= materialized


def test_results_table_columns(con):
    columns = {r[0] for r in con.sql("describe main.experiment_results").fetchall()}
    assert {"experiment_id", "metric_id", "control", "treatment", "as_of_date", "estimate", "ci_lower", "ci_upper",
            "relative_estimate", "p_value", "is_significant"} <= columns
    rows = con.sql("select count(*) from main.experiment_results").fetchall()[0][0]
    keys = con.sql(
        "select count(*) from (select distinct experiment_id, metric_id, control, treatment, as_of_date"
        " from main.experiment_results)"
    ).fetchall()[0][0]
    assert rows == keys > 0


def test_planted_effects_are_found_with_the_right_sign(con):
    truth = read_frame(con, "select * from raw.simulation_truth where true_relative_effect != 0")
    assert truth.height >= 3
    found = truth.join(
        latest(con, "experiment_results"),
        left_on=["experiment_id", "variant", "metric_id"],
        right_on=["experiment_id", "treatment", "metric_id"],
    )
    assert found.height == truth.height
    for row in found.iter_rows(named=True):
        helps = (row["true_relative_effect"] > 0) == (row["preference"] == "increase")
        # a gain in the preferred direction is shown by the metric's one-sided test, a harm by its deterioration test
        assert row["is_significant_preferred"] if helps else row["is_deteriorating"], row
        assert (row["estimate"] > 0) == (row["true_relative_effect"] > 0), row
        assert row["ci_lower"] <= row["estimate"] <= row["ci_upper"]


def test_lift_and_guardrail_harm(con):
    results = latest(con, "experiment_results")
    lift = results.filter(experiment_id="playlist_recs", metric_id="minutes_played").row(0, named=True)
    assert lift["is_significant"] and lift["relative_estimate"] > 0
    harm = results.filter(experiment_id="checkout_redesign", treatment="upsell", metric_id="minutes_played")
    assert harm.row(0, named=True)["role"] == "guardrail"
    harm = harm.row(0, named=True)
    assert harm["is_deteriorating"] and not harm["is_significant_preferred"] and harm["estimate"] < 0
    no_harm = results.filter(pl.col("metric_id") != "minutes_played", experiment_id="playlist_recs")
    assert not no_harm["is_significant"].any()


def test_aa_test_is_not_significant(con):
    """At the final look of the fixed-horizon analysis (daily peeking needs the sequential tests)."""
    aa = latest(con, "experiment_results").filter(experiment_id="aa_homepage_copy")
    assert aa.height == len(spec_metrics("aa_homepage_copy"))
    assert (aa["status"] == "ok").all()
    # no metric moved; the guardrail's non-inferiority test may pass (its margin is 5%), which is no false positive
    moved = aa.filter(pl.col("role") != "guardrail")
    assert not moved["is_significant"].any() and not aa["is_deteriorating"].any()


def test_srm_fails_only_for_the_broken_split(con, nightly_run):
    truth = read_frame(con, "select distinct experiment_id, planted_srm from raw.simulation_truth")
    srm = latest(con, "experiment_health").filter(check_name="sample_ratio_mismatch")
    joined = truth.join(srm, on="experiment_id")
    assert joined.height == truth.height == 4
    for row in joined.iter_rows(named=True):
        assert (row["status"] == "fail") == row["planted_srm"], row
    _, result = nightly_run
    checks = {e.event_specific_data.check_name: e.event_specific_data for e in result.all_events
              if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}  # fmt: skip
    srm = {name.split("__")[0]: check for name, check in checks.items() if name.endswith("__sample_ratio_mismatch")}
    assert sorted(srm) == sorted(truth["experiment_id"])
    for experiment, check in srm.items():
        assert check.passed == (experiment != "onboarding_flow"), experiment
    assert srm["onboarding_flow"].severity == dg.AssetCheckSeverity.ERROR
    assert "chi-square" in srm["onboarding_flow"].description


def test_decisions_tell_the_planted_story(con):
    decisions = latest(con, "experiment_decisions")
    by = {(r["experiment_id"], r["treatment"]): r for r in decisions.iter_rows(named=True)}
    assert by[("checkout_redesign", "upsell")]["decision"] == "abort"
    assert "minutes_played" in by[("checkout_redesign", "upsell")]["reason"]
    assert by[("checkout_redesign", "compact")]["decision"] == "ship"
    assert by[("onboarding_flow", "short_flow")]["decision"] == "abort"
    assert "sample_ratio_mismatch" in by[("onboarding_flow", "short_flow")]["reason"]
    assert by[("aa_homepage_copy", "treatment")]["decision"] in ("continue", "end")
    assert by[("playlist_recs", "new_model")]["decision"] in ("ship", "continue")
    assert "minutes_played" in by[("playlist_recs", "new_model")]["reason"]


def test_sequential_designs_reach_the_results(con):
    results = latest(con, "experiment_results")
    gst = results.filter(experiment_id="playlist_recs")
    assert (gst["sequential_method"] == "group_sequential").all()
    assert gst["critical_value"].null_count() == 0 and (gst["information_fraction"] > 0).all()
    cs = results.filter(experiment_id="aa_homepage_copy")
    assert (cs["sequential_method"] == "confidence_sequence").all()
    assert cs["always_valid_p_value"].null_count() == 0 and (cs["sequential_tuning"] == 20000).all()
    fixed = results.filter(experiment_id="checkout_redesign")
    assert fixed["critical_value"].null_count() == fixed.height


def test_every_look_with_an_estimate_has_a_verdict(con):
    """Every look of every experiment, windowed metrics that start reporting later included: no null verdict
    (a null deterioration flag would mean the experiment could never abort)."""
    looks = read_frame(con, "select * from main.experiment_results where std_error is not null")
    assert looks["sequential_method"].n_unique() == 3
    for column in ("is_significant", "is_significant_preferred", "is_deteriorating"):
        assert looks[column].null_count() == 0, looks.filter(pl.col(column).is_null()).select(
            "experiment_id", "metric_id", "as_of_date"
        )
    gst = looks.filter(experiment_id="playlist_recs")
    assert gst["critical_value"].null_count() == 0


def test_aa_test_is_never_significant_under_its_confidence_sequence(con):
    """The A/A experiment is analysed with an always-valid confidence sequence, so peeking at every look is safe."""
    aa = read_frame(con, "select * from main.experiment_results where experiment_id = 'aa_homepage_copy'")
    assert aa["as_of_date"].n_unique() > 10
    # No look shows a superiority or a deterioration (a guardrail may be shown non-inferior: that is its test).
    assert not aa.filter(pl.col("role") != "guardrail")["is_significant"].any()
    assert not aa["is_deteriorating"].fill_null(False).any()


def test_cuped_reduces_variance_and_keeps_the_unadjusted_result(con):
    results = latest(con, "experiment_results").filter(metric_id="minutes_played")
    assert results["variance_reduction_rate"].null_count() == 0
    assert (results["variance_reduction_rate"] > 0.1).all()  # listening history predicts listening
    assert (results["std_error"] < results["unadjusted_std_error"]).all()


def test_health_table_shape(con):
    health = read_frame(con, "select * from main.experiment_health")
    assert set(health.columns) >= {"experiment_id", "as_of_date", "check_name", "status", "value", "detail"}
    assert set(health["status"].unique()) <= {"pass", "warn", "fail"}
    assert set(health["check_name"].unique()) == set(CHECKS)
    latest = health.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))
    assert latest.group_by("experiment_id").len()["len"].to_list() == [len(CHECKS)] * 4
    # nothing but the planted split is unhealthy at the latest look
    unhealthy = latest.filter(pl.col("status") != "pass")
    assert unhealthy.select("experiment_id", "check_name").rows() == [("onboarding_flow", "sample_ratio_mismatch")]


def test_bad_rows_are_quarantined_and_counted(con):
    counts = read_frame(con, "select * from marts.raw_row_counts")
    for row in counts.iter_rows(named=True):
        assert row["raw_rows"] == row["clean_rows"] + row["quarantined_rows"]
    raw = {t: con.sql(f"select count(*) from raw.{t}").fetchall()[0][0] for t in ("assignments", "events", "units")}
    assert dict(zip(counts["source_table"], counts["raw_rows"])) == raw
    reasons = read_frame(con, "select distinct source_table, quarantine_reason from marts.quarantined_rows")
    seen = set(zip(reasons["source_table"], reasons["quarantine_reason"]))
    assert {("assignments", "null_unit_id"), ("assignments", "unknown_experiment"), ("assignments", "unknown_variant"),
            ("assignments", "impossible_timestamp"), ("events", "duplicate_event_id"), ("events", "null_unit_id"),
            ("events", "impossible_timestamp")} <= seen


def test_crossovers_are_excluded_and_counted(con):
    summary = read_frame(con, "select * from marts.exposure_summary")
    assert (summary["crossover_units"] > 0).all()
    in_analysis = con.sql(
        """
        select count(*) from intermediate.int_exposures as e
        join intermediate.int_unit_assignments as a using (experiment_id, unit_id)
        where a.variant_count > 1
        """
    ).fetchall()[0][0]
    assert in_analysis == 0


def brute_force_cell(con, experiment_id: str, variant: str, as_of: str, trigger: str | None = None) -> tuple:
    """n, sum, sum_sq, the CUPED sums and units without history of minutes played at an as-of date, recomputed
    from clean events and first exposures (moved to the first stream after exposure when `trigger` is 'stream')."""
    start = "a.exposed_at" if trigger is None else (
        "(select min(t.occurred_at) from staging.stg_events t"
        f" where t.unit_id = a.unit_id and t.event_type = '{trigger}' and t.occurred_at >= a.exposed_at)"
    )
    return con.sql(
        f"""
        with assigned as (
            select unit_id, min(assigned_at) as exposed_at
            from staging.stg_assignments where experiment_id = '{experiment_id}'
            group by unit_id having count(distinct variant) = 1 and min(variant) = '{variant}'
        ),
        exposures as (
            select a.unit_id, {start} as exposed_at from assigned a
        ),
        per_unit as (
            select
                e.unit_id,
                coalesce(sum(ev.value) filter (where ev.occurred_at >= e.exposed_at), 0) as value,
                coalesce(sum(ev.value) filter (where ev.occurred_at < e.exposed_at), 0) as covariate,
                count(ev.value) filter (where ev.occurred_at < e.exposed_at) = 0 as no_history
            from exposures e
            left join staging.stg_events ev
              on ev.unit_id = e.unit_id and ev.event_type = 'stream'
             and ev.occurred_at >= e.exposed_at - interval 14 day
             and ev.occurred_at < date '{as_of}' + interval 1 day
            where e.exposed_at < date '{as_of}' + interval 1 day
            group by e.unit_id
        )
        select count(*), sum(value), sum(value * value), sum(covariate), sum(covariate * covariate),
               sum(value * covariate), count(*) filter (where no_history)
        from per_unit
        """
    ).fetchall()[0]


@pytest.mark.parametrize(
    ("experiment_id", "variant", "as_of", "trigger"),
    [("checkout_redesign", "upsell", "2026-11-10", None), ("playlist_recs", "new_model", "2026-11-12", "stream")],
)
def test_sufficient_stats_match_a_brute_force_count(con, experiment_id, variant, as_of, trigger):
    """A cell of the mart recomputed from per-unit rows; playlist_recs is triggered by each unit's first stream."""
    mart = con.sql(
        f"""
        select n, sum, sum_sq, cov_sum, cov_sum_sq, cross_sum, units_without_history
        from marts.metric_sufficient_stats
        where experiment_id = '{experiment_id}' and metric_id = 'minutes_played' and variant = '{variant}'
          and as_of_date = date '{as_of}'
        """
    ).fetchall()[0]
    brute = brute_force_cell(con, experiment_id, variant, as_of, trigger)
    assert mart[0] == brute[0] and mart[6] == brute[6]
    assert mart[1:6] == pytest.approx(brute[1:6], rel=1e-9)
    assert 0 < brute[6] < brute[0]  # some units have no history, and are counted


def test_exposure_filter_keeps_only_triggered_units(con):
    """playlist_recs analyses units that streamed after exposure: fewer than were exposed, each from its stream."""
    counts = con.sql(
        """
        select count(*), count(*) filter (where f.exposed_at < e.exposed_at), count(f.unit_id)
        from intermediate.int_exposures e
        left join intermediate.int_analysis_exposures f using (experiment_id, unit_id)
        where e.experiment_id = 'playlist_recs'
        """
    ).fetchall()[0]
    exposed, earlier, analysed = counts
    assert 0 < analysed < exposed and earlier == 0
    unfiltered = con.sql(
        """
        select count(*) from intermediate.int_exposures e
        join intermediate.int_analysis_exposures f using (experiment_id, unit_id, exposed_at)
        where e.experiment_id = 'checkout_redesign'
        """
    ).fetchall()[0][0]
    assert unfiltered == con.sql(
        "select count(*) from intermediate.int_exposures where experiment_id = 'checkout_redesign'"
    ).fetchall()[0][0]


def test_ratio_metric_sums_match_a_brute_force_count(con):
    """A ratio metric's numerator, denominator and cross sums recomputed from per-unit rows."""
    mart = con.sql(
        """
        select n, sum, sum_sq, den_sum, den_sum_sq, value_den_cross_sum
        from marts.metric_sufficient_stats
        where experiment_id = 'checkout_redesign' and metric_id = 'crash_rate' and variant = 'control'
          and as_of_date = date '2026-11-12'
        """
    ).fetchall()[0]
    brute = con.sql(
        """
        with exposures as (
            select unit_id, min(assigned_at) as exposed_at
            from staging.stg_assignments where experiment_id = 'checkout_redesign'
            group by unit_id having count(distinct variant) = 1 and min(variant) = 'control'
        ),
        per_unit as (
            select
                e.unit_id,
                count(ev.event_id) filter (where ev.event_type = 'crash') as crashes,
                count(ev.event_id) filter (where ev.event_type = 'session') as sessions
            from exposures e
            left join staging.stg_events ev
              on ev.unit_id = e.unit_id and ev.occurred_at >= e.exposed_at
             and ev.occurred_at < timestamp '2026-11-13 00:00:00'
            where e.exposed_at < timestamp '2026-11-13 00:00:00'
            group by e.unit_id
        )
        select count(*), sum(crashes), sum(crashes * crashes), sum(sessions), sum(sessions * sessions),
               sum(crashes * sessions)
        from per_unit
        """
    ).fetchall()[0]
    assert mart[0] == brute[0]
    assert mart[1:] == pytest.approx(brute[1:], rel=1e-9)


def test_ratio_metrics_are_analysed(con):
    ratios = latest(con, "experiment_results").filter(metric_type="ratio")
    assert set(ratios["metric_id"]) == {"clicks_per_session", "revenue_per_purchase", "crash_rate"}
    assert (ratios["status"] == "ok").all()
    assert ratios["relative_ci_lower"].null_count() == 0


def mart_cell(con, experiment_id: str, metric_id: str, variant: str, as_of: str) -> tuple:
    """n, sum and sum of squares of one cell of the mart."""
    return con.sql(
        f"""
        select n, sum, sum_sq from marts.metric_sufficient_stats
        where experiment_id = '{experiment_id}' and metric_id = '{metric_id}' and variant = '{variant}'
          and as_of_date = date '{as_of}'
        """
    ).fetchall()[0]


TRIGGERED_UNITS = """
    with assigned as (
        select unit_id, min(assigned_at) as assigned_at
        from staging.stg_assignments where experiment_id = 'playlist_recs'
        group by unit_id having count(distinct variant) = 1 and min(variant) = 'new_model'
    )
    select a.unit_id, min(s.occurred_at) as exposed_at
    from assigned a join staging.stg_events s
      on s.unit_id = a.unit_id and s.event_type = 'stream' and s.occurred_at >= a.assigned_at
    group by a.unit_id
"""


def test_windowed_metrics_match_a_brute_force_count(con):
    """Day-7 retention and distinct active days in the first 14 days: a unit counts once its window has elapsed."""
    as_of = "2026-11-18"
    retention, active = con.sql(
        f"""
        with units as ({TRIGGERED_UNITS}),
        per_unit as (
            select
                u.unit_id,
                u.exposed_at + interval 8 day <= date '{as_of}' + interval 1 day as retention_elapsed,
                u.exposed_at + interval 14 day <= date '{as_of}' + interval 1 day as active_elapsed,
                count(s.event_id) filter (where s.occurred_at >= u.exposed_at + interval 7 day
                                            and s.occurred_at < u.exposed_at + interval 8 day) > 0 as retained,
                count(distinct cast(s.occurred_at as date)) filter (
                    where s.occurred_at >= u.exposed_at and s.occurred_at < u.exposed_at + interval 14 day
                ) as active_days
            from units u left join staging.stg_events s on s.unit_id = u.unit_id and s.event_type = 'session'
            group by u.unit_id, u.exposed_at
        )
        select
            [count(*) filter (where retention_elapsed), count(*) filter (where retention_elapsed and retained)],
            [count(*) filter (where active_elapsed), sum(active_days) filter (where active_elapsed),
             sum(active_days * active_days) filter (where active_elapsed)]
        from per_unit
        """
    ).fetchall()[0]
    n, total, squares = mart_cell(con, "playlist_recs", "retention_d7", "new_model", as_of)
    assert [n, total] == retention and squares == total  # a proportion: values are 0 or 1
    assert 0 < retention[1] < retention[0]
    assert list(mart_cell(con, "playlist_recs", "active_days", "new_model", as_of)) == pytest.approx(active, rel=1e-12)


def test_winsorized_metric_matches_a_brute_force_count(con):
    """Revenue per user capped at the 99th percentile of every analysed unit's revenue at the last as-of date."""
    last = "2026-11-21"
    per_unit = f"""
        with assigned as (
            select unit_id, min(assigned_at) as exposed_at, min(variant) as variant
            from staging.stg_assignments where experiment_id = 'aa_homepage_copy'
            group by unit_id having count(distinct variant) = 1
        )
        select a.unit_id, a.variant, coalesce(sum(p.value), 0) as revenue
        from assigned a left join staging.stg_events p
          on p.unit_id = a.unit_id and p.event_type = 'purchase' and p.occurred_at >= a.exposed_at
         and p.occurred_at < date '{last}' + interval 1 day
        group by a.unit_id, a.variant
    """
    [(cap,)] = con.sql(f"select quantile_cont(revenue, 0.99) from ({per_unit})").fetchall()
    [(stored,)] = con.sql(
        "select cap_upper from intermediate.int_metric_caps"
        " where experiment_id = 'aa_homepage_copy' and metric_id = 'revenue_per_user'"
    ).fetchall()
    assert stored == pytest.approx(cap, rel=1e-12)
    brute = con.sql(
        f"""
        select count(*), sum(least(revenue, {cap})), sum(least(revenue, {cap}) ^ 2), max(revenue) > {cap}
        from ({per_unit}) where variant = 'control'
        """
    ).fetchall()[0]
    assert brute[3]  # the cap bites
    assert list(mart_cell(con, "aa_homepage_copy", "revenue_per_user", "control", last)) == pytest.approx(brute[:3], rel=1e-9)


def test_segments_add_up_to_the_whole_and_stay_exploratory(con):
    """Each dimension's segments partition the analysed units; segment results are flagged and kept out of decisions."""
    mismatches = con.sql(
        """
        with whole as (
            select experiment_id, metric_id, variant, n, sum, sum_sq from marts.metric_sufficient_stats
            qualify as_of_date = max(as_of_date) over (partition by experiment_id)
        ),
        parts as (
            select experiment_id, metric_id, variant, dimension, sum(n) as n, sum(sum) as sum, sum(sum_sq) as sum_sq
            from marts.metric_segment_stats group by all
        )
        select count(*) from whole join parts using (experiment_id, metric_id, variant)
        where whole.n != parts.n or abs(whole.sum - parts.sum) > 1e-6 * (1 + abs(whole.sum))
           or abs(whole.sum_sq - parts.sum_sq) > 1e-6 * (1 + abs(whole.sum_sq))
        """
    ).fetchall()[0][0]
    assert mismatches == 0
    segments = read_frame(con, "select * from main.experiment_segment_results")
    assert segments["exploratory"].all()
    dimensions = {e: set(g["dimension"]) for (e,), g in segments.group_by("experiment_id")}
    assert dimensions["checkout_redesign"] == {"country", "platform", "signup_cohort"}
    assert dimensions["aa_homepage_copy"] == {"country", "platform"}
    per_dimension = segments.group_by("experiment_id", "dimension").agg(pl.col("segment").n_unique())
    assert (per_dimension["segment"] <= 6).all()  # the top 5 values and (other)
    assert "(other)" in set(segments.filter(dimension="country")["segment"])
    lift = segments.filter(experiment_id="playlist_recs", metric_id="minutes_played", dimension="platform")
    assert lift.height == 3 and (lift["relative_estimate"] > 0).all()
    assert "segment" not in read_frame(con, "select * from main.experiment_decisions limit 1").columns


def test_largest_units_are_the_units_furthest_from_their_mean(con):
    """metric_largest_units against each unit's value summed from its change rows here: the unit count, the largest
    squared deviation's share of their sum, and the unit it belongs to (the first id among equal ones)."""
    changes = read_frame(con, """
        select changes.experiment_id, changes.metric_id, changes.variant, changes.unit_id, changes.value_change
        from intermediate.int_unit_metric_changes as changes
        join (select experiment_id, max(as_of_date) as last_date from intermediate.int_experiment_days group by all)
            using (experiment_id)
        join intermediate.int_experiment_metrics using (experiment_id, metric_id)
        where changes.change_date <= last_date and analysis_type != 'proportion'
    """)
    cell = ["experiment_id", "metric_id", "variant"]
    units = changes.group_by(*cell, "unit_id").agg(value=pl.col("value_change").sum())
    deviation = (pl.col("value") - pl.col("value").mean().over(cell)) ** 2
    expected = (
        units.with_columns(deviation=deviation)
        .sort("deviation", "unit_id", descending=[True, False])
        .group_by(cell)
        .agg(n=pl.len(), share=pl.col("deviation").max() / pl.col("deviation").sum(), unit=pl.col("unit_id").first())
    )
    largest = read_frame(con, "select * from marts.metric_largest_units")
    joined = expected.join(largest, on=cell, how="full", coalesce=True)
    assert joined.height == expected.height == largest.height > 20
    assert (joined["n"] == joined["n_right"]).all()
    assert joined["share"].to_numpy() == pytest.approx(joined["largest_unit_share"].to_numpy(), rel=1e-9, nan_ok=True)
    assert (joined["unit"] == joined["largest_unit_id"]).all()  # among tied units, the first id


def test_planning_baselines_read_ratios_as_ratios(con):
    """`verdict plan --experiment`: a ratio metric's baseline is the control's revenue over its purchases."""
    from pipelines.cli import BASELINES_QUERY

    baselines = {r["metric_id"]: r for r in read_frame(con, BASELINES_QUERY, ["checkout_redesign"]).iter_rows(named=True)}
    [(revenue, purchases)] = con.sql(
        """
        with exposures as (
            select unit_id, min(assigned_at) as exposed_at
            from staging.stg_assignments where experiment_id = 'checkout_redesign'
            group by unit_id having count(distinct variant) = 1 and min(variant) = 'control'
        )
        select sum(p.value), count(*)
        from exposures e join staging.stg_events p
          on p.unit_id = e.unit_id and p.event_type = 'purchase' and p.occurred_at >= e.exposed_at
         and p.occurred_at < timestamp '2026-11-22 00:00:00'
        """
    ).fetchall()
    assert baselines["revenue_per_purchase"]["baseline_mean"] == pytest.approx(revenue / purchases, rel=1e-9)
    assert baselines["revenue_per_purchase"]["baseline_variance"] > 0
    assert baselines["conversion"]["baseline_variance"] is None  # a proportion: p(1 - p)

"""Decisions under the designs real experiments have: group-sequential and confidence-sequence tests, running past
their plan, three arms, harm on a metric that reports late, a guardrail with no row yet and risk-aware alphas.

Each test builds the frame the nightly query returns (`SUFFICIENT_STATS_QUERY`: one row per experiment x metric x
variant x look) from exact per-look means, and runs it through the nightly path: `experiment_results`, then
`experiment_decisions`.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from pipelines.analysis.decisions import experiment_decisions
from pipelines.analysis.results import SUFFICIENT_STATS_QUERY, experiment_results
from pipelines.calibration import NO_FAILED_CHECKS, STATS_COLUMNS
from pipelines.stats.sequential import confidence_sequence_p_value

START = dt.date(2026, 3, 2)
SD = 1.0
BASE = 10.0


def day(look: int) -> dt.date:
    return START + dt.timedelta(days=look)


def metric(metric_id: str, role: str, looks: dict[int, dict[str, tuple[int, float]]], **hypothesis) -> list[dict]:
    """Rows of one metric: `looks` maps a look to {variant: (units, mean)}; values have sd SD."""
    defaults = {"minimum_detectable_effect": None, "non_inferiority_margin": None, "preferred_direction": "increase"}
    rows = []
    for look, arms in looks.items():
        for variant, (n, mean) in arms.items():
            rows.append({
                "metric_id": metric_id, "role": role, "variant": variant, "is_control": variant == "control",
                "as_of_date": day(look), "n": n, "sum": n * mean, "sum_sq": (n - 1) * SD**2 + n * mean**2,
                **defaults, **hypothesis,
            })  # fmt: skip
    return rows


def stats_frame(rows: list[dict], *, method: str, planned_units: int | None = None, tuning: float | None = None,
                correction: str = "risk_aware", looks: int = 28) -> pl.DataFrame:  # fmt: skip
    """The nightly query's frame for one experiment with the given rows and design."""
    frame = pl.DataFrame(rows, infer_schema_length=None)
    variants = frame.get_column("variant").unique()
    roles = frame.select("metric_id", "role").unique()
    return (
        frame.with_columns(
            experiment_id=pl.lit("e"), metric_type=pl.lit("mean"), sum_sq_abs=pl.col("sum_sq"), value_shift=pl.lit(0.0),
            **{c: pl.lit(None, pl.Float64) for c in ("cov_sum", "cov_sum_sq", "cross_sum", "den_sum", "den_sum_sq",
                                                     "cov_cross_sum", "den_cov_cross_sum")},
            alpha=pl.lit(0.05), power=pl.lit(0.8), correction=pl.lit(correction),
            sequential_method=pl.lit(method), planned_units=pl.lit(planned_units, pl.Int64),
            spending=pl.lit("power"), spending_rho=pl.lit(2.0), sequential_tuning=pl.lit(tuning, pl.Float64),
            start_date=pl.lit(START), end_date=pl.lit(START + dt.timedelta(days=looks - 1)),
            alternative=pl.lit(None, pl.String), planned_weight=pl.lit(1 / variants.len()),
            design_treatments=pl.lit(variants.len() - 1, pl.Int64), design_metrics=pl.lit(roles.height, pl.Int64),
            design_success_metrics=pl.lit(int((roles["role"] == "success").sum()), pl.Int64),
            design_guardrail_metrics=pl.lit(int((roles["role"] == "guardrail").sum()), pl.Int64),
        )  # fmt: skip
        .with_columns(pl.col("minimum_detectable_effect", "non_inferiority_margin").cast(pl.Float64))
        .select(STATS_COLUMNS)
    )


def nightly(stats: pl.DataFrame, spec: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Results and decisions as the nightly job computes them (no failed health check)."""
    results = experiment_results(stats)
    spec = stats.select("experiment_id", "metric_id", "role").unique() if spec is None else spec
    return results, experiment_decisions(results, NO_FAILED_CHECKS, spec)


def mean_for_z(z: float, n_per_arm: int) -> float:
    """The treatment mean whose difference from BASE has z statistic `z` at n units per arm."""
    return BASE + z * SD * math.sqrt(2 / n_per_arm)


def decisions_by_day(decisions: pl.DataFrame, treatment: str = "treatment") -> dict[dt.date, str]:
    rows = decisions.filter(pl.col("treatment") == treatment).select("as_of_date", "decision").rows()
    return dict(rows)


def test_the_frame_matches_the_nightly_query():
    rows = metric("m", "success", {0: {"control": (100, BASE), "treatment": (100, BASE)}})
    assert stats_frame(rows, method="none").columns == STATS_COLUMNS
    assert "alternative" in SUFFICIENT_STATS_QUERY


# ------------------------------------------------------------------------------------------ over-running the plan


def overrun(z_at_plan: float, z_past_plan: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A group-sequential experiment planned for 20,000 units, looked at 5,000 / 10,000 / 20,000 / 30,000."""
    units = {0: 2_500, 1: 5_000, 2: 10_000, 3: 15_000}  # per arm
    zs = {0: 0.0, 1: 0.5, 2: z_at_plan, 3: z_past_plan}
    looks = {k: {"control": (n, BASE), "treatment": (n, mean_for_z(zs[k], n))} for k, n in units.items()}
    rows = metric("m", "success", looks, minimum_detectable_effect=0.002)
    return nightly(stats_frame(rows, method="group_sequential", planned_units=20_000))


def test_a_clear_effect_past_the_plan_ships():
    results, decisions = overrun(z_at_plan=1.0, z_past_plan=2.84)
    last = results.filter(pl.col("as_of_date") == day(3)).row(0, named=True)
    assert math.isfinite(last["critical_value"]) and last["critical_value"] < 2.84
    assert last["information_fraction"] == pytest.approx(1.0)  # n / max(planned, largest n seen)
    assert decisions_by_day(decisions)[day(3)] == "ship"


def test_over_running_never_loses_a_result():
    _, decisions = overrun(z_at_plan=3.0, z_past_plan=0.5)
    by_day = decisions_by_day(decisions)
    assert by_day[day(2)] == by_day[day(3)] == "ship"


def test_every_look_past_the_plan_has_a_finite_bound():
    results, _ = overrun(z_at_plan=1.0, z_past_plan=1.0)
    assert results["critical_value"].is_finite().all()
    assert results["is_significant"].null_count() == 0


# ------------------------------------------------------------------------------------------ harm, reported late


def test_harm_on_a_metric_that_reports_late_aborts():
    """The deterioration family is the spec's metrics, so a metric whose window opens later neither changes the
    alpha nor nulls the bounds; a clear harm aborts."""
    n = {k: 1_000 * (k + 1) for k in range(6)}
    early = metric("early", "success", {k: {"control": (v, BASE), "treatment": (v, BASE)} for k, v in n.items()},
                   minimum_detectable_effect=0.01)  # fmt: skip
    late = metric("late", "success",
                  {k: {"control": (v, BASE), "treatment": (v, mean_for_z(-5.0, v))} for k, v in n.items() if k >= 3},
                  minimum_detectable_effect=0.01)  # fmt: skip
    results, decisions = nightly(stats_frame(early + late, method="group_sequential", planned_units=12_000))
    looks = results.filter(pl.col("std_error").is_not_null())
    assert looks["is_deteriorating"].null_count() == 0 and looks["is_significant"].null_count() == 0
    assert results.filter(pl.col("metric_id") == "late")["is_deteriorating"].all()
    by_day = decisions_by_day(decisions)
    assert [by_day[day(k)] for k in range(6)] == ["continue"] * 3 + ["abort"] * 3


@pytest.mark.parametrize("method", ["none", "group_sequential", "confidence_sequence"])
def test_harm_aborts_under_every_design(method):
    looks = {k: {"control": (v, BASE), "treatment": (v, mean_for_z(-6.0, v))} for k, v in {0: 4_000, 1: 8_000}.items()}
    rows = metric("m", "success", looks, minimum_detectable_effect=0.01)
    _, decisions = nightly(stats_frame(rows, method=method, planned_units=16_000, tuning=16_000))
    assert set(decisions_by_day(decisions).values()) == {"abort"}


# ------------------------------------------------------------------------------------------ three arms


def test_three_arms_spend_all_alpha_by_the_plan():
    """Each comparison's planned information is its two arms' share of the plan: at the planned units every
    comparison is at information 1, and its bound is the one of a two-arm design with the same fractions."""
    fractions = {0: 2_500, 1: 5_000, 2: 10_000}  # per arm; planned 30,000 over three arms
    three = metric("m", "success", {k: {a: (n, BASE) for a in ("control", "b", "c")} for k, n in fractions.items()},
                   minimum_detectable_effect=0.01)  # fmt: skip
    results, _ = nightly(stats_frame(three, method="group_sequential", planned_units=30_000))
    last = results.filter(pl.col("as_of_date") == day(2))
    assert last["planned_information"].to_list() == [20_000, 20_000]
    assert last["information_fraction"].to_list() == pytest.approx([1.0, 1.0])
    two = metric("m", "success", {k: {a: (n, BASE) for a in ("control", "b")} for k, n in fractions.items()},
                 minimum_detectable_effect=0.01)  # fmt: skip
    reference, _ = nightly(stats_frame(two, method="group_sequential", planned_units=20_000))
    # the same bounds at the two treatments' halved alpha: the two-arm design at alpha / 2
    halved = stats_frame(two, method="group_sequential", planned_units=20_000).with_columns(alpha=pl.lit(0.025))
    expected = experiment_results(halved).sort("as_of_date")["critical_value"].to_list()
    for treatment in ("b", "c"):
        got = results.filter(pl.col("treatment") == treatment).sort("as_of_date")["critical_value"].to_list()
        assert got == pytest.approx(expected, rel=1e-9)
    assert reference["information_fraction"].to_list()[-1] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ guardrails


def test_a_guardrail_without_a_row_holds_back_a_ship():
    looks = {0: {"control": (10_000, BASE), "treatment": (10_000, mean_for_z(6.0, 10_000))}}
    rows = metric("win", "success", looks, minimum_detectable_effect=0.01)
    spec = pl.DataFrame({"experiment_id": ["e", "e"], "metric_id": ["win", "crashes"], "role": ["success", "guardrail"]})
    for method in ("none", "group_sequential", "confidence_sequence"):
        _, decisions = nightly(stats_frame(rows, method=method, planned_units=20_000, tuning=20_000), spec)
        [decision] = decisions.to_dicts()
        assert decision["decision"] == "continue" and "crashes" in decision["reason"], method
    _, without_spec = nightly(stats_frame(rows, method="none"))
    assert without_spec["decision"].to_list() == ["ship"]


def test_a_confidence_sequence_tests_the_guardrails_margin():
    """A flat guardrail with many units is non-inferior at its 5% margin: the always-valid p-value tests the
    margin (not zero), and it is the sequence's p-value of the row's own statistic."""
    n = 50_000
    looks = {0: {"control": (n, BASE), "treatment": (n, BASE)}}
    rows = metric("latency", "guardrail", looks, non_inferiority_margin=0.05, preferred_direction="decrease")
    results, _ = nightly(stats_frame(rows, method="confidence_sequence", tuning=10_000))
    row = results.row(0, named=True)
    assert row["statistic"] < -20 and row["null_hypothesis"] == pytest.approx(0.05 * BASE)
    two_sided = confidence_sequence_p_value(row["statistic"], 2 * n, row["adjusted_alpha"] * 2, 10_000)
    assert row["always_valid_p_value"] == pytest.approx(float(two_sided) / 2)
    assert row["always_valid_p_value"] < 1e-6 and row["is_significant_preferred"]


def test_risk_aware_alphas():
    """Risk-aware (Schultzberg, Ankargren & Frånberg 2024): success metrics share alpha over success metrics x
    treatments, a guardrail's alpha is split over the treatments only; every test one-sided at its own level (no
    doubling), its interval at 95%."""
    arms = ("control", "b", "c")
    flat = {0: {a: (5_000, BASE) for a in arms}}
    rows = (
        metric("s1", "success", flat, minimum_detectable_effect=0.01)
        + metric("s2", "success", flat, minimum_detectable_effect=0.01)
        + metric("g", "guardrail", flat, non_inferiority_margin=0.05)
    )
    results, _ = nightly(stats_frame(rows, method="none"))
    alphas = dict(results.group_by("metric_id").agg(pl.col("adjusted_alpha").unique()).rows())
    assert alphas == {"s1": [pytest.approx(0.05 / 4)], "s2": [pytest.approx(0.05 / 4)], "g": [pytest.approx(0.05 / 2)]}
    assert (results["alternative"] == "greater").all() and (results["ci_level"] == 0.95).all()


# ------------------------------------------------------------------------------------------ "end" under each design


def test_end_needs_the_designs_own_sample_size():
    """With as many units as the fixed-horizon test needs and no effect, a fixed design ends; a group-sequential
    or confidence-sequence design needs more units for the same power and continues."""
    rows = metric("m", "success", {0: {"control": (100, BASE), "treatment": (100, BASE)}}, minimum_detectable_effect=0.02)
    fixed, _ = nightly(stats_frame(rows, method="none"))
    needed = int(fixed["required_sample_size"][0])
    half = math.ceil(needed / 2)
    rows = metric("m", "success", {0: {"control": (half, BASE), "treatment": (half, BASE)}}, minimum_detectable_effect=0.02)
    sizes = {}
    for method in ("none", "group_sequential", "confidence_sequence"):
        results, decisions = nightly(stats_frame(rows, method=method, planned_units=2 * half, tuning=2 * half))
        sizes[method] = results["required_sample_size"][0]
        assert decisions["decision"].to_list() == ["end" if method == "none" else "continue"], method
    assert sizes["none"] < sizes["group_sequential"] < sizes["confidence_sequence"]


def test_a_metric_without_a_preferred_direction_reports_its_information():
    looks = {k: {"control": (n, BASE), "treatment": (n, BASE)} for k, n in {0: 2_500, 1: 5_000}.items()}
    rows = metric("m", "success", looks, preferred_direction=None, minimum_detectable_effect=0.01)
    results, _ = nightly(stats_frame(rows, method="group_sequential", planned_units=10_000))
    assert results.sort("as_of_date")["information_fraction"].to_list() == pytest.approx([0.5, 1.0])
    assert results["critical_value"].is_finite().all()


def test_a_look_without_new_units_repeats_the_previous_bound():
    """No new units on the last day (values of the units already in may still change): the look adds no
    information, so it keeps the previous look's finite bound, and a clear effect ships instead of ending."""
    units = {0: 2_500, 1: 5_000, 2: 5_000}
    zs = {0: 0.5, 1: 1.0, 2: 6.0}
    looks = {k: {"control": (n, BASE), "treatment": (n, mean_for_z(zs[k], n))} for k, n in units.items()}
    rows = metric("m", "success", looks, minimum_detectable_effect=0.002)
    results, decisions = nightly(stats_frame(rows, method="group_sequential", planned_units=20_000))
    bounds = results.sort("as_of_date")["critical_value"].to_list()
    assert math.isfinite(bounds[2]) and bounds[2] == pytest.approx(bounds[1])
    assert decisions_by_day(decisions)[day(2)] == "ship"


def test_a_look_before_any_exposure_waits_for_data():
    """An experiment that has started but has no exposed unit yet is `waiting_for_data`, not continue; its next
    look, with units, is decided as usual."""
    rows = metric("m", "success", {0: {"control": (0, 0.0), "treatment": (0, 0.0)},
                                   1: {"control": (500, BASE), "treatment": (500, BASE)}},
                  minimum_detectable_effect=0.5)  # fmt: skip
    _, decisions = nightly(stats_frame(rows, method="none"))
    by_day = dict(zip(decisions["as_of_date"], decisions["decision"]))
    assert by_day[day(0)] == "waiting_for_data" and by_day[day(1)] != "waiting_for_data"

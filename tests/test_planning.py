"""`verdict plan`: units and days per metric, from explicit baselines or from an experiment's spec and data."""

from __future__ import annotations

import math
import os

import numpy as np
import polars as pl
import pytest
from scipy import stats
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.planning import plan_metrics

METRICS = pl.DataFrame(
    {
        "metric_id": ["conversion", "minutes", "purchases"],
        "role": ["success", "guardrail", "deterioration"],
        "baseline_mean": [0.2, 200.0, 0.4],
        "baseline_variance": [None, 40_000.0, 0.5],
        "mde": [0.05, 0.02, None],
        "preferred_direction": ["increase", "increase", "increase"],
    },
    schema_overrides={"baseline_variance": pl.Float64},
)


def test_plan_matches_the_textbook_formula():
    plan = {r["metric_id"]: r for r in plan_metrics(METRICS, alpha=0.05, power=0.8, treatments=1, daily_units=2_000).to_dicts()}
    # Risk-aware: one success metric keeps the whole alpha (one-sided, preferred direction); one guardrail raises
    # the power to 1 - 0.2 / 2.
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.9)
    p, x = 0.2, 0.01
    assert plan["conversion"]["units_per_group"] == math.ceil(z**2 * (p * (1 - p) + (p + x) * (1 - p - x)) / x**2)
    margin = 0.02 * 200.0
    assert plan["minutes"]["units_per_group"] == pytest.approx(z**2 * 2 * 40_000 / margin**2, abs=1)
    assert plan["purchases"]["total_units"] is None  # deterioration-only metrics need no power
    assert plan["minutes"]["days"] == math.ceil(plan["minutes"]["total_units"] / 2_000)


def test_more_metrics_and_treatments_need_more_units():
    one = plan_metrics(METRICS[:1], alpha=0.05, power=0.8, treatments=1)["total_units"][0]
    many = plan_metrics(METRICS[:1], alpha=0.05, power=0.8, treatments=3, success_metrics=4)["total_units"][0]
    assert many > 2 * one


def test_cli_explicit_baseline():
    result = CliRunner().invoke(app, ["plan", "--baseline", "10", "--sd", "20", "--mde", "0.03", "--daily-units", "5000"])
    assert result.exit_code == 0, result.output
    assert "units in total" in result.output and "days at 5,000 units a day" in result.output


def test_cli_plans_an_experiment_from_the_warehouse(nightly_run):
    database, _ = nightly_run
    result = CliRunner().invoke(app, ["plan", "--experiment", "checkout_redesign"], env={"VERDICT_WAREHOUSE": str(database)})
    assert result.exit_code == 0, result.output
    for metric in ("conversion", "minutes_played", "purchases"):
        assert metric in result.output
    assert "units a day" in result.output and "fixed horizon" in result.output
    sequential = CliRunner().invoke(app, ["plan", "--experiment", "playlist_recs"], env={"VERDICT_WAREHOUSE": str(database)})
    assert sequential.exit_code == 0, sequential.output
    assert "group-sequential" in sequential.output


def test_cli_unknown_experiment_fails_clearly(nightly_run):
    database, _ = nightly_run
    result = CliRunner().invoke(app, ["plan", "--experiment", "nope"], env={"VERDICT_WAREHOUSE": str(database)})
    assert result.exit_code == 2 and "no experiment 'nope'" in result.output
    assert "its experiments: aa_homepage_copy, checkout_redesign, onboarding_flow, playlist_recs" in result.output
    shown = CliRunner().invoke(app, ["results", "--experiment", "nope"], env={"VERDICT_WAREHOUSE": str(database)})
    assert shown.exit_code == 1 and "the experiments with results are aa_homepage_copy, checkout_redesign" in shown.output


def test_planning_an_experiment_before_any_run_says_what_to_do(tmp_path):
    """Not a traceback: the warehouse has no sufficient statistics yet."""
    result = CliRunner().invoke(app, ["plan", "--experiment", "playlist_recs"], env={"VERDICT_WAREHOUSE": str(tmp_path / "none.duckdb")})
    assert result.exit_code == 1
    assert "no data for 'playlist_recs'" in result.output and "run `verdict run` first" in result.output


@pytest.mark.parametrize("method", ["group_sequential", "confidence_sequence"])
def test_a_sequential_design_needs_its_own_sample_size(method):
    """The plan of a sequential design is the fixed-horizon plan sized as the nightly job sizes its comparisons:
    times the group-sequential inflation factor, or the confidence sequence's size at the same power."""
    from pipelines.planning import SequentialDesign
    from pipelines.stats.power import confidence_sequence_sample_size, group_sequential_inflation

    kwargs = dict(alpha=0.05, power=0.8, treatments=1)
    fixed = plan_metrics(METRICS[:2], **kwargs)
    design = SequentialDesign(method, looks=14)
    planned = plan_metrics(METRICS[:2], design=design, **kwargs)
    level, powers = 2 * 0.05, {"conversion": 0.9, "minutes": 0.9}  # one-sided at 0.05; one guardrail: power 0.9
    for before, after in zip(fixed.iter_rows(named=True), planned.iter_rows(named=True)):
        power = powers[before["metric_id"]]
        if method == "group_sequential":
            factor = group_sequential_inflation(level, power, "power", 2.0, 14)
        else:
            total = 2 * before["units_per_group"]
            factor = confidence_sequence_sample_size(np.array([total]), np.array([level]), np.array([power]),
                                                     np.array([total]))[0] / total  # fmt: skip
        assert factor > 1.0
        assert after["units_per_group"] == math.ceil(before["units_per_group"] * factor)
        assert after["total_units"] == 2 * after["units_per_group"]


def test_cli_plans_a_sequential_design():
    fixed = CliRunner().invoke(app, ["plan", "--baseline", "10", "--sd", "20", "--mde", "0.03"])
    gst = CliRunner().invoke(app, ["plan", "--baseline", "10", "--sd", "20", "--mde", "0.03", "--sequential",
                                   "group_sequential", "--looks", "14"])  # fmt: skip
    assert gst.exit_code == 0, gst.output
    assert "group-sequential, 14 looks" in gst.output and "fixed horizon" in fixed.output

    def units(output: str) -> int:
        return int(output.split("powered: ")[1].split(" units")[0].replace(",", ""))

    assert units(gst.output) > units(fixed.output)

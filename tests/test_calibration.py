"""`verdict validate aa`: A/A experiments reject at their nominal rate; planted effects are found at design power."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipelines.calibration import validate_aa
from pipelines.cli import app


@pytest.fixture(scope="module")
def report() -> dict:
    return validate_aa(runs=2000, seed=5, alpha=0.05)


@pytest.mark.parametrize("metric", ["mean", "proportion"])
@pytest.mark.parametrize("method", ["fixed", "gst", "cs"])
def test_false_positive_rate_at_most_alpha_within_sampling_error(report, metric, method):
    rate = report["by_metric_type"]["false_positive_rate"][metric][method]
    lower, _ = rate["ci95"]
    assert lower <= 0.05, rate


@pytest.mark.parametrize("metric", ["mean", "proportion"])
def test_the_simulation_can_detect_inflated_error(report, metric):
    """Naive daily peeking must show its known inflation: the check has teeth."""
    lower, _ = report["by_metric_type"]["false_positive_rate"][metric]["naive_daily_peeking"]["ci95"]
    assert lower > 0.10


@pytest.mark.parametrize("metric", ["mean", "proportion"])
def test_fixed_horizon_power_matches_design(report, metric):
    entry = report["by_metric_type"]["power"][metric]
    lower, upper = entry["fixed"]["ci95"]
    assert lower <= entry["designed"] <= upper
    assert entry["gst"]["rate"] <= entry["fixed"]["rate"] + 0.02  # sequential tests pay for peeking with power


def test_cli_json_shape():
    result = CliRunner().invoke(app, ["validate", "aa", "--runs", "200", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["runs"] == 200 and report["alpha"] == 0.05
    assert set(report["false_positive_rate"]) >= {"fixed", "gst", "cs"}
    assert set(report["power"]) >= {"fixed", "gst", "cs", "designed"}

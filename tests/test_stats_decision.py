"""Ship / abort / end / continue per treatment, with reasons (Confidence's decision rules)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipelines.stats.decision import decide

D = dt.date(2026, 11, 21)


def row(metric: str, role: str, *, better=False, non_inferior=False, deteriorating=False, powered=True,
        treatment: str = "b", experiment: str = "e") -> dict:  # fmt: skip
    return {"experiment_id": experiment, "as_of_date": D, "treatment": treatment, "metric_id": metric, "role": role,
            "is_better": better, "is_non_inferior": non_inferior, "is_deteriorating": deteriorating,
            "is_powered": powered}  # fmt: skip


NO_FAILED_CHECKS = pl.DataFrame(schema={"experiment_id": pl.String, "as_of_date": pl.Date, "check_name": pl.String})


def decision(rows: list[dict], failed: pl.DataFrame = NO_FAILED_CHECKS) -> dict:
    [result] = decide(pl.DataFrame(rows), failed).to_dicts()
    return result


def test_ship_needs_a_better_success_metric_and_non_inferior_guardrails():
    result = decision([row("conversion", "success", better=True), row("minutes", "guardrail", non_inferior=True)])
    assert result["decision"] == "ship"
    assert "conversion" in result["reason"]


def test_open_guardrail_means_continue():
    result = decision([row("conversion", "success", better=True), row("minutes", "guardrail", non_inferior=False)])
    assert result["decision"] == "continue"
    assert "minutes" in result["reason"]


@pytest.mark.parametrize("role", ["success", "guardrail", "deterioration"])
def test_deterioration_on_any_metric_aborts(role):
    result = decision([row("conversion", "success", better=True), row("crashes", role, deteriorating=True)])
    assert result == {**result, "decision": "abort"}
    assert "crashes" in result["reason"]


def test_failed_health_check_aborts():
    failed = pl.DataFrame({"experiment_id": ["e"], "as_of_date": [D], "check_name": ["sample_ratio_mismatch"]})
    result = decision([row("conversion", "success", better=True)], failed)
    assert result["decision"] == "abort" and "sample_ratio_mismatch" in result["reason"]


def test_powered_and_flat_means_end():
    assert decision([row("conversion", "success"), row("minutes", "success")])["decision"] == "end"


def test_underpowered_and_flat_means_continue():
    result = decision([row("conversion", "success"), row("minutes", "success", powered=False)])
    assert result["decision"] == "continue" and "minutes" in result["reason"]


def test_each_treatment_and_experiment_decided_on_its_own():
    rows = [
        row("conversion", "success", better=True, treatment="b"),
        row("conversion", "success", deteriorating=True, treatment="c"),
        row("conversion", "success", powered=False, experiment="f"),
    ]
    out = decide(pl.DataFrame(rows), NO_FAILED_CHECKS)
    assert out.select("experiment_id", "treatment", "decision").rows() == [
        ("e", "b", "ship"), ("e", "c", "abort"), ("f", "b", "continue"),
    ]


def test_missing_columns_raise():
    with pytest.raises(ValueError, match="is_powered"):
        decide(pl.DataFrame([row("m", "success")]).drop("is_powered"), NO_FAILED_CHECKS)

"""Decisions per experiment, treatment and as-of date, from the results and health tables."""

from __future__ import annotations

import polars as pl

from pipelines.stats import decide


def decision_inputs(results: pl.DataFrame) -> pl.DataFrame:
    """The booleans the decision rules read, from each comparison's tests and its metric's role."""
    preferred = pl.col("is_significant_preferred").fill_null(False)
    return results.select(
        "experiment_id", "as_of_date", "treatment", "metric_id", "role",
        is_better=(pl.col("role") == "success") & preferred,
        is_non_inferior=(pl.col("role") == "guardrail") & preferred,
        is_deteriorating=pl.col("is_deteriorating").fill_null(False),
        is_powered=pl.col("is_powered").fill_null(False),
    )  # fmt: skip


def experiment_decisions(results: pl.DataFrame, health: pl.DataFrame) -> pl.DataFrame:
    """Ship / abort / end / continue with the reason, for every treatment at every look."""
    failed = health.filter(pl.col("status") == "fail").select("experiment_id", "as_of_date", "check_name")
    return decide(decision_inputs(results), failed)

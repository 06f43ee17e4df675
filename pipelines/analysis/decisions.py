"""Decisions per experiment, treatment and as-of date, from the results and health tables."""

from __future__ import annotations

import polars as pl

from pipelines.stats import decide

LOOK = ["experiment_id", "as_of_date", "treatment"]
WAITING = "waiting_for_data"


def with_every_spec_metric(results: pl.DataFrame, spec_metrics: pl.DataFrame) -> pl.DataFrame:
    """Every look's results with a row for each metric of the experiment's spec: a metric without a result at a
    look (no data yet) gets a row with no test, so a guardrail that has not been shown non-inferior holds back a
    ship whether or not its row exists."""
    looks = results.select(LOOK).unique()
    expected = looks.join(spec_metrics.select("experiment_id", "metric_id", "role"), on="experiment_id")
    missing = expected.join(results.select(*LOOK, "metric_id"), on=[*LOOK, "metric_id"], how="anti")
    return pl.concat([results, missing], how="diagonal_relaxed")


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


def experiment_decisions(
    results: pl.DataFrame, health: pl.DataFrame, spec_metrics: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Ship / abort / end / continue with the reason, for every treatment at every look. `spec_metrics`
    (experiment_id, metric_id, role): the experiments' metrics, so that a missing result row counts as untested."""
    if spec_metrics is not None:
        results = with_every_spec_metric(results, spec_metrics)
    failed = health.filter(pl.col("status") == "fail").select("experiment_id", "as_of_date", "check_name")
    return waiting_for_data(decide(decision_inputs(results), failed), results)


def waiting_for_data(decisions: pl.DataFrame, results: pl.DataFrame) -> pl.DataFrame:
    """A look at which no unit of the comparison is exposed yet waits for data: neither continue nor abort (its
    health checks have nothing to check)."""
    units = results.group_by(LOOK).agg(
        units=(pl.col("n_control").fill_null(0) + pl.col("n_treatment").fill_null(0)).max().fill_null(0)
    )
    waiting = pl.col("units").fill_null(0) == 0
    return (
        decisions.join(units, on=LOOK, how="left")
        .with_columns(
            decision=pl.when(waiting).then(pl.lit(WAITING)).otherwise("decision"),
            reason=pl.when(waiting).then(pl.lit("no unit exposed yet: the look waits for the first exposures"))
            .otherwise("reason"),
        )
        .drop("units")
    )

"""`verdict plan`: how many units, and so how many days, an experiment needs for its metrics to be powered."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.analysis.results import ENGINE_CORRECTION
from pipelines.registry.spec import ExperimentSpec, Role
from pipelines.stats import required_sample_size

PLAN_COLUMNS = ["metric_id", "role", "baseline_mean", "baseline_sd", "mde", "units_per_group", "total_units", "days"]


def plan_metrics(
    metrics: pl.DataFrame,
    *,
    alpha: float,
    power: float,
    treatments: int,
    correction: str = "risk_aware",
    daily_units: float | None = None,
    success_metrics: int | None = None,
    guardrail_metrics: int | None = None,
) -> pl.DataFrame:
    """Required units per metric (one row each) for a fixed-horizon test at the metric's MDE.

    `metrics` columns: metric_id, role (success / guardrail / deterioration), baseline_mean, baseline_variance
    (null: a proportion), mde (relative: the minimum detectable effect, or a guardrail's non-inferiority margin),
    preferred_direction. Success and guardrail counts (the frame's, unless given) feed the correction. Rows without
    an MDE, and deterioration-only metrics, get no requirement. `daily_units` (all groups) turns units into days.
    """
    success = int((metrics["role"] == Role.SUCCESS).sum()) if success_metrics is None else success_metrics
    guardrails = int((metrics["role"] == Role.GUARDRAIL).sum()) if guardrail_metrics is None else guardrail_metrics
    planned = metrics.filter(pl.col("mde").is_not_null() & (pl.col("role") != Role.DETERIORATION))
    out = []
    # One vectorised call per kind of test: superiority or non-inferiority, on the preferred side.
    kinds = [pl.col("role") == Role.GUARDRAIL, "preferred_direction", pl.col("baseline_variance").is_null()]
    for (guardrail, direction, proportion), rows in planned.group_by(kinds):
        variance = None if proportion else rows["baseline_variance"].to_numpy()  # None: p(1 - p), as a proportion
        plan = required_sample_size(
            rows["baseline_mean"].to_numpy(), variance, rows["mde"].to_numpy(), relative=True, alpha=alpha, power=power, alternative=direction,
            treatments=treatments, success_metrics=success, guardrail_metrics=guardrails,
            non_inferiority=bool(guardrail), correction=ENGINE_CORRECTION[correction],
        )  # fmt: skip
        out.append(rows.with_columns(units_per_group=pl.Series(np.atleast_1d(plan.n_treatment)),
                                     total_units=pl.Series(np.atleast_1d(plan.total))))  # fmt: skip
    planned = pl.concat(out) if out else planned.with_columns(units_per_group=None, total_units=None)
    result = metrics.join(planned.select("metric_id", "units_per_group", "total_units"), on="metric_id", how="left")
    days = (pl.col("total_units") / daily_units).ceil() if daily_units else pl.lit(None, pl.Float64)
    return result.with_columns(
        baseline_sd=pl.col("baseline_variance").fill_null(pl.col("baseline_mean") * (1 - pl.col("baseline_mean"))).sqrt(),
        days=days,
    ).select(PLAN_COLUMNS)


def experiment_metrics_frame(spec: ExperimentSpec, baselines: pl.DataFrame) -> pl.DataFrame:
    """An experiment's metrics with their roles, MDEs (margins for guardrails) and the observed control baselines."""
    uses = pl.DataFrame(
        [
            {
                "metric_id": use.metric,
                "role": use.role.value,
                "mde": use.non_inferiority_margin if use.role is Role.GUARDRAIL else use.minimum_detectable_effect,
                "preferred_direction": use.preferred_direction and use.preferred_direction.value,
            }
            for use in spec.metrics
        ],
        schema={"metric_id": pl.String, "role": pl.String, "mde": pl.Float64, "preferred_direction": pl.String},
    )
    return uses.join(baselines, on="metric_id", how="left")

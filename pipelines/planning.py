"""`verdict plan`: how many units, and so how many days, an experiment needs for its metrics to be powered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.analysis.results import ENGINE_CORRECTION, planned_looks, spent_alpha
from pipelines.registry.spec import ExperimentSpec, Role, SequentialMethod
from pipelines.stats import required_sample_size
from pipelines.stats.power import (
    PLANNED_LOOKS,
    SampleSizePlan,
    confidence_sequence_sample_size,
    group_sequential_inflation,
)

PLAN_COLUMNS = ["metric_id", "role", "baseline_mean", "baseline_sd", "mde", "units_per_group", "total_units", "days"]


@dataclass(frozen=True)
class SequentialDesign:
    """The sequential design a plan is sized for, as the nightly job tests it."""

    method: str = SequentialMethod.NONE.value
    spending: str = "power"
    rho: float = 2.0
    looks: int = PLANNED_LOOKS  # daily looks of a group-sequential design
    tuning: float | None = None  # confidence sequence; None: each metric's fixed-horizon size

    @classmethod
    def of(cls, spec: ExperimentSpec) -> SequentialDesign:
        """The spec's design: its looks from start to end date (else PLANNED_LOOKS), its sequence's tuning."""
        dates = pl.DataFrame(
            {"start_date": [spec.start_date], "end_date": [spec.end_date]},
            schema={"start_date": pl.Date, "end_date": pl.Date},
        )
        looks = int(dates.select(planned_looks()).item())
        tuning = spec.confidence_sequence_tuning if spec.sequential is SequentialMethod.CONFIDENCE_SEQUENCE else None
        return cls(spec.sequential.value, spec.spending.value, spec.spending_rho, looks, tuning)

    def inflation(self, plan: SampleSizePlan) -> np.ndarray:
        """Units this design needs over the fixed-horizon plan's, per metric (1 for a fixed horizon): the
        group-sequential inflation factor, or the confidence sequence's size at the same power, as
        `pipelines.analysis.results.design_sample_size` sizes the nightly job's comparisons."""
        fixed = np.atleast_1d(plan.comparison_total).astype(float)
        test = pl.DataFrame({"adjusted_alpha": [float(plan.adjusted_alpha)], "alternative": [plan.alternative]})
        level = float(test.select(spent_alpha()).item())
        power = float(plan.adjusted_power)
        if self.method == SequentialMethod.GROUP_SEQUENTIAL:
            return np.full(fixed.size, group_sequential_inflation(level, power, self.spending, self.rho, self.looks))
        if self.method == SequentialMethod.CONFIDENCE_SEQUENCE:
            tuning = fixed if self.tuning is None else np.full(fixed.size, self.tuning)
            return confidence_sequence_sample_size(fixed, np.full(fixed.size, level), np.full(fixed.size, power), tuning) / fixed
        return np.ones(fixed.size)


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
    design: SequentialDesign = SequentialDesign(),
) -> pl.DataFrame:
    """Required units per metric (one row each) for the metric's test at its MDE under `design` (default: a fixed
    horizon).

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
        per_group = np.ceil(np.atleast_1d(plan.n_treatment) * design.inflation(plan))
        control = np.ceil(np.atleast_1d(plan.n_control) / np.atleast_1d(plan.n_treatment) * per_group)
        out.append(rows.with_columns(units_per_group=pl.Series(per_group),
                                     total_units=pl.Series(control + treatments * per_group)))  # fmt: skip
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

"""A recommendation per treatment, as Spotify's Confidence gives it (Schultzberg, Kjellin and Rydberg, "Risk-aware
product decisions in A/B tests with multiple metrics", 2024): ship, abort, end or continue, with the reason.

Rules, in order of precedence, per experiment x treatment x as-of date:
- abort:    a significant deterioration on any metric, or a failed health check (e.g. sample ratio mismatch);
- ship:     at least one success metric significantly better, every guardrail significantly non-inferior,
            and no significant deterioration;
- end:      every success metric is powered for its minimum detectable effect, yet none is significant;
- continue: otherwise (not enough evidence yet).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

SHIP, ABORT, END, CONTINUE = "ship", "abort", "end", "continue"
SUCCESS, GUARDRAIL = "success", "guardrail"
DECISION_INPUT = ("metric_id", "role", "is_better", "is_non_inferior", "is_deteriorating", "is_powered")


def _names(flag: pl.Expr) -> pl.Expr:
    """Comma-separated metric ids of the rows where `flag` holds (empty string when none)."""
    return pl.col("metric_id").filter(flag).sort().str.join(", ")


def decide(
    comparisons: pl.DataFrame,
    failed_checks: pl.DataFrame,
    *,
    by: Sequence[str] = ("experiment_id", "as_of_date"),
) -> pl.DataFrame:
    """One row per `by` x treatment with `decision` and `reason`.

    `comparisons`: one row per metric x treatment with `role` (success, guardrail, deterioration) and booleans
    `is_better` (significant in the preferred direction), `is_non_inferior` (guardrail shown non-inferior),
    `is_deteriorating` (significant in the harmful direction), `is_powered` (sample large enough for the MDE);
    nulls count as false. `failed_checks`: the `by` columns and `check_name` of every failed health check.
    """
    by = list(by)
    missing = [c for c in (*by, "treatment", *DECISION_INPUT) if c not in comparisons.columns]
    if missing:
        raise ValueError(f"decide: missing columns {missing}")
    flags = ("is_better", "is_non_inferior", "is_deteriorating", "is_powered")
    rows = comparisons.with_columns(pl.col(f).fill_null(False) for f in flags)
    success, guardrail = pl.col("role") == SUCCESS, pl.col("role") == GUARDRAIL
    per_treatment = rows.group_by([*by, "treatment"]).agg(
        deteriorating=_names(pl.col("is_deteriorating")),
        better=_names(success & pl.col("is_better")),
        guardrails_open=_names(guardrail & ~pl.col("is_non_inferior")),
        unpowered=_names(success & ~pl.col("is_powered")),
        successes=success.sum(),
    )
    checks = failed_checks.group_by(by).agg(failed_checks=pl.col("check_name").unique().sort().str.join(", "))
    joined = per_treatment.join(checks, on=by, how="left").with_columns(pl.col("failed_checks").fill_null(""))
    decision = (
        pl.when(pl.col("deteriorating") != "").then(pl.lit(ABORT))
        .when(pl.col("failed_checks") != "").then(pl.lit(ABORT))
        .when((pl.col("better") != "") & (pl.col("guardrails_open") == "")).then(pl.lit(SHIP))
        .when((pl.col("successes") > 0) & (pl.col("better") == "") & (pl.col("unpowered") == "")).then(pl.lit(END))
        .otherwise(pl.lit(CONTINUE))
    )  # fmt: skip
    reason = (
        pl.when(pl.col("deteriorating") != "")
        .then(pl.format("significant deterioration in {}", "deteriorating"))
        .when(pl.col("failed_checks") != "")
        .then(pl.format("failed health checks: {}", "failed_checks"))
        .when((pl.col("better") != "") & (pl.col("guardrails_open") == ""))
        .then(pl.format("significantly better on {}; every guardrail non-inferior", "better"))
        .when((pl.col("successes") > 0) & (pl.col("better") == "") & (pl.col("unpowered") == ""))
        .then(pl.lit("every success metric is powered for its minimum detectable effect and none moved"))
        .when(pl.col("better") != "")
        .then(pl.format("better on {}, but guardrails not yet shown non-inferior: {}", "better", "guardrails_open"))
        .when(pl.col("successes") == 0)
        .then(pl.lit("no success metric to decide on"))
        .otherwise(pl.format("not enough evidence yet; underpowered success metrics: {}", "unpowered"))
    )
    return joined.select(*by, "treatment", decision=decision, reason=reason).sort([*by, "treatment"])

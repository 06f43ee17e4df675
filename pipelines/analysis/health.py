"""Health checks per experiment and as-of date, as rows of the `experiment_health` table."""

from __future__ import annotations

import polars as pl

from pipelines.stats import sample_ratio_mismatch

SRM_FAIL_P_VALUE = 0.001
CROSSOVER_WARN_RATE = 0.01
CROSSOVER_FAIL_RATE = 0.10

HEALTH_COLUMNS = ["experiment_id", "as_of_date", "check_name", "status", "value", "detail"]
HEALTH_SCHEMA = {
    "experiment_id": pl.String, "as_of_date": pl.Date, "check_name": pl.String,
    "status": pl.String, "value": pl.Float64, "detail": pl.String,
}


def sample_ratio_health(counts: pl.DataFrame) -> pl.DataFrame:
    """Chi-square test of exposed units against planned weights; fail below p = 0.001."""
    by = ["experiment_id", "as_of_date"]
    tested = sample_ratio_mismatch(counts.rename({"exposed_units": "n"}), by=by)
    observed = (
        counts.sort("variant")
        .group_by(by)
        .agg(
            pl.format("{}={} (planned {})", "variant", "exposed_units", pl.col("planned_weight").round(3))
            .str.join(", ")
            .alias("observed")
        )
    )
    return (
        tested.join(observed, on=by)
        .with_columns(
            check_name=pl.lit("sample_ratio_mismatch"),
            status=pl.when(pl.col("status") != "ok").then(pl.lit("warn"))
            .when(pl.col("p_value") < SRM_FAIL_P_VALUE).then(pl.lit("fail"))
            .otherwise(pl.lit("pass")),
            value=pl.col("p_value"),
            detail=pl.when(pl.col("status") != "ok")
            .then(pl.col("status_reason"))
            .otherwise(pl.format("chi-square {} on {} df; {}", pl.col("chi_square").round(2), "dof", "observed")),
        )
        .select(HEALTH_COLUMNS)
    )


def crossover_health(summary: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Share of units logged in more than one variant: warn above 1%, fail above 10%."""
    latest = days.group_by("experiment_id").agg(pl.col("as_of_date").max())
    rate = pl.col("crossover_rate")
    return (
        summary.join(latest, on="experiment_id")
        .with_columns(
            check_name=pl.lit("crossover_rate"),
            status=pl.when(rate > CROSSOVER_FAIL_RATE).then(pl.lit("fail"))
            .when(rate > CROSSOVER_WARN_RATE).then(pl.lit("warn"))
            .otherwise(pl.lit("pass")),
            value=rate.cast(pl.Float64),
            detail=pl.format("{} of {} assigned units seen in more than one variant (excluded)",
                             "crossover_units", "assigned_units"),
        )
        .select(HEALTH_COLUMNS)
    )


def experiment_health(counts: pl.DataFrame, summary: pl.DataFrame) -> pl.DataFrame:
    """Every health check row, typed to the table's schema."""
    frames = [sample_ratio_health(counts), crossover_health(summary, counts.select("experiment_id", "as_of_date"))]
    return pl.concat([f.cast(HEALTH_SCHEMA) for f in frames]).sort(["experiment_id", "as_of_date", "check_name"])

"""Health checks per experiment and as-of date, as rows of the `experiment_health` table.

A `fail` aborts the experiment's decision at that look; a `warn` is shown but does not. Every check is one
vectorised pass over all experiments and dates.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pipelines.stats import sample_ratio_mismatch
from pipelines.stats.sufficient import moments
from pipelines.stats.two_sample import p_value_two_sided, standard_error

SRM_FAIL_P_VALUE = 0.001
CROSSOVER_WARN_RATE = 0.01
CROSSOVER_FAIL_RATE = 0.10
IMBALANCE_FAIL_P_VALUE = 0.001  # pre-exposure covariates, Bonferroni over an experiment's metrics x treatments
TRAFFIC_WARN_SHARE = 0.2  # a day's new exposures below a fifth of the median of the previous 7 days: collapsed
TRAFFIC_BASELINE_DAYS = 7
QUARANTINE_WARN_SHARE = 0.01
QUARANTINE_FAIL_SHARE = 0.10
# One unit's share s of a metric's sum of squared deviations in a variant: it moves the z-statistic by up to sqrt(s)
# standard errors and inflates the standard error by 1 / sqrt(1 - s). Above these shares it dominates the test.
DOMINANT_WARN_SHARE = 0.25
DOMINANT_FAIL_SHARE = 0.50
DOMINANT_MIN_UNITS = 100  # below this many units a single unit's share is large by nature

CHECKS = (
    "sample_ratio_mismatch", "daily_sample_ratio_mismatch", "crossover_rate", "covariate_imbalance",
    "metric_models", "metric_data", "exposure_traffic", "quarantined_rows", "experiment_spec", "dominant_unit",
)  # fmt: skip

HEALTH_COLUMNS = ["experiment_id", "as_of_date", "check_name", "status", "value", "detail"]
HEALTH_SCHEMA = {
    "experiment_id": pl.String, "as_of_date": pl.Date, "check_name": pl.String,
    "status": pl.String, "value": pl.Float64, "detail": pl.String,
}


def sample_ratio_health(
    counts: pl.DataFrame, check_name: str = "sample_ratio_mismatch", failing: str = "fail"
) -> pl.DataFrame:
    """Chi-square test of exposed units against planned weights; `failing` (fail) below p = 0.001."""
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
            check_name=pl.lit(check_name),
            status=pl.when(pl.col("status") != "ok").then(pl.lit("warn"))
            .when(pl.col("p_value") < SRM_FAIL_P_VALUE).then(pl.lit(failing))
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


def new_exposures(counts: pl.DataFrame) -> pl.DataFrame:
    """Units first exposed on each as-of date, per variant, from the cumulative counts."""
    previous = pl.col("exposed_units").shift(1).over(["experiment_id", "variant"], order_by="as_of_date")
    return counts.with_columns(exposed_units=pl.col("exposed_units") - previous.fill_null(0))


def daily_sample_ratio_health(counts: pl.DataFrame) -> pl.DataFrame:
    """The split of each day's new exposures alone (a logging outage in one arm shows here first): warns only,
    as a day is a small sample and there are many days."""
    return sample_ratio_health(new_exposures(counts), "daily_sample_ratio_mismatch", failing="warn")


def covariate_imbalance_health(stats: pl.DataFrame) -> pl.DataFrame:
    """Pre-exposure imbalance: z-test of each metric's pre-exposure covariate mean, treatment vs control; fail
    when the smallest Bonferroni-adjusted p-value of an experiment's look is below 0.001."""
    n = stats["n"].to_numpy().astype(float)
    mean, variance = moments(n, stats["cov_sum"].to_numpy(), stats["cov_sum_sq"].to_numpy(), np.zeros(len(n), bool))
    cells = stats.select("experiment_id", "metric_id", "variant", "is_control", "as_of_date", "n").with_columns(
        mean=pl.Series(mean), variance=pl.Series(variance)
    )
    key = ["experiment_id", "metric_id", "as_of_date"]
    control = cells.filter("is_control").select(*key, n_c="n", mean_c="mean", var_c="variance")
    pairs = cells.filter(~pl.col("is_control")).join(control, on=key)
    se = standard_error(pairs["var_c"].to_numpy(), pairs["n_c"].to_numpy(), pairs["variance"].to_numpy(),
                        pairs["n"].to_numpy())  # fmt: skip
    with np.errstate(all="ignore"):
        z = (pairs["mean"].to_numpy() - pairs["mean_c"].to_numpy()) / se
        p = p_value_two_sided(z, np.inf, False)
    tested = pairs.with_columns(p_value=pl.Series(p, nan_to_null=True)).filter(pl.col("p_value").is_not_null())
    by = ["experiment_id", "as_of_date"]
    worst = tested.with_columns(tests=pl.len().over(by)).with_columns(
        adjusted=(pl.col("p_value") * pl.col("tests")).clip(upper_bound=1.0)
    ).sort("adjusted", "metric_id", "variant").group_by(by, maintain_order=True).first()  # ties: by name
    return worst.with_columns(
        check_name=pl.lit("covariate_imbalance"),
        status=pl.when(pl.col("adjusted") < IMBALANCE_FAIL_P_VALUE).then(pl.lit("fail")).otherwise(pl.lit("pass")),
        value=pl.col("adjusted"),
        detail=pl.format("smallest adjusted p-value: {} vs control on pre-exposure {} ({} tests)",
                         "variant", "metric_id", "tests"),
    ).select(HEALTH_COLUMNS)


def metric_data_health(stats: pl.DataFrame) -> pl.DataFrame:
    """Every metric has data: fail when a metric has units but not one non-zero value in any variant (a broken
    metric model); while a windowed metric has no unit whose window has elapsed it passes, and says so."""
    per_metric = stats.group_by("experiment_id", "as_of_date", "metric_id").agg(
        units=pl.col("n").sum(), values=(pl.col("sum_sq") > 0).any()
    )
    by = ["experiment_id", "as_of_date"]
    return (
        per_metric.group_by(by)
        .agg(
            empty=pl.col("metric_id").filter((pl.col("units") > 0) & ~pl.col("values")).sort().str.join(", "),
            waiting=pl.col("metric_id").filter(pl.col("units") == 0).sort().str.join(", "),
            metrics=pl.len(),
        )
        .with_columns(
            check_name=pl.lit("metric_data"),
            status=pl.when(pl.col("empty") != "").then(pl.lit("fail")).otherwise(pl.lit("pass")),
            value=pl.col("empty").str.split(", ").list.eval(pl.element().filter(pl.element() != "")).list.len()
            .cast(pl.Float64),
            detail=pl.when(pl.col("empty") != "").then(pl.format("no data among analysed units: {}", "empty"))
            .when(pl.col("waiting") != "").then(pl.format("no unit has reached the window yet: {}", "waiting"))
            .otherwise(pl.format("all {} metrics have data", "metrics")),
        )
        .select(HEALTH_COLUMNS)
    )  # fmt: skip


def metric_model_health(broken: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Every metric model the experiment uses built and passed its data tests: fail naming the broken ones (`broken`:
    experiment_id, metric_id), whose experiment's look is held back until they are fixed."""
    models = broken.group_by("experiment_id").agg(
        models=pl.col("metric_id").unique().sort().str.join(", "), count=pl.col("metric_id").n_unique()
    )
    return (
        days.unique()
        .join(models, on="experiment_id", how="left")
        .with_columns(
            check_name=pl.lit("metric_models"),
            status=pl.when(pl.col("models").is_null()).then(pl.lit("pass")).otherwise(pl.lit("fail")),
            value=pl.col("count").fill_null(0).cast(pl.Float64),
            detail=pl.when(pl.col("models").is_null())
            .then(pl.lit("every metric model built and passed its data tests"))
            .otherwise(pl.format("broken metric model (failed to build or failed its data tests): {}; the look is "
                                 "held back until it is fixed", "models")),
        )
        .select(HEALTH_COLUMNS)
    )  # fmt: skip


def exposure_traffic_health(counts: pl.DataFrame) -> pl.DataFrame:
    """Exposure traffic has not collapsed: warn when a day's new exposures fall below a fifth of the median of the
    previous 7 days (from the 8th day of the experiment; new exposures decay naturally as the population is used up)."""
    daily = new_exposures(counts).group_by("experiment_id", "as_of_date").agg(units=pl.col("exposed_units").sum())
    baseline = (
        pl.col("units").shift(1).rolling_median(TRAFFIC_BASELINE_DAYS).over("experiment_id", order_by="as_of_date")
    )
    return daily.with_columns(baseline=baseline).with_columns(
        check_name=pl.lit("exposure_traffic"),
        status=pl.when(pl.col("baseline").is_not_null() & (pl.col("units") < TRAFFIC_WARN_SHARE * pl.col("baseline")))
        .then(pl.lit("warn")).otherwise(pl.lit("pass")),
        value=pl.col("units").cast(pl.Float64),
        detail=pl.when(pl.col("baseline").is_null()).then(pl.format("{} units exposed (no 7-day baseline yet)", "units"))
        .otherwise(pl.format("{} units exposed; median of the previous 7 days {}", "units", "baseline")),
    ).select(HEALTH_COLUMNS)  # fmt: skip


def quarantine_health(raw_counts: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Share of raw rows set aside as bad, per source table (the same for every experiment and look): warn above
    1%, fail above 10%."""
    # counts may arrive as wide integers or decimals (a SQL sum): divide as floats, never as truncating integers
    share = pl.col("quarantined_rows").cast(pl.Float64) / pl.col("raw_rows").cast(pl.Float64)
    worst = raw_counts.filter(pl.col("raw_rows") > 0).with_columns(share=share).sort("share", descending=True)
    detail = ", ".join(f"{r['source_table']} {r['quarantined_rows']} of {r['raw_rows']}" for r in worst.iter_rows(named=True))
    top = float(worst["share"].max() or 0.0)
    status = "fail" if top > QUARANTINE_FAIL_SHARE else "warn" if top > QUARANTINE_WARN_SHARE else "pass"
    return days.unique().with_columns(
        check_name=pl.lit("quarantined_rows"), status=pl.lit(status), value=pl.lit(top),
        detail=pl.lit(f"quarantined raw rows: {detail or 'no raw rows'}"),
    ).select(HEALTH_COLUMNS)  # fmt: skip


def dominant_unit_health(largest: pl.DataFrame) -> pl.DataFrame:
    """No single unit makes most of a metric's spread (`largest`: marts.metric_largest_units, the experiments'
    latest looks): fail when one unit is more than half of a variant's sum of squared deviations (warn above a
    quarter), among variants with at least DOMINANT_MIN_UNITS units; the detail names the worst metric and unit."""
    counted = largest.filter((pl.col("n") >= DOMINANT_MIN_UNITS) & pl.col("largest_unit_share").is_not_null())
    worst = counted.sort("largest_unit_share", "metric_id", "variant", descending=[True, False, False]).group_by(
        "experiment_id", "as_of_date", maintain_order=True
    ).first()
    looks = largest.select("experiment_id", "as_of_date").unique()
    share = pl.col("largest_unit_share")
    return looks.join(worst, on=["experiment_id", "as_of_date"], how="left").with_columns(
        check_name=pl.lit("dominant_unit"),
        status=pl.when(share > DOMINANT_FAIL_SHARE).then(pl.lit("fail"))
        .when(share > DOMINANT_WARN_SHARE).then(pl.lit("warn")).otherwise(pl.lit("pass")),
        value=share.fill_null(0.0),
        detail=pl.when(share.is_null())
        .then(pl.lit(f"no metric has {DOMINANT_MIN_UNITS} units with a spread yet"))
        .otherwise(pl.format(
            "unit {} makes {}% of the spread of {} in {} ({} units); check it for an outlier or a broken log, and "
            "consider a valid_range or winsorize for the metric",
            "largest_unit_id", (share * 100).round(1), "metric_id", "variant", "n",
        )),
    ).select(HEALTH_COLUMNS)  # fmt: skip


def spec_health(days: pl.DataFrame) -> pl.DataFrame:
    """The experiment's spec is valid (an analysed look's spec always is; see `invalid_spec_health`)."""
    return days.unique().with_columns(
        check_name=pl.lit("experiment_spec"), status=pl.lit("pass"), value=pl.lit(0.0),
        detail=pl.lit("the spec is valid"),
    ).select(HEALTH_COLUMNS)  # fmt: skip


def invalid_spec_health(invalid: pl.DataFrame, looks: list[dt.date]) -> pl.DataFrame:
    """A failed experiment_spec check at each of the run's looks for every experiment whose spec is invalid
    (`invalid`: experiment_id, problem): its looks are not recomputed, and its history is kept as it was."""
    named = invalid.filter(pl.col("experiment_id").is_not_null())
    dates = pl.DataFrame({"as_of_date": looks}, schema={"as_of_date": pl.Date})
    return named.join(dates, how="cross").with_columns(
        check_name=pl.lit("experiment_spec"), status=pl.lit("fail"), value=pl.lit(1.0),
        detail=pl.format("the spec is invalid, so this look is not recomputed and the history is kept: {}", "problem"),
    ).select(HEALTH_COLUMNS).cast(HEALTH_SCHEMA)  # fmt: skip


# Checks that read the days units arrive on: without times in the assignment log they cannot be computed.
DAILY_CHECKS = ("daily_sample_ratio_mismatch", "exposure_traffic")
NOT_APPLICABLE = "not_applicable"


def not_applicable(health: pl.DataFrame, checks: tuple[str, ...], why: str) -> pl.DataFrame:
    """The rows of `checks` as not applicable, saying why (a status that passes, neither warns nor fails)."""
    return health.with_columns(
        status=pl.when(pl.col("check_name").is_in(checks)).then(pl.lit(NOT_APPLICABLE)).otherwise("status"),
        value=pl.when(pl.col("check_name").is_in(checks)).then(None).otherwise("value"),
        detail=pl.when(pl.col("check_name").is_in(checks)).then(pl.lit(why)).otherwise("detail"),
    )


def experiment_health(
    counts: pl.DataFrame,
    summary: pl.DataFrame,
    stats: pl.DataFrame,
    raw_counts: pl.DataFrame,
    broken: pl.DataFrame,
    largest: pl.DataFrame | None = None,
    *,
    timed_assignments: bool = True,
) -> pl.DataFrame:
    """Every health check row, typed to the table's schema (`broken`: the broken metric models each experiment uses;
    `largest`: each metric's largest unit at the experiments' latest looks, for `dominant_unit`; without
    `timed_assignments` the daily checks are not applicable)."""
    days = counts.select("experiment_id", "as_of_date")
    frames = [
        sample_ratio_health(counts), daily_sample_ratio_health(counts), crossover_health(summary, days),
        covariate_imbalance_health(stats), metric_model_health(broken, days), metric_data_health(stats),
        exposure_traffic_health(counts), quarantine_health(raw_counts, days), spec_health(days),
        *([] if largest is None else [dominant_unit_health(largest)]),
    ]  # fmt: skip
    health = pl.concat([f.cast(HEALTH_SCHEMA) for f in frames]).sort(["experiment_id", "as_of_date", "check_name"])
    if timed_assignments:
        return health
    why = "not applicable: the assignment log has no times (every unit is exposed at the experiment's start)"
    return not_applicable(health, DAILY_CHECKS, why)

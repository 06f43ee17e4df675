"""Experiment results: every treatment-vs-control comparison of every metric at every as-of date."""

from __future__ import annotations

import polars as pl

from pipelines.stats import compare

# Below this many units in either group the Welch t-test replaces the z-test.
SMALL_SAMPLE_UNITS = 100

RESULT_COLUMNS = [
    "experiment_id", "metric_id", "role", "control", "treatment", "as_of_date", "metric_type", "method",
    "n_control", "n_treatment", "mean_control", "mean_treatment",
    "estimate", "std_error", "ci_lower", "ci_upper",
    "relative_estimate", "relative_ci_lower", "relative_ci_upper",
    "p_value", "alpha", "adjusted_alpha", "adjusted_p_value", "adjusted_ci_lower", "adjusted_ci_upper",
    "is_significant", "powered_effect", "status", "status_reason",
]

SUFFICIENT_STATS_QUERY = """
select
    stats.experiment_id, stats.metric_id, stats.variant, stats.is_control, stats.as_of_date,
    stats.metric_type, stats.n, stats.sum, stats.sum_sq, experiments.alpha
from marts.metric_sufficient_stats as stats
inner join staging.stg_experiments as experiments using (experiment_id)
"""

ROLES_QUERY = "select experiment_id, metric_id, role from staging.stg_experiment_metrics"


def with_method(stats: pl.DataFrame) -> pl.DataFrame:
    """Choose the test per comparison: Welch t when a group is small, z otherwise."""
    key = ["experiment_id", "metric_id", "as_of_date"]
    small = pl.col("n").min().over(key) < SMALL_SAMPLE_UNITS
    return stats.with_columns(method=pl.when(small).then(pl.lit("t")).otherwise(pl.lit("z")))


def experiment_results(stats: pl.DataFrame, roles: pl.DataFrame) -> pl.DataFrame:
    """Compare each treatment with its control; Bonferroni within each experiment and as-of date."""
    compared = compare(with_method(stats), family=("experiment_id", "as_of_date"))
    return (
        compared.join(roles, on=["experiment_id", "metric_id"], how="left")
        .select(RESULT_COLUMNS)
        .sort(["experiment_id", "as_of_date", "metric_id", "treatment"])
    )

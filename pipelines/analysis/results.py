"""Experiment results: every treatment-vs-control comparison of every metric at every as-of date, tested as the
experiment's spec says (hypothesis per metric role, multiple-testing correction, sequential method), with
variance reduction (CUPED) on each metric's pre-exposure value."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.stats import compare, confidence_sequence, group_sequential_bounds
from pipelines.stats.sufficient import SEGMENT, comparison_key
from pipelines.stats.sequential import Spending

# Below this many units in either group the Welch t-test replaces the z-test.
SMALL_SAMPLE_UNITS = 100

# Spec names of the corrections -> the engine's.
ENGINE_CORRECTION = {
    "risk_aware": "spot-1-bonferroni",
    "bonferroni": "bonferroni",
    "holm": "holm",
    "benjamini_hochberg": "benjamini-hochberg",
}
FAMILY = ("experiment_id", "as_of_date")
COMPARISON = ["experiment_id", "metric_id", "treatment"]

RESULT_COLUMNS = [
    "experiment_id", "metric_id", "role", "control", "treatment", "as_of_date", "metric_type", "method",
    "preference", "alternative", "null_hypothesis", "correction", "sequential_method",
    "n_control", "n_treatment", "mean_control", "mean_treatment",
    "estimate", "std_error", "ci_lower", "ci_upper",
    "unadjusted_estimate", "unadjusted_std_error", "variance_reduction_rate",
    "relative_estimate", "relative_ci_lower", "relative_ci_upper",
    "p_value", "alpha", "adjusted_alpha", "adjusted_p_value", "adjusted_ci_lower", "adjusted_ci_upper",
    "information_fraction", "critical_value", "sequential_tuning", "always_valid_p_value",
    "is_significant", "is_significant_preferred", "deterioration_p_value", "is_deteriorating",
    "powered_effect", "adjusted_power", "minimum_detectable_effect", "required_sample_size", "is_powered",
    "status", "status_reason",
]  # fmt: skip

def stats_query(mart: str, *keys: str) -> str:
    """The sufficient statistics of a mart (with extra key columns `keys`) joined with each experiment's design."""
    extra = "".join(f"stats.{key}, " for key in keys)
    return f"""
select
    stats.experiment_id, stats.metric_id, stats.variant, stats.is_control, stats.as_of_date, {extra}
    stats.analysis_type as metric_type, stats.n, stats.sum, stats.sum_sq, stats.cov_sum, stats.cov_sum_sq,
    -- the engine's names: for a ratio, cross_sum is value x denominator and the covariate's cross sums are split
    case when stats.analysis_type = 'ratio' then stats.value_den_cross_sum else stats.cross_sum end as cross_sum,
    stats.den_sum, stats.den_sum_sq,
    case when stats.analysis_type = 'ratio' then stats.cross_sum end as cov_cross_sum,
    stats.den_cov_cross_sum,
    experiments.alpha, experiments.power, experiments.correction, experiments.sequential_method,
    experiments.planned_units, experiments.spending, experiments.spending_rho, experiments.sequential_tuning,
    metrics.role, metrics.minimum_detectable_effect, metrics.non_inferiority_margin, metrics.preferred_direction
from marts.{mart} as stats
inner join staging.stg_experiments as experiments using (experiment_id)
inner join staging.stg_experiment_metrics as metrics using (experiment_id, metric_id)
"""


SUFFICIENT_STATS_QUERY = stats_query("metric_sufficient_stats")
SEGMENT_STATS_QUERY = stats_query("metric_segment_stats", "dimension", "segment")

DESIGN_COLUMNS = [
    "experiment_id", "role", "metric_id", "minimum_detectable_effect", "power", "correction", "sequential_method", "planned_units", "spending",
    "spending_rho", "sequential_tuning",
]  # fmt: skip


def with_method(stats: pl.DataFrame) -> pl.DataFrame:
    """Choose the test per comparison: Welch t when a group is small, z otherwise."""
    small = pl.col("n").min().over(comparison_key(stats)) < SMALL_SAMPLE_UNITS
    return stats.with_columns(method=pl.when(small).then(pl.lit("t")).otherwise(pl.lit("z")))


def fixed_horizon(stats: pl.DataFrame, family: tuple[str, ...] = FAMILY) -> pl.DataFrame:
    """The engine on every look, one call per distinct (correction, power): never per comparison."""
    rows = with_method(stats).with_columns(
        non_inferiority_margin=pl.when(pl.col("role") == "guardrail").then(pl.col("non_inferiority_margin"))
    )
    design = stats.select(DESIGN_COLUMNS).unique(["experiment_id", "metric_id"])
    parts = [
        compare(
            group.drop("power", "correction"),
            power=power, correction=ENGINE_CORRECTION[correction], family=family,
        )  # fmt: skip
        for (correction, power), group in rows.group_by(["correction", "power"])
    ]
    return pl.concat(parts, how="diagonal_relaxed").join(design, on=["experiment_id", "metric_id"], how="left")


def spent_alpha(results: pl.DataFrame) -> pl.Expr:
    """The two-sided level a sequential bound spends: the adjusted alpha, doubled for a one-sided test unless the
    risk-aware correction already reports directional tests two-sided at twice the level."""
    one_sided = (pl.col("alternative") != "two-sided") & (pl.col("correction") != "risk_aware")
    return pl.when(one_sided).then(2 * pl.col("adjusted_alpha")).otherwise(pl.col("adjusted_alpha"))


def _rejects(z: pl.Expr, bound: pl.Expr) -> pl.Expr:
    """Does the standardised distance from the null cross the bound on the tested side(s)."""
    return (
        pl.when(pl.col("alternative") == "greater").then(z >= bound)
        .when(pl.col("alternative") == "less").then(z <= -bound)
        .otherwise(z.abs() >= bound)
    )  # fmt: skip


def _preferred(significant: pl.Expr) -> pl.Expr:
    """Significant on the preferred side of the null (a two-sided test with no preference: significant)."""
    side = pl.col("estimate") - pl.col("null_hypothesis")
    return (
        pl.when(pl.col("preference") == "increase").then(significant & (side > 0))
        .when(pl.col("preference") == "decrease").then(significant & (side < 0))
        .otherwise(significant)
    )  # fmt: skip


def _harm_sign() -> pl.Expr:
    """+1 where a decrease is harmful (preference increase), -1 where an increase is, null without preference."""
    return pl.when(pl.col("preference") == "increase").then(1.0).when(pl.col("preference") == "decrease").then(-1.0)


def _bounds(looks: pl.DataFrame, alpha: str, name: str) -> pl.DataFrame:
    """Lan-DeMets critical values at the two-sided level in column `alpha`, over each comparison's looks in date
    order, with each experiment's spending function; added as column `name`."""
    parts = [looks.clear().with_columns(pl.lit(None, pl.Float64).alias(name))]  # no look at all: an empty frame
    for (spending, rho), group in looks.group_by(["spending", "spending_rho"]):
        function = Spending(spending, rho) if spending == "power" else Spending(spending)  # rho: power family only
        schedule = group.select(*COMPARISON, "as_of_date", "information_fraction", alpha)
        bounds = group_sequential_bounds(schedule, by=COMPARISON, alpha=alpha, spending=function, order="as_of_date")
        parts.append(group.with_columns(bounds.get_column("critical_value").alias(name)))  # row order is kept
    return pl.concat(parts, how="vertical_relaxed")


def group_sequential(results: pl.DataFrame, recorded: pl.DataFrame | None = None) -> pl.DataFrame:
    """Lan-DeMets bounds over each comparison's daily looks (information = units / planned units), per its spec,
    for the metric's test and for its deterioration test (one-sided, so spent at twice its level). A date without
    an estimate (no units yet, e.g. before the first unit's metric window has elapsed) is not a look. `recorded`:
    the information fractions of earlier looks as the results history holds them (the alpha they spent), which
    take the place of today's recomputation of those looks."""
    information = results.with_columns(
        information_fraction=(pl.col("n_control") + pl.col("n_treatment")) / pl.col("planned_units")
    )
    if recorded is not None:
        key = [*COMPARISON, "as_of_date"]
        information = information.join(
            recorded.select(*key, recorded_fraction="information_fraction"), on=key, how="left"
        ).with_columns(
            information_fraction=pl.coalesce("recorded_fraction", "information_fraction")
        ).drop("recorded_fraction")
    is_look = (pl.col("information_fraction") > 0) & pl.col("std_error").is_not_null()
    looks = information.filter(is_look).with_columns(spent_alpha=spent_alpha(results)).with_columns(
        deterioration_spent_alpha=pl.coalesce(2 * pl.col("deterioration_adjusted_alpha"), pl.col("spent_alpha")),
    )
    bounded = _bounds(_bounds(looks, "spent_alpha", "critical_value"), "deterioration_spent_alpha", "harm_bound")
    z = (pl.col("estimate") - pl.col("null_hypothesis")) / pl.col("std_error")
    significant = _rejects(z, pl.col("critical_value"))
    harm = -_harm_sign() * pl.col("estimate") / pl.col("std_error")
    tested = bounded.with_columns(
        is_significant=significant,
        is_significant_preferred=_preferred(significant),
        is_deteriorating=harm >= pl.col("harm_bound"),
        adjusted_ci_lower=pl.col("estimate") - pl.col("critical_value") * pl.col("std_error"),
        adjusted_ci_upper=pl.col("estimate") + pl.col("critical_value") * pl.col("std_error"),
    ).drop("spent_alpha", "deterioration_spent_alpha", "harm_bound")
    return pl.concat([tested, information.filter(~is_look)], how="diagonal_relaxed")


def _sequence(results: pl.DataFrame, level: pl.Expr) -> dict[str, np.ndarray]:
    """Confidence sequences of every row at the two-sided level `level`."""
    return confidence_sequence(
        results.get_column("estimate").cast(pl.Float64).fill_null(np.nan).to_numpy(),
        results.get_column("std_error").cast(pl.Float64).fill_null(np.nan).to_numpy(),
        (results.get_column("n_control") + results.get_column("n_treatment")).cast(pl.Float64).to_numpy(),
        results.select(level).to_series().cast(pl.Float64).fill_null(np.nan).to_numpy(),
        results.get_column("sequential_tuning").cast(pl.Float64).to_numpy(),
    )


def confidence_sequences(results: pl.DataFrame) -> pl.DataFrame:
    """Always-valid intervals and p-values (asymptotic confidence sequences) at every look, for the metric's test
    and for its deterioration test (a sequence at twice the one-sided level that excludes 0 on the harmful side)."""
    sequence = _sequence(results, spent_alpha(results))
    harm = _sequence(results, 2 * pl.col("deterioration_adjusted_alpha"))
    sign = results.select(_harm_sign()).to_series().to_numpy()
    with np.errstate(invalid="ignore"):
        harmful = pl.Series(np.where(sign > 0, harm["ci_upper"] < 0, harm["ci_lower"] > 0))
    unknown = pl.Series(np.isnan(sign) | np.isnan(harm["ci_lower"]))
    null = pl.col("null_hypothesis")
    outside = (
        pl.when(pl.col("alternative") == "greater").then(pl.col("adjusted_ci_lower") > null)
        .when(pl.col("alternative") == "less").then(pl.col("adjusted_ci_upper") < null)
        .otherwise((pl.col("adjusted_ci_lower") > null) | (pl.col("adjusted_ci_upper") < null))
    )  # fmt: skip
    return results.with_columns(
        adjusted_ci_lower=pl.Series(sequence["ci_lower"], nan_to_null=True),
        adjusted_ci_upper=pl.Series(sequence["ci_upper"], nan_to_null=True),
        always_valid_p_value=pl.Series(sequence["p_value"], nan_to_null=True),
        is_deteriorating=pl.when(unknown).then(None).otherwise(harmful),
    ).with_columns(is_significant=outside).with_columns(is_significant_preferred=_preferred(pl.col("is_significant")))


def is_powered() -> pl.Expr:
    """The comparison has at least the units its minimum detectable effect needs (null without an MDE)."""
    return (pl.col("n_control") + pl.col("n_treatment")) >= pl.col("required_sample_size")


def experiment_results(stats: pl.DataFrame, recorded: pl.DataFrame | None = None) -> pl.DataFrame:
    """Test every comparison as its experiment's design says; one row per experiment x metric x treatment x date.
    `recorded`: earlier looks' information fractions from the results history (see `group_sequential`)."""
    results = fixed_horizon(stats).with_columns(
        information_fraction=pl.lit(None, pl.Float64),
        critical_value=pl.lit(None, pl.Float64),
        always_valid_p_value=pl.lit(None, pl.Float64),
    )
    method = pl.col("sequential_method")
    parts = [
        results.filter(method == "none").with_columns(sequential_tuning=pl.lit(None, pl.Float64)),
        group_sequential(results.filter(method == "group_sequential"), recorded).with_columns(
            sequential_tuning=pl.lit(None, pl.Float64)
        ),
        confidence_sequences(results.filter(method == "confidence_sequence")),
    ]
    return (
        pl.concat([p.select(sorted(p.columns)) for p in parts], how="diagonal_relaxed")
        .with_columns(is_powered=is_powered())
        .select(RESULT_COLUMNS)
        .sort(["experiment_id", "as_of_date", "metric_id", "treatment"])
    )


SEGMENT_RESULT_COLUMNS = [
    "experiment_id", "metric_id", "role", "control", "treatment", "as_of_date", "dimension", "segment",
    "metric_type", "method", "alternative", "null_hypothesis", "correction",
    "n_control", "n_treatment", "mean_control", "mean_treatment", "estimate", "std_error", "ci_lower", "ci_upper",
    "variance_reduction_rate", "relative_estimate", "relative_ci_lower", "relative_ci_upper",
    "p_value", "adjusted_p_value", "is_significant", "status", "status_reason", "exploratory",
]  # fmt: skip


def segment_results(stats: pl.DataFrame) -> pl.DataFrame:
    """Exploratory results per unit dimension and segment at the latest look: fixed-horizon tests as the metric's
    role says, corrected within each segment, flagged `exploratory` (they never enter a decision)."""
    keyed = stats.with_columns(pl.concat_str("dimension", pl.lit("="), SEGMENT).alias(SEGMENT)).drop("dimension")
    results = fixed_horizon(keyed, family=(*FAMILY, SEGMENT))
    split = pl.col(SEGMENT).str.splitn("=", 2)
    return (
        results.with_columns(dimension=split.struct.field("field_0"), segment=split.struct.field("field_1"))
        .with_columns(exploratory=pl.lit(True))
        .select(SEGMENT_RESULT_COLUMNS)
        .sort(["experiment_id", "dimension", "segment", "metric_id", "treatment"])
    )

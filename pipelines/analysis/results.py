"""Experiment results: every treatment-vs-control comparison of every metric at every as-of date, tested as the
experiment's spec says (hypothesis per metric role, multiple-testing correction, sequential method), with
variance reduction (CUPED) on each metric's pre-exposure value."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.stats import compare, group_sequential_bounds
from pipelines.stats.power import PLANNED_LOOKS, confidence_sequence_sample_size, group_sequential_inflation
from pipelines.stats.sequential import Spending, confidence_sequence_bound, confidence_sequence_p_value
from pipelines.stats.sufficient import SEGMENT, comparison_key

# Below this many units in either group the Welch t-test replaces the z-test.
SMALL_SAMPLE_UNITS = 100

# Spec names of the corrections -> the engine's.
ENGINE_CORRECTION = {
    "risk_aware": "risk-aware",
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
    "estimate", "std_error", "statistic", "ci_lower", "ci_upper", "ci_level",
    "unadjusted_estimate", "unadjusted_std_error", "variance_reduction_rate",
    "relative_estimate", "relative_ci_lower", "relative_ci_upper", "relative_p_value",
    "p_value", "alpha", "adjusted_alpha", "adjusted_p_value", "adjusted_ci_lower", "adjusted_ci_upper",
    "adjusted_ci_level", "planned_information", "information_fraction", "critical_value", "sequential_tuning",
    "always_valid_p_value",
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
    stats.analysis_type as metric_type, stats.n, stats.sum, stats.sum_sq, stats.sum_sq_abs, stats.value_shift,
    stats.cov_sum, stats.cov_sum_sq,
    -- the engine's names: for a ratio, cross_sum is value x denominator and the covariate's cross sums are split
    case when stats.analysis_type = 'ratio' then stats.value_den_cross_sum else stats.cross_sum end as cross_sum,
    stats.den_sum, stats.den_sum_sq,
    case when stats.analysis_type = 'ratio' then stats.cross_sum end as cov_cross_sum,
    stats.den_cov_cross_sum,
    experiments.alpha, experiments.power, experiments.correction, experiments.sequential_method,
    experiments.planned_units, experiments.spending, experiments.spending_rho, experiments.sequential_tuning,
    experiments.start_date, experiments.end_date,
    metrics.role, metrics.minimum_detectable_effect, metrics.non_inferiority_margin, metrics.preferred_direction,
    metrics.alternative, variants.planned_weight, arms.design_treatments, design.design_metrics,
    design.design_success_metrics, design.design_guardrail_metrics
from marts.{mart} as stats
inner join staging.stg_experiments as experiments using (experiment_id)
inner join staging.stg_experiment_metrics as metrics using (experiment_id, metric_id)
inner join staging.stg_experiment_variants as variants using (experiment_id, variant)
-- the design's family, fixed by the spec whichever metrics have data yet
inner join (
    select experiment_id, count(*) - 1 as design_treatments
    from staging.stg_experiment_variants
    group by experiment_id
) as arms using (experiment_id)
inner join (
    select
        experiment_id,
        count(*) as design_metrics,
        count(case when role = 'success' then 1 end) as design_success_metrics,
        count(case when role = 'guardrail' then 1 end) as design_guardrail_metrics
    from staging.stg_experiment_metrics
    group by experiment_id
) as design using (experiment_id)
"""


SUFFICIENT_STATS_QUERY = stats_query("metric_sufficient_stats")
SEGMENT_STATS_QUERY = stats_query("metric_segment_stats", "dimension", "segment")
# days since exposure, in the segment columns: tested as the segments are
EXPOSURE_DAY_STATS_QUERY = stats_query("metric_exposure_day_stats", "dimension", "segment")

CUPED_COLUMNS = ("unadjusted_estimate", "unadjusted_std_error", "variance_reduction_rate")
DESIGN_COLUMNS = [
    "experiment_id", "role", "metric_id", "minimum_detectable_effect", "power", "correction", "sequential_method",
    "planned_units", "spending", "spending_rho", "sequential_tuning", "start_date", "end_date",
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
    results = pl.concat(parts, how="diagonal_relaxed").join(design, on=["experiment_id", "metric_id"], how="left")
    # a night with no covariate sums at all (no metric has pre-exposure data) still has the CUPED columns
    results = results.with_columns(pl.lit(None, pl.Float64).alias(c) for c in CUPED_COLUMNS if c not in results.columns)
    weights = stats.select("experiment_id", "variant", "planned_weight").unique(["experiment_id", "variant"])
    for side in ("control", "treatment"):
        results = results.join(
            weights.rename({"variant": side, "planned_weight": f"weight_{side}"}), on=["experiment_id", side], how="left"
        )
    return results


def spent_alpha(level: str = "adjusted_alpha") -> pl.Expr:
    """The two-sided level a sequential bound spends for the test at `level`: doubled for a one-sided test (its
    bound on the tested side is then the one-sided bound at `level`)."""
    return pl.when(pl.col("alternative") != "two-sided").then(2 * pl.col(level)).otherwise(pl.col(level))


def _crosses(statistic: pl.Expr, bound: pl.Expr) -> pl.Expr:
    """Does the statistic of the row's null cross the bound on the tested side(s)."""
    return (
        pl.when(pl.col("alternative") == "greater").then(statistic >= bound)
        .when(pl.col("alternative") == "less").then(statistic <= -bound)
        .otherwise(statistic.abs() >= bound)
    )  # fmt: skip


def _preferred(significant: pl.Expr) -> pl.Expr:
    """Significant on the preferred side of the null (a two-sided test with no preference: significant)."""
    side = pl.col("statistic")
    return (
        pl.when(pl.col("preference") == "increase").then(significant & (side > 0))
        .when(pl.col("preference") == "decrease").then(significant & (side < 0))
        .otherwise(significant)
    )  # fmt: skip


def _harm() -> pl.Expr:
    """The deterioration test's statistic: the estimate over its standard error, signed so that harm is positive
    (null without a preferred direction)."""
    sign = pl.when(pl.col("preference") == "increase").then(-1.0).when(pl.col("preference") == "decrease").then(1.0)
    return sign * pl.col("estimate") / pl.col("std_error")


def _since_first(flag: pl.Expr) -> pl.Expr:
    """True from a comparison's first look where `flag` holds on: a sequential test stops at its first crossing,
    so a later look never loses a result an earlier one had (null where the look has no verdict)."""
    return flag.cast(pl.Int8).cum_max().over(COMPARISON, order_by="as_of_date").cast(pl.Boolean)


def _sequential_verdicts(looks: pl.DataFrame) -> pl.DataFrame:
    """Significance, preference, deterioration and the adjusted interval of each look from its `critical_value`
    and `harm_bound` (both in z units), each kept from its first crossing on."""
    crossed = _crosses(pl.col("statistic"), pl.col("critical_value"))
    return looks.with_columns(
        is_significant=_since_first(crossed),
        is_significant_preferred=_since_first(_preferred(crossed)),
        is_deteriorating=_since_first(_harm() >= pl.col("harm_bound")),
        adjusted_ci_lower=pl.col("estimate") - pl.col("critical_value") * pl.col("std_error"),
        adjusted_ci_upper=pl.col("estimate") + pl.col("critical_value") * pl.col("std_error"),
    ).with_columns(
        adjusted_ci_lower=pl.when(pl.col("alternative") == "less").then(float("-inf")).otherwise("adjusted_ci_lower"),
        adjusted_ci_upper=pl.when(pl.col("alternative") == "greater").then(float("inf")).otherwise("adjusted_ci_upper"),
        adjusted_ci_level=1 - spent_alpha(),
    )


def _bounds(looks: pl.DataFrame, alpha: str, name: str) -> pl.DataFrame:
    """Lan-DeMets critical values at the two-sided level in column `alpha`, over each comparison's looks in date
    order, with each experiment's spending function; added as column `name` (and the information fraction each
    bound was solved at as `spent_fraction`)."""
    parts = [looks.clear().with_columns(pl.lit(None, pl.Float64).alias(name), spent_fraction=pl.lit(None, pl.Float64))]
    for (spending, rho), group in looks.group_by(["spending", "spending_rho"]):
        function = Spending(spending, rho) if spending == "power" else Spending(spending)  # rho: power family only
        schedule = group.select(*COMPARISON, "as_of_date", "information_fraction", alpha)
        bounds = group_sequential_bounds(schedule, by=COMPARISON, alpha=alpha, spending=function, order="as_of_date")
        parts.append(group.with_columns(bounds.get_column("critical_value").alias(name), bounds.get_column("spent_fraction")))
    return pl.concat(parts, how="vertical_relaxed")


def planned_information() -> pl.Expr:
    """Units the design plans for one comparison: its two arms' share of the planned units."""
    share = (pl.col("weight_control") + pl.col("weight_treatment")).fill_null(1.0)
    return pl.col("planned_units") * share


def is_look() -> pl.Expr:
    """A date with an estimate and its standard error is a look; before the first unit's data it is not."""
    return pl.col("std_error").is_not_null() & ((pl.col("n_control") + pl.col("n_treatment")) > 0)


def group_sequential(results: pl.DataFrame, recorded: pl.DataFrame | None = None) -> pl.DataFrame:
    """Lan-DeMets bounds over each comparison's daily looks, per its spec, for the metric's test and for its
    deterioration test (one-sided, so spent at twice its level). Information = units so far / the comparison's
    planned information (its arms' share of planned_units); past the plan the fractions are rescaled
    (`pipelines.stats.sequential.group_sequential_bounds`), and `information_fraction` reports the fraction each
    bound was solved at. `recorded`: the units of earlier looks as the results history holds them (the
    information they spent), which take the place of today's counts for those looks (late rows do not move a
    past look)."""
    units = pl.col("n_control") + pl.col("n_treatment")
    information = results.with_columns(planned_information=planned_information(), information_units=units)
    if recorded is not None:
        key = [*COMPARISON, "as_of_date"]
        information = information.join(recorded.select(*key, "recorded_units"), on=key, how="left").with_columns(
            information_units=pl.coalesce("recorded_units", "information_units")
        ).drop("recorded_units")
    information = information.with_columns(
        information_fraction=pl.col("information_units") / pl.col("planned_information")
    ).drop("information_units")
    looks = information.filter(is_look()).with_columns(
        spent=spent_alpha(), harm_spent=2 * pl.col("deterioration_adjusted_alpha")
    )
    # the metric's test's fractions are reported (a row without a preferred direction has no deterioration test)
    tested = _bounds(looks, "spent", "critical_value").rename({"spent_fraction": "_tested_fraction"})
    bounded = _bounds(tested, "harm_spent", "harm_bound")
    tested = _sequential_verdicts(bounded.with_columns(information_fraction=pl.col("_tested_fraction")))
    return pl.concat(
        [tested.drop("spent", "harm_spent", "harm_bound", "spent_fraction", "_tested_fraction"),
         information.filter(~is_look())],
        how="diagonal_relaxed",
    )


def confidence_sequences(results: pl.DataFrame) -> pl.DataFrame:
    """Always-valid intervals and p-values (asymptotic confidence sequences) at every look, for the metric's test
    of its own null (the guardrail's margin included) and for its deterioration test (a sequence at twice the
    one-sided level on the harmful side), each kept from its first crossing on."""
    n = (pl.col("n_control") + pl.col("n_treatment")).cast(pl.Float64)

    def bound(level: pl.Expr) -> pl.Series:
        values = results.select(n=n, level=level, tuning=pl.col("sequential_tuning"))
        return pl.Series(
            confidence_sequence_bound(*(values.get_column(c).fill_null(np.nan).to_numpy() for c in values.columns)),
            nan_to_null=True,
        )

    frame = results.with_columns(critical_value=bound(spent_alpha()), harm_bound=bound(2 * pl.col("deterioration_adjusted_alpha")))
    values = frame.select(
        z=pl.col("statistic"), n=n, level=spent_alpha(), tuning=pl.col("sequential_tuning")
    )  # fmt: skip
    two_sided = pl.Series(
        confidence_sequence_p_value(*(values.get_column(c).cast(pl.Float64).fill_null(np.nan).to_numpy() for c in values.columns)),
        nan_to_null=True,
    )
    # a one-sided test reports the sequence's one-sided p-value: half the two-sided one on the tested side
    z = pl.col("statistic")
    tested_side = (pl.col("alternative") == "greater") & (z > 0) | (pl.col("alternative") == "less") & (z < 0)
    always_valid = (
        pl.when(pl.col("alternative") == "two-sided").then(pl.col("_p"))
        .when(tested_side).then(pl.col("_p") / 2)
        .otherwise(1 - pl.col("_p") / 2)
    )  # fmt: skip
    return _sequential_verdicts(frame.with_columns(_p=two_sided).with_columns(always_valid_p_value=always_valid)).drop(
        "_p", "harm_bound"
    )


def planned_looks() -> pl.Expr:
    """Daily looks a sequential design is planned for: its days from start to end date, else PLANNED_LOOKS."""
    days = (pl.col("end_date") - pl.col("start_date")).dt.total_days() + 1
    return pl.when(pl.col("end_date").is_not_null()).then(days.clip(lower_bound=1)).otherwise(PLANNED_LOOKS)


def design_sample_size(results: pl.DataFrame) -> pl.DataFrame:
    """`required_sample_size` as the row's own design needs it: the fixed-horizon size times the group-sequential
    inflation factor of its spending function and planned looks, or the size at which its confidence sequence
    reaches the power (`pipelines.stats.power`); fixed-horizon rows keep the fixed size. One solve per distinct
    design, never per row."""
    fixed = results.get_column("required_sample_size").cast(pl.Float64).fill_null(np.nan).to_numpy()
    method = results.get_column("sequential_method").to_numpy()
    level = results.select(spent_alpha()).to_series().cast(pl.Float64).fill_null(np.nan).to_numpy()
    sized = fixed.copy()
    gst = (method == "group_sequential") & np.isfinite(fixed) & np.isfinite(level)
    if gst.any():
        designs = results.filter(pl.Series(gst)).select(
            level=pl.Series(level[gst]), power="adjusted_power", spending="spending", rho="spending_rho",
            looks=planned_looks(), _row=pl.Series(np.flatnonzero(gst)),
        )  # fmt: skip
        factors = designs.select("level", "power", "spending", "rho", "looks").unique()
        factors = factors.with_columns(factor=pl.Series([
            group_sequential_inflation(float(a), float(b), str(c), float(d), int(e)) for a, b, c, d, e in factors.iter_rows()
        ], dtype=pl.Float64))  # fmt: skip
        joined = designs.join(factors, on=["level", "power", "spending", "rho", "looks"], how="left")
        rows = joined.get_column("_row").to_numpy()
        sized[rows] = np.ceil(fixed[rows] * joined.get_column("factor").to_numpy())
    cs = (method == "confidence_sequence") & np.isfinite(fixed) & np.isfinite(level)
    if cs.any():
        sized[cs] = confidence_sequence_sample_size(
            fixed[cs], level[cs], results.get_column("adjusted_power").to_numpy()[cs],
            results.get_column("sequential_tuning").cast(pl.Float64).to_numpy()[cs],
        )
    return results.with_columns(required_sample_size=pl.Series(sized, nan_to_null=True))


def is_powered() -> pl.Expr:
    """The comparison has at least the units its minimum detectable effect needs under its design (null without
    an MDE)."""
    return (pl.col("n_control") + pl.col("n_treatment")) >= pl.col("required_sample_size")


def experiment_results(stats: pl.DataFrame, recorded: pl.DataFrame | None = None) -> pl.DataFrame:
    """Test every comparison as its experiment's design says; one row per experiment x metric x treatment x date.
    `recorded`: earlier looks' units from the results history (see `group_sequential`)."""
    results = fixed_horizon(stats).with_columns(
        planned_information=pl.lit(None, pl.Float64),
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
        design_sample_size(pl.concat([p.select(sorted(p.columns)) for p in parts], how="diagonal_relaxed"))
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

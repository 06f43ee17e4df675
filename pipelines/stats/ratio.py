"""Ratio metrics (sum of a per-unit numerator over the sum of a per-unit denominator), vectorised Polars expressions.

A ratio metric such as revenue per purchase is R = sum(m) / sum(d) over the units of a group. Units are the
randomisation units, so m_i and d_i are correlated within a unit and R is not a mean of independent values.
Its variance comes from the delta method (Deng, Knoblich & Lu 2018, "Applying the delta method in metric
analytics: a practical guide with novel ideas", KDD, section 2-3): with per-unit means mu_m, mu_d, sample
(n-1) variances var_m, var_d and covariance cov(m, d),

    n * Var(R) ~= var_m / mu_d^2 - 2 cov(m, d) mu_m / mu_d^3 + mu_m^2 var_d / mu_d^4,

the variance of the linearised per-unit value L_i = (m_i - R d_i) / mu_d. `ratio_variance` is this per-unit
variance (divide by n for the variance of R), so a ratio row plugs into the same two-sample tests as a mean
row. Same convention as GrowthBook's gbstats 0.8.0 `RatioStatistic`.

Input columns per group: n, sum, sum_sq (numerator), den_sum, den_sum_sq (denominator) and cross_sum
(sum over units of numerator x denominator).
"""

from __future__ import annotations

import polars as pl

from pipelines.stats.sufficient import MEAN, METRIC_TYPES, PROPORTION, RATIO, VARIANCE_NOISE_FLOOR

RATIO_COLUMNS = ("n", "sum", "sum_sq", "den_sum", "den_sum_sq", "cross_sum")
# Optional columns of mean rows: `value_shift` c when the sums are of (value - c) and (covariate - c) (shifted
# moments keep the precision of values whose mean is large against their spread), and `sum_sq_abs`, the sum of the
# absolute terms sum_sq was accumulated from (it bounds sum_sq's rounding; default |sum_sq|).
SHIFT_COLUMNS = ("value_shift", "sum_sq_abs")


def _f(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64)


def sample_covariance_expr(n: pl.Expr, sum_a: pl.Expr, sum_b: pl.Expr, sum_ab: pl.Expr) -> pl.Expr:
    """Sample covariance (sum_ab - sum_a sum_b / n) / (n - 1) from sufficient statistics (n-1 divisor)."""
    return (sum_ab - sum_a * sum_b / n) / (n - 1.0)


def delta_ratio_variance(
    mean_m: pl.Expr, var_m: pl.Expr, mean_d: pl.Expr, var_d: pl.Expr, cov_md: pl.Expr
) -> pl.Expr:
    """Delta-method per-unit variance of m/d: var_m/mu_d^2 - 2 cov mu_m/mu_d^3 + mu_m^2 var_d/mu_d^4 (Deng et al. 2018, eq. 4)."""
    return var_m / mean_d**2 - 2.0 * cov_md * mean_m / mean_d**3 + mean_m**2 * var_d / mean_d**4


def ratio_problem_expr(
    n: str = "n",
    num_sum: str = "sum",
    num_sum_sq: str = "sum_sq",
    den_sum: str = "den_sum",
    den_sum_sq: str = "den_sum_sq",
    cross_sum: str = "cross_sum",
) -> pl.Expr:
    """Why a group's ratio or its variance is undefined (null when fine): missing/non-finite input, n < 2, den_sum 0.

    Checks follow Deng et al. (2018): the delta method needs a non-zero denominator mean and sample moments (n >= 2).
    """
    cols = (n, num_sum, num_sum_sq, den_sum, den_sum_sq, cross_sum)
    n_ = _f(n)
    return (
        pl.when(pl.any_horizontal(pl.col(c).is_null() for c in cols))
        .then(pl.lit("missing n, sum, sum_sq, den_sum, den_sum_sq or cross_sum"))
        .when(~pl.all_horizontal(_f(c).is_finite() for c in cols))
        .then(pl.lit("non-finite ratio sufficient statistics"))
        .when(n_ < 0)
        .then(pl.lit("negative n"))
        .when(n_ < 2)
        .then(pl.format("need n >= 2 for a ratio variance, got n={}", pl.col(n)))
        .when(_f(den_sum) == 0)
        .then(pl.lit("denominator sum is 0: ratio undefined"))
        .otherwise(None)
    )


def ratio_moment_exprs(
    n: str = "n",
    num_sum: str = "sum",
    num_sum_sq: str = "sum_sq",
    den_sum: str = "den_sum",
    den_sum_sq: str = "den_sum_sq",
    cross_sum: str = "cross_sum",
) -> dict[str, pl.Expr]:
    """Expressions for numerator_mean, denominator_mean, mean (= R = sum/den_sum) and variance (per-unit delta method).

    Deng et al. (2018); gbstats 0.8.0 `RatioStatistic` (sample n-1 moments). Null wherever `ratio_problem_expr` is set;
    a variance within rounding noise of 0 (or slightly negative from cancellation) is reported as 0.
    """
    n_ = _f(n)
    s_m, ss_m, s_d, ss_d, s_md = _f(num_sum), _f(num_sum_sq), _f(den_sum), _f(den_sum_sq), _f(cross_sum)
    mu_m, mu_d = s_m / n_, s_d / n_
    var_m = sample_covariance_expr(n_, s_m, s_m, ss_m)
    var_d = sample_covariance_expr(n_, s_d, s_d, ss_d)
    cov = sample_covariance_expr(n_, s_m, s_d, s_md)
    var = delta_ratio_variance(mu_m, var_m, mu_d, var_d, cov)
    noise = VARIANCE_NOISE_FLOOR * (ss_m / n_ / mu_d**2 + mu_m**2 * ss_d / n_ / mu_d**4)
    bad = ratio_problem_expr(n, num_sum, num_sum_sq, den_sum, den_sum_sq, cross_sum).is_not_null()
    return {
        "numerator_mean": pl.when(n_ > 0).then(mu_m).otherwise(None),
        "denominator_mean": pl.when(n_ > 0).then(mu_d).otherwise(None),
        "mean": pl.when(bad).then(None).otherwise(s_m / s_d),
        "variance": pl.when(bad).then(None).when(var.abs() <= noise).then(0.0).otherwise(var),
    }


def ratio_group_moments(stats: pl.DataFrame) -> pl.DataFrame:
    """Add numerator_mean, denominator_mean, mean (the ratio), variance (per-unit, delta method) and input_problem.

    One row per group with n, sum, sum_sq, den_sum, den_sum_sq, cross_sum (Deng et al. 2018; gbstats 0.8.0).
    Never raises on degenerate rows: mean/variance are null and `input_problem` says why (den_sum 0, n < 2, ...).
    A clearly negative variance (sums that no real data could produce) is flagged as well.
    """
    missing = [c for c in RATIO_COLUMNS if c not in stats.columns]
    if missing:
        raise ValueError(f"ratio_group_moments: missing input columns {missing}")
    out = stats.with_columns(**ratio_moment_exprs(), input_problem=ratio_problem_expr())
    return out.with_columns(
        input_problem=pl.when(pl.col("input_problem").is_null() & (pl.col("variance") < 0))
        .then(pl.lit("inconsistent sums: negative delta-method variance"))
        .otherwise(pl.col("input_problem"))
    ).with_columns(
        mean=pl.when(pl.col("input_problem").is_null()).then(pl.col("mean")).otherwise(None),
        variance=pl.when(pl.col("input_problem").is_null()).then(pl.col("variance")).otherwise(None),
    )


# ---------------------------------------------------------------------------------------------- any metric kind



def with_shift_columns(stats: pl.DataFrame) -> pl.DataFrame:
    """The frame with `SHIFT_COLUMNS` (null when not given)."""
    return stats.with_columns(pl.lit(None, pl.Float64).alias(c) for c in SHIFT_COLUMNS if c not in stats.columns)


def value_shift_expr() -> pl.Expr:
    """The shift c of a row's sums (0 when not given)."""
    return _f("value_shift").fill_null(0.0)


def variance_noise_expr(n: pl.Expr, sum_sq: pl.Expr) -> pl.Expr:
    """The rounding noise of a variance from sums: VARIANCE_NOISE_FLOOR x max(|sum_sq|, sum_sq_abs) / n."""
    return VARIANCE_NOISE_FLOOR * pl.max_horizontal(sum_sq.abs(), _f("sum_sq_abs")) / n


def imprecise_expr(metric_type: str = "metric_type") -> pl.Expr:
    """Mean rows whose variance the float64 sums cannot resolve: not exactly zero, yet within the rounding noise
    (constant values that do not sum exactly, or values whose mean is huge against their spread)."""
    n_, s, ss = _f("n"), _f("sum"), _f("sum_sq")
    raw = sample_covariance_expr(n_, s, s, ss)
    return ((pl.col(metric_type) == MEAN) & (n_ > 1) & (raw != 0) & (raw.abs() <= variance_noise_expr(n_, ss))).fill_null(
        False
    )


def statistic_moment_exprs(metric_type: str = "metric_type") -> dict[str, pl.Expr]:
    """`mean` and per-unit `variance` of a group's statistic by metric kind (nulls where undefined).

    mean: sum/n (of value - value_shift when shifted: the caller adds the shift back), sample variance
    (sum_sq - sum^2/n)/(n-1); proportion: sum/n, p(1-p) (gbstats 0.8.0 and spotify-confidence 4.1.0 conventions);
    ratio: sum/den_sum and the delta-method variance (`ratio_moment_exprs`). Ratio rows need den_sum, den_sum_sq,
    cross_sum, and every row `SHIFT_COLUMNS` (`with_shift_columns`); rows ignore what their kind does not use.
    """
    kind = pl.col(metric_type)
    n_, s, ss = _f("n"), _f("sum"), _f("sum_sq")
    p = s / n_
    sample = sample_covariance_expr(n_, s, s, ss)
    sample = pl.when(sample.abs() <= variance_noise_expr(n_, ss)).then(0.0).otherwise(sample)
    ratio = ratio_moment_exprs()
    return {
        "mean": pl.when(kind == RATIO).then(ratio["mean"]).when(n_ > 0).then(p).otherwise(None),
        "variance": pl.when(kind == RATIO)
        .then(ratio["variance"])
        .when(kind == PROPORTION)
        .then(pl.when(n_ > 0).then(p * (1.0 - p)))
        .otherwise(pl.when(n_ > 1).then(sample)),
    }


def statistic_problem_expr(metric_type: str = "metric_type") -> pl.Expr:
    """Why a group's statistic cannot be tested (null when fine): unknown kind, missing sums, n < 2, den_sum 0,
    a proportion outside [0, n], or sums implying a negative variance (Cauchy-Schwarz, rounding allowed)."""
    kind = pl.col(metric_type)
    n_, s, ss = _f("n"), _f("sum"), _f("sum_sq")
    return (
        pl.when(kind.is_null() | ~kind.is_in(list(METRIC_TYPES)))
        .then(pl.lit(f"metric_type must be one of {list(METRIC_TYPES)}"))
        .when(kind == RATIO)
        .then(ratio_problem_expr())
        .when(pl.any_horizontal(pl.col(c).is_null() for c in ("n", "sum", "sum_sq")))
        .then(pl.lit("missing n, sum or sum_sq"))
        .when(~n_.is_finite() | ~s.is_finite() | ~ss.is_finite())
        .then(pl.lit("non-finite n, sum or sum_sq"))
        .when(n_ < 2)
        .then(pl.format("need n >= 2, got n={}", pl.col("n")))
        .when((kind != MEAN) & (value_shift_expr() != 0))
        .then(pl.lit("value_shift applies to mean metrics only"))
        .when((kind == PROPORTION) & ((s < 0) | (s > n_)))
        .then(pl.lit("proportion sum outside [0, n]"))
        .when((kind != PROPORTION) & (sample_covariance_expr(n_, s, s, ss) < -variance_noise_expr(n_, ss)))
        .then(pl.lit("sum_sq < sum^2/n (negative variance)"))
        .otherwise(None)
    )


def metric_group_moments(stats: pl.DataFrame, metric_type: str = "metric_type") -> pl.DataFrame:
    """Add `mean`, `variance` (per unit) and `input_problem` for mean, proportion and ratio rows alike.

    Formulas: see `statistic_moment_exprs` (ratio: Deng et al. 2018 delta method). Ratio rows without the ratio
    columns, n < 2, den_sum 0 etc. give null mean/variance and a reason in `input_problem`; never raises.
    """
    for c in ("den_sum", "den_sum_sq", "cross_sum"):
        if c not in stats.columns:
            stats = stats.with_columns(pl.lit(None, pl.Float64).alias(c))
    out = with_shift_columns(stats).with_columns(
        **statistic_moment_exprs(metric_type),
        input_problem=statistic_problem_expr(metric_type),
        imprecise=imprecise_expr(metric_type),
    )
    out = out.with_columns(
        input_problem=pl.when(pl.col("input_problem").is_null() & (pl.col("variance") < 0))
        .then(pl.lit("inconsistent sums: negative variance"))
        .otherwise(pl.col("input_problem"))
    )
    usable = pl.col("input_problem").is_null()
    return out.with_columns(mean=pl.when(usable).then(pl.col("mean")), variance=pl.when(usable).then(pl.col("variance")))

"""CUPED / regression adjustment with one pre-exposure covariate, for mean, proportion and ratio metrics.

Method: Deng, Xu, Kohavi & Walker (2013), "Improving the sensitivity of online controlled experiments by utilizing
pre-experiment data" (WSDM): Y_adj = Y - theta (X - E[X]) with theta = cov(Y, X) / var(X) reduces the variance of
the mean by the factor 1 - rho^2 (rho = corr(Y, X)) and leaves the expected treatment effect unchanged because X
is measured before exposure. theta is pooled over the variants of a comparison (one slope, not one per group).

Per group (sums over units): n, sum, sum_sq of the metric value y; cov_sum, cov_sum_sq of the covariate x;
- mean / proportion rows: cross_sum = sum of y * x;
- ratio rows (y = m / d, see `pipelines.stats.ratio`): den_sum, den_sum_sq, cross_sum = sum of m * d,
  cov_cross_sum = sum of m * x and den_cov_cross_sum = sum of d * x.
Optional `covariate_type` ('mean' / 'proportion'): under the gbstats convention a 'proportion' covariate gets the
variance p(1-p); default: the metric's type for mean/proportion rows, 'mean' for ratio rows.

Ratio metrics: CUPED is applied to the delta-method linearised per-unit value L_i = (m_i - R d_i) / mu_d
(Deng, Knoblich & Lu 2018, section 3; R = sum m / sum d, mu_d = mean of d). R_hat - R ~= mean(L), so adjusting
mean(L) by theta (xbar - xbar_pooled) adjusts R_hat to first order:
    cov(L, x) = (cov(m, x) - R cov(d, x)) / mu_d,   theta = cov_pooled(L, x) / var_pooled(x)
with the pooled L built from the pooled R and mu_d, adjusted ratio R - theta (xbar_g - xbar_pooled) and per-unit
variance var_delta(R) + theta^2 var(x) - 2 theta cov(L, x) within the group.

Two conventions (`convention=`):
- "gbstats" (GrowthBook gbstats 0.8.0 `compute_theta` / `RegressionAdjustedStatistic`): theta from the two groups of
  the comparison pooled as one sample, theta = cov(y, x) / var(x) with sample (n-1) moments, except that a
  proportion's variance is p(1-p); theta = 0 (unadjusted test) when the pooled x or y has no variance. Per-group
  variance var_y + theta^2 var_x - 2 theta cov(y, x) with the same moments. gbstats' own adjusted mean is
  ybar - theta xbar; we report ybar - theta (xbar - xbar_pooled), which differs by the same constant in both groups
  (the difference is identical and gbstats' relative effect divides by the *unadjusted* control mean). With more
  than two groups in a comparison key, the slope pools all of them (one slope per key, as `compare` needs per-group
  moments); with two it is gbstats' pair.
- "confidence" (spotify-confidence 4.1.0 `z-test-linreg`): one OLS slope per metric pooled over *all* groups of the
  comparison key, b = (Sxy - Sx Sy / N) / (Sxx - Sx^2 / N), a singular design giving b = 0; adjusted mean
  ybar - b (xbar_g - xbar_pooled); per-group variance var_y + b^2 var_x - 2 b cov(y, x) where var_y is the usual
  per-unit variance (sample n-1, or p(1-p) for proportions) but var_x and cov(y, x) are *population* (divisor n)
  moments (reverse-engineered from the reference vectors, matching `lin_reg_variance_delta`).

Reported `variance_reduction_rate` = 1 - Var_adj(diff) / Var_unadj(diff) with Var(diff) = var_c/n_c + var_t/n_t (the
spotify-confidence column; it can be slightly negative when the pooled slope does not fit a group).

Units without pre-exposure data: the SQL side includes them with covariate 0 (and counts them in n, so means are
over all exposed units). The adjusted estimator stays unbiased (x = 0 is still a pre-exposure value, independent of
assignment), but those units gain nothing and they change the pooled slope: when 0 is a natural value of x (no
pre-period activity) little is lost, but when observed x lies far from 0 the slope mostly fits "had data vs not" and
the reduction can vanish (see tests/test_stats_variance_reduction.py). A missing-data indicator would need a
second covariate; imputing the observed mean instead of 0 on the SQL side would avoid the dilution.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipelines.stats.ratio import imprecise_expr, statistic_moment_exprs, value_shift_expr, with_shift_columns
from pipelines.stats.sufficient import MEAN, METRIC_TYPES, PROPORTION, RATIO, VARIANCE_NOISE_FLOOR, comparison_key

GBSTATS = "gbstats"
CONFIDENCE = "confidence"
CONVENTIONS = (GBSTATS, CONFIDENCE)
REQUIRED = ("variant", "is_control", "metric_type", "n", "sum", "sum_sq", "cov_sum", "cov_sum_sq", "cross_sum")
RATIO_REQUIRED = ("den_sum", "den_sum_sq", "cov_cross_sum", "den_cov_cross_sum")
# Raw sums pooled to estimate theta: y, y^2, x, x^2, y*x (or m*x for ratios), d, d*x.
_POOL = ("n", "sum", "sum_sq", "cov_sum", "cov_sum_sq", "_yx", "den_sum", "_dx")


def _f(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64)


# ---------------------------------------------------------------------------------------------- moments


def covariance_expr(n: pl.Expr, s_a: pl.Expr, s_b: pl.Expr, s_ab: pl.Expr, ddof: float = 1.0) -> pl.Expr:
    """(s_ab - s_a s_b / n) / (n - ddof): sample (ddof 1) or population (ddof 0) covariance from sums."""
    return (s_ab - s_a * s_b / n) / (n - ddof)


def linearised_covariance_expr(
    n: pl.Expr, s_m: pl.Expr, s_d: pl.Expr, s_x: pl.Expr, s_mx: pl.Expr, s_dx: pl.Expr, ddof: float = 1.0
) -> pl.Expr:
    """cov(L, x) for L = (m - R d) / mu_d: (cov(m, x) - R cov(d, x)) / mu_d (Deng et al. 2018 linearisation)."""
    r = s_m / s_d
    return (covariance_expr(n, s_m, s_x, s_mx, ddof) - r * covariance_expr(n, s_d, s_x, s_dx, ddof)) / (s_d / n)


def pooled_theta_expr(convention: str, prefix: str = "pool_") -> pl.Expr:
    """theta = cov(y, x) / var(x) from pooled sums `<prefix><sum>` (Deng et al. 2013); 0 when x has no variance.

    gbstats: sample moments, proportion variance p(1-p), and theta 0 also when pooled y has no variance.
    confidence: OLS slope with an intercept over all groups (sample moments throughout).
    """
    c = {k: _f(prefix + k) for k in _POOL}
    n = c["n"]
    ratio = pl.col("metric_type") == RATIO
    cov = pl.when(ratio).then(
        linearised_covariance_expr(n, c["sum"], c["den_sum"], c["cov_sum"], c["_yx"], c["_dx"])
    ).otherwise(covariance_expr(n, c["sum"], c["cov_sum"], c["_yx"]))
    var_x = covariance_expr(n, c["cov_sum"], c["cov_sum"], c["cov_sum_sq"])
    var_y = covariance_expr(n, c["sum"], c["sum"], c["sum_sq"])
    x_noise = VARIANCE_NOISE_FLOOR * (c["cov_sum_sq"] / n).abs()
    y_noise = VARIANCE_NOISE_FLOOR * (c["sum_sq"] / n).abs()
    if convention == GBSTATS:
        p_x, p_y = c["cov_sum"] / n, c["sum"] / n
        var_x = pl.when(pl.col("_covariate_binary")).then(p_x * (1.0 - p_x)).otherwise(var_x)
        var_y = pl.when(pl.col("metric_type") == PROPORTION).then(p_y * (1.0 - p_y)).otherwise(var_y)
        degenerate = (var_x <= x_noise) | (var_y <= y_noise)
    else:
        degenerate = var_x <= x_noise
    return pl.when(degenerate | cov.is_null() | ~cov.is_finite()).then(0.0).otherwise(cov / var_x)


def _group_moments(stats: pl.DataFrame, convention: str) -> pl.DataFrame:
    """Per-group unadjusted mean/variance of the statistic, covariate mean/variance and cov(statistic, x), by convention.

    Adds unadjusted_mean, unadjusted_var, covariate_mean, covariate_var, covariance, _yx, _dx, _covariate_binary,
    problem_status and input_problem (null when the group is usable).
    """
    for c in RATIO_REQUIRED:
        if c not in stats.columns:
            stats = stats.with_columns(pl.lit(None, pl.Float64).alias(c))
    stats = with_shift_columns(stats)
    ratio = pl.col("metric_type") == RATIO
    binary = pl.col("metric_type") == PROPORTION
    if "covariate_type" in stats.columns:
        cov_binary = pl.col("covariate_type").fill_null(pl.col("metric_type")) == PROPORTION
    else:
        cov_binary = binary
    stats = stats.with_columns(
        _yx=pl.when(ratio).then(_f("cov_cross_sum")).otherwise(_f("cross_sum")),
        _dx=_f("den_cov_cross_sum"),
        _covariate_binary=cov_binary & (convention == GBSTATS),
    )
    n, s, sx, sxx = _f("n"), _f("sum"), _f("cov_sum"), _f("cov_sum_sq")
    sd = _f("den_sum")
    y = statistic_moment_exprs()  # mean / per-unit variance: sample, p(1-p) or delta-method ratio
    ddof = 1.0 if convention == GBSTATS else 0.0
    px = sx / n
    x_var = pl.when(pl.col("_covariate_binary")).then(px * (1.0 - px)).otherwise(covariance_expr(n, sx, sx, sxx, ddof))
    cov = pl.when(ratio).then(linearised_covariance_expr(n, s, sd, sx, pl.col("_yx"), pl.col("_dx"), ddof)).otherwise(
        covariance_expr(n, s, sx, pl.col("_yx"), ddof)
    )
    needed = [*REQUIRED[3:]]
    ratio_needed = ["den_sum", "den_sum_sq", "cov_cross_sum", "den_cov_cross_sum"]
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (pl.col("metric_type").is_null() | ~pl.col("metric_type").is_in(list(METRIC_TYPES)), "invalid_input",
         pl.lit(f"metric_type must be one of {list(METRIC_TYPES)}")),
        (pl.any_horizontal(pl.col(c).is_null() | ~_f(c).is_finite() for c in needed), "invalid_input",
         pl.lit("missing or non-finite n, sum, sum_sq, cov_sum, cov_sum_sq or cross_sum")),
        (ratio & pl.any_horizontal(pl.col(c).is_null() | ~_f(c).is_finite() for c in ratio_needed), "invalid_input",
         pl.lit("ratio CUPED needs den_sum, den_sum_sq, cov_cross_sum and den_cov_cross_sum")),
        (n < 2, "insufficient_sample", pl.format("need n >= 2 (n={})", pl.col("n"))),
        (ratio & (sd == 0), "invalid_input", pl.lit("denominator sum is 0: ratio undefined")),
        (binary & ((s < 0) | (s > n)), "invalid_input", pl.lit("proportion sum outside [0, n]")),
        ((pl.col("metric_type") != MEAN) & (value_shift_expr() != 0), "invalid_input",
         pl.lit("value_shift applies to mean metrics only")),
    ]  # fmt: skip
    status, reason = pl.when(checks[0][0]).then(pl.lit(checks[0][1])), pl.when(checks[0][0]).then(checks[0][2])
    for cond, code, why in checks[1:]:
        status, reason = status.when(cond).then(pl.lit(code)), reason.when(cond).then(why)
    usable = reason.is_null()
    return stats.with_columns(
        unadjusted_mean=pl.when(usable).then(y["mean"]),
        unadjusted_var=pl.when(usable).then(y["variance"]),
        covariate_mean=pl.when(usable).then(sx / n),
        covariate_var=pl.when(usable).then(x_var),
        covariance=pl.when(usable).then(cov),
        problem_status=status.otherwise(None),
        input_problem=reason.otherwise(None),
        imprecise=imprecise_expr(),
    )


# ---------------------------------------------------------------------------------------------- adjustment


def adjusted_mean_expr(mean: pl.Expr, theta: pl.Expr, x_mean: pl.Expr, x_pooled_mean: pl.Expr) -> pl.Expr:
    """ybar - theta (xbar_group - xbar_pooled) (Deng et al. 2013; spotify-confidence `z-test-linreg` point estimate)."""
    return mean - theta * (x_mean - x_pooled_mean)


def adjusted_variance_expr(var_y: pl.Expr, theta: pl.Expr, var_x: pl.Expr, cov_yx: pl.Expr) -> pl.Expr:
    """Per-unit var_y + theta^2 var_x - 2 theta cov(y, x) (Deng et al. 2013 eq. 4 with a pooled theta)."""
    return var_y + theta**2 * var_x - 2.0 * theta * cov_yx


def cuped_group_moments(
    stats: pl.DataFrame, *, key: Sequence[str] | None = None, convention: str = CONFIDENCE
) -> pl.DataFrame:
    """Per-group adjusted `mean` and `variance` with one slope per comparison key (all its groups pooled).

    With one slope per key the adjusted moments belong to a group, not a pair, so they can be fed to a
    two-sample engine that takes `mean` / `variance` columns. `convention`: `confidence` (spotify-confidence
    `z-test-linreg` moments) or `gbstats` (gbstats 0.8.0 moments; with two groups the key's pool is gbstats' pair).
    Adds mean, variance (adjusted, per unit), unadjusted_mean, unadjusted_variance, theta, input_problem. A
    negative adjusted variance is an input problem under `confidence` (inconsistent sums) and is kept under
    `gbstats`, where proportions give one when the covariate explains the metric (almost) entirely (gbstats 0.8.0
    reports ZERO_NEGATIVE_VARIANCE; `pipelines.stats.comparison` gives status `zero_variance`).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"cuped_group_moments: unknown convention {convention!r}; available: {CONVENTIONS}")
    key = list(key) if key is not None else comparison_key(stats)
    groups = _group_moments(stats, convention)
    usable = groups.filter(pl.col("input_problem").is_null())
    pooled = usable.group_by(key).agg(
        pl.first("metric_type").alias("_mt"),
        pl.first("_covariate_binary"),
        **{f"pool_{c}": _f(c).sum() for c in _POOL},
    )
    pooled = pooled.rename({"_mt": "metric_type"})
    pooled = pooled.with_columns(theta=pooled_theta_expr(convention), _x_pool=_f("pool_cov_sum") / _f("pool_n"))
    out = groups.join(pooled.select(*key, "theta", "_x_pool"), on=key, how="left", nulls_equal=True)
    usable_row = pl.col("input_problem").is_null()
    var = adjusted_variance_expr(pl.col("unadjusted_var"), pl.col("theta"), pl.col("covariate_var"), pl.col("covariance"))
    noise = VARIANCE_NOISE_FLOOR * (pl.col("unadjusted_var") + pl.col("theta") ** 2 * pl.col("covariate_var")).abs()
    return out.with_columns(
        mean=pl.when(usable_row).then(
            adjusted_mean_expr(pl.col("unadjusted_mean"), pl.col("theta"), pl.col("covariate_mean"), pl.col("_x_pool"))
        ),
        variance=pl.when(usable_row).then(pl.when(var.abs() <= noise).then(0.0).otherwise(var)),
        unadjusted_variance=pl.col("unadjusted_var"),
    ).with_columns(
        # Under the confidence moments a negative adjusted variance needs sums no data can give; gbstats' mix of
        # p(1-p) and sample covariances gives one on near-collinear proportions, kept for the test to refuse.
        input_problem=pl.when(usable_row & (pl.col("variance") < 0) & pl.lit(convention == CONFIDENCE))
        .then(pl.lit("inconsistent sums: negative adjusted variance"))
        .otherwise(pl.col("input_problem")),
    ).drop("_x_pool", "_yx", "_dx", "_covariate_binary", "unadjusted_var", "covariate_var", "covariance", "problem_status")

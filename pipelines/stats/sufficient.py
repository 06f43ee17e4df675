"""Per-group mean and variance from sufficient statistics (n, sum, sum_sq)."""

from __future__ import annotations

import polars as pl

PROPORTION = "proportion"
MEAN = "mean"
METRIC_TYPES = (MEAN, PROPORTION)


def mean_expr(n: str = "n", total: str = "sum") -> pl.Expr:
    """Sample mean sum / n; null when n <= 0."""
    n_ = pl.col(n).cast(pl.Float64)
    return pl.when(n_ > 0).then(pl.col(total).cast(pl.Float64) / n_).otherwise(None)


def variance_expr(
    n: str = "n", total: str = "sum", sum_sq: str = "sum_sq", metric_type: str = "metric_type"
) -> pl.Expr:
    """Per-unit variance: p(1-p) for proportions, sample variance (sum_sq - sum^2/n)/(n-1) for means (spotify-confidence convention)."""
    n_ = pl.col(n).cast(pl.Float64)
    s = pl.col(total).cast(pl.Float64)
    ss = pl.col(sum_sq).cast(pl.Float64)
    p = s / n_
    binary = p * (1.0 - p)
    sample = (ss - s * s / n_) / (n_ - 1.0)
    return (
        pl.when(pl.col(metric_type) == PROPORTION)
        .then(pl.when(n_ > 0).then(binary).otherwise(None))
        .otherwise(pl.when(n_ > 1).then(sample).otherwise(None))
    )


def input_problem_expr(
    n: str = "n", total: str = "sum", sum_sq: str = "sum_sq", metric_type: str = "metric_type"
) -> pl.Expr:
    """Short description of inconsistent sufficient statistics in a row, null when the row is consistent."""
    n_ = pl.col(n).cast(pl.Float64)
    s = pl.col(total).cast(pl.Float64)
    ss = pl.col(sum_sq).cast(pl.Float64)
    # Cauchy-Schwarz: sum^2 <= n * sum_sq; allow rounding noise relative to the magnitude.
    cs_slack = 1e-9 * (s * s).abs() + 1e-12
    return (
        pl.when(pl.col(n).is_null() | s.is_null() | ss.is_null() | pl.col(metric_type).is_null())
        .then(pl.lit("missing n, sum, sum_sq or metric_type"))
        .when(~pl.col(metric_type).is_in(list(METRIC_TYPES)))
        .then(pl.lit("metric_type must be 'mean' or 'proportion'"))
        .when(n_ < 0)
        .then(pl.lit("negative n"))
        .when(~s.is_finite() | ~ss.is_finite())
        .then(pl.lit("non-finite sum or sum_sq"))
        .when((pl.col(metric_type) == PROPORTION) & ((s < 0) | (s > n_)))
        .then(pl.lit("proportion sum outside [0, n]"))
        .when((n_ > 0) & (s * s - n_ * ss > cs_slack))
        .then(pl.lit("sum_sq < sum^2/n (negative variance)"))
        .otherwise(None)
    )


# sum_sq - sum^2/n cancels catastrophically: below this share of sum_sq/n a variance is rounding noise.
VARIANCE_NOISE_FLOOR = 1e-12


def group_moments(stats: pl.DataFrame) -> pl.DataFrame:
    """Add `mean`, `variance` (0 when within rounding noise of 0) and `input_problem` columns."""
    var = variance_expr()
    noise = VARIANCE_NOISE_FLOOR * (pl.col("sum_sq").cast(pl.Float64) / pl.col("n").cast(pl.Float64)).abs()
    return stats.with_columns(
        mean=mean_expr(),
        variance=pl.when(var <= noise).then(0.0).otherwise(var),
        input_problem=input_problem_expr(),
    )

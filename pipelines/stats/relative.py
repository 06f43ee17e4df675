"""Relative treatment effects (mean_t - mean_c) / mean_c: the formulas `pipelines.stats.comparison` uses for its
`relative_method` conventions, vectorised over NumPy columns.

- `fieller` (the engine's default): the Fieller interval of the ratio mean_t / mean_c, minus 1 (`fieller_interval`);
- `delta` (GrowthBook gbstats 0.8.0 `frequentist_variance` / `variance_of_ratios`, the delta method of
  Deng, Knoblich & Lu 2018, section 3.3, with independent groups so the covariance term is 0):
  Var = var_t / (mu_c^2 n_t) + var_c mu_t^2 / (mu_c^4 n_c), with mu the *unadjusted* group means; the estimate is
  (mean_t - mean_c) / mu_c with mean_* the (possibly regression-adjusted) means. CI rel -/+ q sqrt(Var), p-value
  from rel / sqrt(Var) with the same degrees of freedom as the absolute test;
- `simple` (spotify-confidence 4.1.0): the absolute effect and its CI bounds divided by mean_control, the p-value
  of the absolute test (`pipelines.stats.two_sample.relative_interval`).
"""

from __future__ import annotations

import numpy as np

FIELLER = "fieller"
DELTA = "delta"
SIMPLE = "simple"
RELATIVE_METHODS = (FIELLER, DELTA, SIMPLE)


def relative_estimate(mean_c: np.ndarray, mean_t: np.ndarray, base_c: np.ndarray | None = None) -> np.ndarray:
    """(mean_t - mean_c) / base_c, base_c defaulting to mean_c (gbstats `frequentist_diff`: base = unadjusted control mean)."""
    base = mean_c if base_c is None else base_c
    return (mean_t - mean_c) / base


def delta_relative_variance(
    mean_c: np.ndarray, var_c: np.ndarray, n_c: np.ndarray, mean_t: np.ndarray, var_t: np.ndarray, n_t: np.ndarray
) -> np.ndarray:
    """Var of mean_t/mean_c - 1 by the delta method: var_t/(mu_c^2 n_t) + var_c mu_t^2/(mu_c^4 n_c).

    Deng et al. (2018) eq. for a ratio of independent means; gbstats 0.8.0 `frequentist_variance(relative=True)`.
    `var_*` are per-unit variances, `mean_*` the unadjusted means.
    """
    return var_t / (mean_c**2 * n_t) + var_c * mean_t**2 / (mean_c**4 * n_c)


def fieller_interval(
    mean_c: np.ndarray, se_c: np.ndarray, mean_t: np.ndarray, se_t: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fieller (1954) interval of the ratio mean_t / mean_c of independent means: every r with
    (mean_t - r mean_c)^2 <= q^2 (se_t^2 + r^2 se_c^2). Its ends solve a quadratic; the set is bounded exactly when
    the control mean is significantly non-zero (mean_c^2 > q^2 se_c^2), else (-inf, inf). At r = 1 the statistic is
    the two-sample test of the difference, and at r = 1 -/+ m the non-inferiority test of a relative margin m
    (Hauschke, Kieser & Hothorn 1999), so the interval excludes those values exactly when the tests reject."""
    a = mean_c * mean_c - q * q * se_c * se_c
    b = mean_t * mean_c
    disc = q * q * (se_c * se_c * mean_t * mean_t + se_t * se_t * a)
    root = np.sqrt(np.maximum(disc, 0.0))
    bounded = a > 0
    with np.errstate(all="ignore"):
        lo = np.where(bounded, (b - root) / a, -np.inf)
        hi = np.where(bounded, (b + root) / a, np.inf)
    return lo, hi

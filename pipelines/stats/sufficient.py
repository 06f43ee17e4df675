"""Per-group mean and variance from sufficient statistics (n, sum, sum_sq), on whole NumPy columns."""

from __future__ import annotations

import numpy as np
import polars as pl

MEAN = "mean"
PROPORTION = "proportion"
RATIO = "ratio"  # sum of the per-unit value over sum of a per-unit denominator (see `ratio`)
METRIC_TYPES = (MEAN, PROPORTION, RATIO)

# The columns that identify one comparison of a sufficient-statistics frame (segment when present).
BASE_KEY = ("experiment_id", "metric_id", "as_of_date")
SEGMENT = "segment"

# sum_sq - sum^2/n cancels catastrophically: below this share of sum_sq/n a variance is rounding noise (float64 sums
# of up to ~1e7 values keep about this relative precision); a variance more negative than that is impossible.
VARIANCE_NOISE_FLOOR = 1e-10


def comparison_key(stats: pl.DataFrame) -> list[str]:
    """experiment_id, metric_id, as_of_date [, segment]."""
    return [*BASE_KEY, *([SEGMENT] if SEGMENT in stats.columns else [])]


def moments(n: np.ndarray, total: np.ndarray, sum_sq: np.ndarray, binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-unit variance: p(1-p) for proportions, (sum_sq - sum^2/n)/(n-1) for means (spotify-confidence)."""
    binary = np.asarray(binary, bool)
    any_binary = bool(binary.any())
    all_binary = any_binary and bool(binary.all())
    with np.errstate(all="ignore"):
        mean = total / n
        if all_binary:  # one formula for every row: skip the other
            variance = mean * (1.0 - mean)
        else:
            variance = (sum_sq - total * mean) / (n - 1.0)
            if any_binary:
                variance = np.where(binary, mean * (1.0 - mean), variance)
        noise = np.abs(variance) <= VARIANCE_NOISE_FLOOR * np.abs(sum_sq / n)
    if noise.any():
        variance = np.where(noise, 0.0, variance)
    return mean, variance


def _raw_variance(n: np.ndarray, total: np.ndarray, sum_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum_sq - sum^2/n) / (n - 1) as the sums give it, and its rounding-noise floor."""
    with np.errstate(all="ignore"):
        return (sum_sq - total * (total / n)) / (n - 1.0), VARIANCE_NOISE_FLOOR * np.abs(sum_sq / n)


def impossible(n: np.ndarray, total: np.ndarray, sum_sq: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """Sufficient statistics no real data can give: missing, negative n, a proportion outside [0, n], or
    sum^2 > n sum_sq beyond the rounding noise (a negative variance, by Cauchy-Schwarz). The noise floor is the
    one `moments` rounds to zero, so every variance is either noise, impossible or real."""
    binary = np.asarray(binary, bool)
    variance, floor = _raw_variance(n, total, sum_sq)
    with np.errstate(all="ignore"):
        bad = ~(np.isfinite(n) & np.isfinite(total) & np.isfinite(sum_sq)) | (n < 0)
        bad |= (n > 1) & ~binary & (variance < -floor)
        if binary.any():  # proportions only
            bad |= binary & ((total < 0) | (total > n))
    return bad


def variance_lost(n: np.ndarray, total: np.ndarray, sum_sq: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """Mean rows whose variance the float64 sums cannot resolve: not exactly zero, yet within the rounding noise
    (constant values that do not sum exactly, or values whose mean is huge against their spread, e.g. mean 1e12
    with sd 1e5): their variance is unknown, not zero."""
    variance, floor = _raw_variance(n, total, sum_sq)
    with np.errstate(all="ignore"):
        return ~np.asarray(binary, bool) & (n > 1) & (variance != 0) & (np.abs(variance) <= floor)

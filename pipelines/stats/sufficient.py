"""Per-group mean and variance from sufficient statistics (n, sum, sum_sq), on whole NumPy columns."""

from __future__ import annotations

import numpy as np

PROPORTION = "proportion"
MEAN = "mean"
METRIC_TYPES = (MEAN, PROPORTION)

# sum_sq - sum^2/n cancels catastrophically: below this share of sum_sq/n a variance is rounding noise.
VARIANCE_NOISE_FLOOR = 1e-12


def moments(n: np.ndarray, total: np.ndarray, sum_sq: np.ndarray, binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-unit variance: p(1-p) for proportions, (sum_sq - sum^2/n)/(n-1) for means (spotify-confidence)."""
    with np.errstate(all="ignore"):
        mean = total / n
        sample = (sum_sq - total * mean) / (n - 1.0)
        variance = np.where(binary, mean * (1.0 - mean), sample)
        noise = np.abs(variance) <= VARIANCE_NOISE_FLOOR * np.abs(sum_sq / n)
    return mean, np.where(noise, 0.0, variance)


def impossible(n: np.ndarray, total: np.ndarray, sum_sq: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """Sufficient statistics no real data can give: missing, negative n, a proportion outside [0, n], or
    sum^2 > n sum_sq (a negative variance, by Cauchy-Schwarz; rounding noise allowed)."""
    with np.errstate(all="ignore"):
        slack = 1e-9 * total * total + 1e-12
        return (
            ~np.isfinite(n) | ~np.isfinite(total) | ~np.isfinite(sum_sq) | (n < 0)
            | (binary & ((total < 0) | (total > n)))
            | ((n > 0) & (total * total - n * sum_sq > slack))
        )  # fmt: skip

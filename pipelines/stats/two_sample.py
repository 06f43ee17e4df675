"""Two-sample z-test and Welch t-test for a difference of means, vectorised over numpy arrays.

Conventions follow spotify-confidence 4.1.0 (statsmodels `_zconfint_generic` / `_tconfint_generic`):
two-sided p-value 2 * sf(|d| / se); CI d -/+ q_{1-alpha/2} * se with se = sqrt(var_c/n_c + var_t/n_t);
the t-test uses Welch-Satterthwaite degrees of freedom for the p-value and every CI.
"""

from __future__ import annotations

import numpy as np
from scipy import special

Z = "z"
T = "t"
METHOD_ALIASES = {"z": Z, "z-test": Z, "ztest": Z, "t": T, "t-test": T, "ttest": T, "welch": T}


def standard_error(var_c: np.ndarray, n_c: np.ndarray, var_t: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    """Unpooled standard error sqrt(var_c/n_c + var_t/n_t)."""
    return np.sqrt(var_c / n_c + var_t / n_t)


def welch_df(var_c: np.ndarray, n_c: np.ndarray, var_t: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom (Welch 1947)."""
    a = var_c / n_c
    b = var_t / n_t
    return (a + b) ** 2 / (a**2 / (n_c - 1.0) + b**2 / (n_t - 1.0))


def critical_value(alpha: np.ndarray, df: np.ndarray, is_t: np.ndarray) -> np.ndarray:
    """Two-sided quantile q_{1-alpha/2}: standard normal for z rows, Student t(df) for t rows."""
    alpha, df, is_t = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(df, float), np.asarray(is_t, bool))
    if alpha.size and alpha.min() == alpha.max():  # one alpha for every row: one quantile
        q = np.full(alpha.shape, special.ndtri(1.0 - alpha.flat[0] / 2.0))
    else:
        q = special.ndtri(1.0 - alpha / 2.0)
    if is_t.any():
        q[is_t] = special.stdtrit(df[is_t], 1.0 - alpha[is_t] / 2.0)
    return q


def p_value_two_sided(stat: np.ndarray, df: np.ndarray, is_t: np.ndarray) -> np.ndarray:
    """Two-sided p-value 2 * sf(|stat|): normal for z rows, Student t(df) for t rows."""
    stat, df, is_t = np.broadcast_arrays(np.asarray(stat, float), np.asarray(df, float), np.asarray(is_t, bool))
    p = 2.0 * special.ndtr(-np.abs(stat))
    if is_t.any():
        p = p.copy()
        p[is_t] = 2.0 * special.stdtr(df[is_t], -np.abs(stat[is_t]))
    return p


def relative_interval(
    estimate: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    mean_control: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative effect (mean_t - mean_c) / mean_c with the absolute interval divided by the control mean
    (spotify-confidence's convention; the delta-method interval is in `relative`)."""
    rel = estimate / mean_control
    lo = lower / mean_control
    hi = upper / mean_control
    # A negative control mean flips the bounds; keep lower <= upper.
    if not (np.asarray(mean_control) < 0).any():
        return rel, lo, hi
    return rel, np.fmin(lo, hi), np.fmax(lo, hi)

"""Powered effect (minimum detectable effect at the current sample) of a two-sided z-test.

Default (`closed_form`): the effect x that solves the power equation exactly; for proportions the
treatment variance is taken at p + x, x^2 n_t = (z_a + z_b)^2 (var_c n_t/n_c + (p+x)(1-p-x)), a quadratic.
Convention `confidence` reproduces spotify-confidence's discrete search (below) for agreement with it.

spotify-confidence 4.1.0 convention (`z_test_computer.powered_effect`), z_a = z_{1-adjusted_alpha/2}, z_b = z_power:
- continuous: (z_a + z_b) * sqrt(var_c/n_c + var_c/n_t) (control variance for both groups);
- binary: the effect x whose required treatment size ceil(((z_a+z_b)/x)^2 (var_c/kappa + (p+x)(1-p-x))),
  kappa = n_c/n_t, matches the current sample, found by the library's bounded-Brent local search
  (replicated exactly, vectorised) with its grid-search fallback.
The library gives no powered effect for the t-test.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from pipelines.stats.bounded_minimize import minimize_bounded

CLOSED_FORM = "closed_form"
CONFIDENCE = "confidence"
POWERED_EFFECT_CONVENTIONS = (CLOSED_FORM, CONFIDENCE)

_MIN_EFFECT = 10e-9  # library's lower search bound
_XATOL = 10e-14
_MAXITER = 50
_MAX_INTERVALS = 100
_GOODNESS = 1.0


def z_quantiles(adjusted_alpha: np.ndarray, power: float | np.ndarray) -> np.ndarray:
    """z_{1-adjusted_alpha/2} + z_{power} for a two-sided test."""
    return special.ndtri(1.0 - np.asarray(adjusted_alpha, float) / 2.0) + special.ndtri(power)


def powered_effect_continuous(
    z_sum: np.ndarray, var_c: np.ndarray, n_c: np.ndarray, n_t: np.ndarray
) -> np.ndarray:
    """(z_a + z_b) * sqrt(var_c/n_c + var_c/n_t), spotify-confidence z-test (hypothetical treatment variance = control's)."""
    return z_sum * np.sqrt(var_c / n_c + var_c / n_t)


def powered_effect_binary_closed_form(
    z_sum: np.ndarray, p_c: np.ndarray, var_c: np.ndarray, n_c: np.ndarray, n_t: np.ndarray, n_units: np.ndarray
) -> np.ndarray:
    """Positive root of (n_t + z^2) x^2 - z^2 (1 - 2p) x - z^2 (var_c n_t/n_c + p(1-p)) = 0 (z = z_a + z_b):
    the power equation of a two-proportion z-test with treatment variance (p+x)(1-p-x). `n_units` is unused."""
    z2 = z_sum * z_sum
    a = n_t + z2
    b = -z2 * (1.0 - 2.0 * p_c)
    c = -z2 * (var_c * n_t / n_c + p_c * (1.0 - p_c))
    return (-b + np.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)


def _binary_objective(x, p, var_c, kappa, prop, n_units, z_sum):
    """Library cost (N - n2 (1+kappa)/prop)^2 with n2 = ceil((z/x)^2 (var_c/kappa + (p+x)(1-(p+x))))."""
    treatment_var = (p + x) * (1 - (p + x))
    n2 = np.ceil(np.power(z_sum / np.abs(x), 2) * (var_c / kappa + treatment_var))
    return np.power(n_units - ((n2 + n2 * kappa) / prop), 2)


def _interval_of_node(node: int, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of breadth-first node `node` of the library's interval-halving queue (children 2i+1, 2i+2)."""
    path = []
    while node > 0:
        path.append(node % 2 == 1)  # odd: left child
        node = (node - 1) // 2
    a, b = lo.copy(), hi.copy()
    for left in reversed(path):
        mid = (a + b) / 2
        a, b = (a, mid) if left else (mid, b)
    return a, b


def _grid_search(p, var_c, kappa, prop, n_units, z_sum, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Library fallback `_search_MDE_binary`: 2000-point grid, then a 10000-point grid below the best point."""
    n = p.shape[0]
    x_out, f_out = np.empty(n), np.empty(n)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        args = tuple(v[sl, None] for v in (p, var_c, kappa, prop, n_units, z_sum))
        rows = np.arange(min(chunk, n - s))
        cand = np.linspace(_MIN_EFFECT, 1 - p[sl], num=2000, axis=1)
        test = _binary_objective(cand, *args)
        ties = test == test.min(axis=1, keepdims=True)
        k = ties.sum(axis=1)
        rank = np.where(k == 1, 0, np.ceil(k / 2).astype(int))
        pick = np.argmax(ties & (np.cumsum(ties, axis=1) - 1 == rank[:, None]), axis=1)
        low = np.where(pick == 0, _MIN_EFFECT, cand[rows, np.maximum(pick - 1, 0)])
        cand = np.linspace(low, cand[rows, pick], num=10000, axis=1)
        test = _binary_objective(cand, *args)
        best = np.argmin(test, axis=1)
        x_out[sl], f_out[sl] = cand[rows, best], test[rows, best]
    return x_out, f_out


def powered_effect_binary(
    z_sum: np.ndarray,
    p_c: np.ndarray,
    var_c: np.ndarray,
    n_c: np.ndarray,
    n_t: np.ndarray,
    n_units: np.ndarray,
) -> np.ndarray:
    """Binary-metric powered effect by the library's local search (`_search_MDE_binary_local_search`), vectorised."""
    p_c, var_c, n_c, n_t, n_units, z_sum = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (p_c, var_c, n_c, n_t, n_units, z_sum))
    )
    kappa = n_c / n_t
    prop = (n_c + n_t) / n_units
    max_val = 1 - p_c
    min_val = np.minimum(_MIN_EFFECT, max_val)
    out = np.full(p_c.shape, np.nan)
    corner = min_val == max_val  # library returns the lower bound when the interval is empty
    out[corner] = min_val[corner]

    todo = np.flatnonzero(~corner)
    best_x = np.full(todo.size, np.nan)
    best_f = np.full(todo.size, np.inf)
    args = [v[todo] for v in (p_c, var_c, kappa, prop, n_units, z_sum)]
    lo_root, hi_root = min_val[todo], max_val[todo]
    open_ = np.arange(todo.size)
    with np.errstate(all="ignore"):
        for node in range(_MAX_INTERVALS):
            if not open_.size:
                break
            a, b = _interval_of_node(node, lo_root[open_], hi_root[open_])
            sub = [v[open_] for v in args]
            x, f = minimize_bounded(
                lambda xx, ii: _binary_objective(xx, *(v[ii] for v in sub)), a, b, xatol=_XATOL, maxiter=_MAXITER
            )
            improved = f < best_f[open_]
            best_x[open_[improved]] = x[improved]
            best_f[open_[improved]] = f[improved]
            open_ = open_[best_f[open_] > _GOODNESS]
        if open_.size:
            gx, gf = _grid_search(*(v[open_] for v in args))
            use = gf < best_f[open_]
            best_x[open_[use]] = gx[use]
    out[todo] = best_x
    return out

"""Powered effect (minimum detectable effect at the current sample) and required sample size of a z-test, vectorised,
and `required_sample_size`, the planning function (scalars or arrays).

z_a is the quantile of the (adjusted) alpha of the row's test: z_{1-alpha/2} two-sided, z_{1-alpha} one-sided
(spotify-confidence: ADJUSTED_ALPHA_POWER_SAMPLE_SIZE / (2 if two-sided else 1)); z_b = z_{adjusted power}.

Default (`closed_form`): the effect x that solves the power equation exactly; for proportions the
treatment variance is taken at p + x, x^2 n_t = (z_a + z_b)^2 (var_c n_t/n_c + (p+x)(1-p-x)), a quadratic.
Convention `confidence` reproduces spotify-confidence's discrete search (below) for agreement with it.

spotify-confidence 4.1.0 convention (`z_test_computer.powered_effect`), z_a = z_{1-adjusted_alpha/2}, z_b = z_power:
- continuous: (z_a + z_b) * sqrt(var_c/n_c + var_c/n_t) (control variance for both groups);
- binary: the effect x whose required treatment size ceil(((z_a+z_b)/x)^2 (var_c/kappa + (p+x)(1-p-x))),
  kappa = n_c/n_t, matches the current sample, found by the library's bounded-Brent local search
  (replicated exactly, vectorised) with its grid-search fallback.
The library gives no powered effect for the t-test. Non-inferiority rows of binary metrics use the continuous
formula with the control variance for both groups (the library's `non_inferiority` branch).

Required sample size (`required_sample_size_rows`, the library's `required_sample_size` with
proportion_of_total 1): n_t = ceil(((z_a + z_b)/|effect|)^2 (var_c/kappa + var_t)), kappa = n_c/n_t, total
ceil(n_t (1 + kappa)); effect = the signed MDE, or the margin on non-inferiority rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from pipelines.stats.bounded_minimize import minimize_bounded

CLOSED_FORM = "closed_form"
CONFIDENCE = "confidence"
POWERED_EFFECT_CONVENTIONS = (CLOSED_FORM, CONFIDENCE)

_MIN_EFFECT = 10e-9  # library's lower search bound
_XATOL = 10e-14
_MAXITER = 50
_MAX_INTERVALS = 100
_GOODNESS = 1.0


def powered_effect_continuous(
    z_sum: np.ndarray, var_c: np.ndarray, n_c: np.ndarray, n_t: np.ndarray
) -> np.ndarray:
    """(z_a + z_b) * sqrt(var_c/n_c + var_c/n_t), spotify-confidence z-test (hypothetical treatment variance = control's)."""
    return z_sum * np.sqrt(var_c / n_c + var_c / n_t)


def powered_effect_binary_closed_form(
    z_sum: np.ndarray,
    p_c: np.ndarray,
    var_c: np.ndarray,
    n_c: np.ndarray,
    n_t: np.ndarray,
    n_units: np.ndarray,
    sign: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Positive root of (n_t + z^2) x^2 - s z^2 (1 - 2p) x - z^2 (var_c n_t/n_c + p(1-p)) = 0 (z = z_a + z_b):
    the power equation of a two-proportion z-test with treatment variance (p+sx)(1-p-sx); s = -1 for a metric
    whose preferred direction is `decrease` (the effect is a drop), else +1. `n_units` is unused."""
    # x = (h + sqrt(h^2 + 4 a g)) / (2 a) with h = -b = s z^2 (1 - 2p), g = -c; in place (whole columns).
    z2 = np.multiply(z_sum, z_sum)
    a = np.add(n_t, z2)
    h = np.multiply(p_c, -2.0)
    h += 1.0
    h *= z2
    if np.ndim(sign) or sign != 1.0:
        h *= sign
    g = np.divide(n_t, n_c)
    g *= var_c
    g += p_c * (1.0 - p_c)
    g *= z2
    g *= a
    g *= 4.0
    root = np.multiply(h, h)
    root += g
    np.sqrt(root, out=root)
    root += h
    a *= 2.0
    root /= a
    return root


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


# ------------------------------------------------------------------------------------------- required sample size


def required_sample_size_rows(
    z_sum: np.ndarray,
    effect: np.ndarray,
    control_mean: np.ndarray,
    control_var: np.ndarray,
    kappa: np.ndarray,
    binary_treatment_var: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """spotify-confidence 4.1.0 `required_sample_size` with proportion_of_total 1, vectorised.

    n_t = ceil(((z_a + z_b) / |effect|)^2 (var_c / kappa + var_t)), kappa = n_c / n_t; units over both groups
    ceil(n_t (1 + kappa)). var_t = (p + effect)(1 - p - effect) on `binary_treatment_var` rows (proportions tested
    for superiority), else var_c (continuous metrics, and non-inferiority tests, which assume equal means).
    Returns (units over both groups, treatment-group units)."""
    treatment_var = np.where(
        binary_treatment_var, (control_mean + effect) * (1 - (control_mean + effect)), control_var
    )
    n2 = np.ceil(np.power(z_sum / np.abs(effect), 2) * (control_var / kappa + treatment_var))
    return np.ceil(n2 + n2 * kappa), n2


@dataclass(frozen=True)
class SampleSizePlan:
    """Answer of `required_sample_size` (arrays broadcast from the inputs; 0-d for scalar inputs)."""

    n_control: np.ndarray  # units in the control group
    n_treatment: np.ndarray  # units in EACH treatment group
    total: np.ndarray  # n_control + treatments * n_treatment
    comparison_total: np.ndarray  # ceil(n_t (1 + kappa)): one treatment-vs-control comparison (spotify-confidence)
    effect: np.ndarray  # absolute effect powered for (signed: negative for `decrease`)
    adjusted_alpha: np.ndarray  # alpha of one test after the correction (one-sided level for one-sided tests)
    adjusted_power: np.ndarray  # power after the spot-1 guardrail correction
    alternative: str


_ALTERNATIVES = {
    "two-sided": 0, "two_sided": 0, "greater": 1, "increase": 1, "larger": 1, "less": -1, "decrease": -1, "smaller": -1,
}  # fmt: skip


def required_sample_size(
    baseline_mean: float | np.ndarray,
    baseline_variance: float | np.ndarray | None = None,
    mde: float | np.ndarray = 0.01,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
    treatments: int = 1,
    success_metrics: int = 1,
    guardrail_metrics: int = 0,
    non_inferiority: bool = False,
    correction: str = "spot-1-bonferroni",
    kappa: float = 1.0,
) -> SampleSizePlan:
    """Units needed for a fixed-horizon z-test of one metric to reach `power` at effect `mde`.

    Args:
        baseline_mean: control mean of the metric (a proportion when `baseline_variance` is None).
        baseline_variance: per-unit variance of the metric; None: a proportion, variance p (1 - p).
        mde: minimum detectable effect (> 0), relative to the baseline mean when `relative` (0.02 = 2%), else on
            the metric's scale. With `non_inferiority` it is the non-inferiority margin (the margin plays the MDE
            role, as in spotify-confidence).
        alpha: family-wise significance level of the experiment.
        power: wanted power (before the spot-1 guardrail correction).
        alternative: 'two-sided', or one-sided 'increase'/'greater' or 'decrease'/'less'. Non-inferiority tests are
            one-sided: give the preferred direction.
        treatments: number of treatment groups (each compared with the control).
        success_metrics, guardrail_metrics: number of success metrics and of guardrail (non-inferiority) metrics
            of the experiment, for the correction.
        non_inferiority: plan the metric as a guardrail tested for non-inferiority with margin `mde`.
        correction: 'risk-aware' (success metrics at alpha / (treatments x max(1, success_metrics)), guardrails
            at alpha / treatments; power raised to 1 - (1 - power) / (guardrail_metrics + 1)), 'spot-1-bonferroni'
            (as risk-aware, but guardrails at the success metrics' alpha), 'bonferroni' (alpha / (treatments x all
            metrics)), 'holm' and 'benjamini-hochberg' (planned conservatively as Bonferroni) or 'none'.
        kappa: allocation n_control / n_treatment (1: equal groups).

    Returns:
        SampleSizePlan: n_control, n_treatment (per treatment group), total over all groups, and the adjusted
        alpha and power used. Formula (spotify-confidence 4.1.0 z-test): n_t = ceil((z_a + z_b)^2 / delta^2
        (var_c / kappa + var_t)), z_a = z_{1-alpha'/2} two-sided or z_{1-alpha'} one-sided, var_t = (p + delta)
        (1 - p - delta) for a proportion tested for superiority, else var_c; n_control = ceil(kappa n_t).

    Raises:
        ValueError: on an impossible input (mde <= 0, proportion outside (0, 1), alpha/power outside (0, 1), ...).
    """
    from pipelines.stats.multiple_testing import (
        NONE, RISK_AWARE, RISK_AWARE_CORRECTIONS, SPOT_1_BONFERRONI, normalise_correction, power_for_planning,
    )  # fmt: skip

    side = _ALTERNATIVES.get(str(alternative).lower())
    if side is None:
        raise ValueError(f"alternative must be one of {sorted(_ALTERNATIVES)}, got {alternative!r}")
    if non_inferiority and side == 0:
        raise ValueError("a non-inferiority test is one-sided: give alternative 'increase' or 'decrease'")
    correction = normalise_correction(correction)
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie in (0, 1), got {value}")
    counts = (("treatments", treatments), ("success_metrics", success_metrics), ("guardrail_metrics", guardrail_metrics))
    for name, value in counts:
        if int(value) != value or value < (1 if name == "treatments" else 0):
            raise ValueError(f"{name} must be a whole number >= {1 if name == 'treatments' else 0}, got {value}")
    if success_metrics + guardrail_metrics < 1:
        raise ValueError("need at least one success or guardrail metric")
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    mean = np.asarray(baseline_mean, float)
    delta_in = np.asarray(mde, float)
    binary = baseline_variance is None
    if binary:
        if not np.all((mean > 0) & (mean < 1)):
            raise ValueError("a proportion baseline_mean must lie in (0, 1)")
        variance = mean * (1 - mean)
    else:
        variance = np.asarray(baseline_variance, float)
        if not np.all(np.isfinite(variance) & (variance > 0)):
            raise ValueError("baseline_variance must be finite and > 0")
    if not np.all(np.isfinite(delta_in) & (delta_in > 0)):
        raise ValueError("mde must be finite and > 0")
    if relative and not np.all(np.isfinite(mean) & (mean != 0)):
        raise ValueError("a relative mde needs a finite, non-zero baseline_mean")
    delta = (delta_in * np.abs(mean) if relative else delta_in) * (side if side else 1)
    if binary and not non_inferiority and not np.all((mean + delta > 0) & (mean + delta < 1)):
        raise ValueError("baseline proportion + mde must stay inside (0, 1)")

    if correction == NONE:
        m = 1
    elif correction == RISK_AWARE and non_inferiority:  # a guardrail's alpha is shared by the treatments only
        m = treatments
    elif correction in RISK_AWARE_CORRECTIONS:
        m = treatments * max(1, success_metrics)
    else:  # bonferroni, and holm / benjamini-hochberg planned as their first (Bonferroni) step
        m = treatments * (success_metrics + guardrail_metrics)
    adjusted_alpha = alpha / m
    adjusted_power = power
    if correction in RISK_AWARE_CORRECTIONS:
        adjusted_power = float(power_for_planning(power, guardrail_metrics, success_metrics))
    z_alpha = special.ndtri(1.0 - adjusted_alpha / (2.0 if side == 0 else 1.0))
    z_sum = z_alpha + special.ndtri(adjusted_power)
    comparison_total, n_t = required_sample_size_rows(
        z_sum, delta, mean, variance, np.asarray(kappa, float), np.asarray(binary and not non_inferiority)
    )
    n_c = np.ceil(kappa * n_t)
    return SampleSizePlan(
        n_control=n_c,
        n_treatment=n_t,
        total=n_c + treatments * n_t,
        comparison_total=comparison_total,
        effect=delta,
        adjusted_alpha=np.asarray(adjusted_alpha),
        adjusted_power=np.asarray(adjusted_power),
        alternative={0: "two-sided", 1: "greater", -1: "less"}[side],
    )


# ------------------------------------------------------------------------------------- sequential designs' sample size

PLANNED_LOOKS = 28  # daily looks a group-sequential design is planned for when the spec gives no end date
_POWER_GRID = 401  # odd: Simpson's rule


def _simpson(grid: np.ndarray) -> np.ndarray:
    """Simpson's rule weights on an evenly spaced grid of odd length."""
    w = np.ones(grid.size)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w * (grid[1] - grid[0]) / 3.0


def _upper_crossing(bounds: np.ndarray, fractions: np.ndarray, drift: float) -> float:
    """P(Z_k >= bounds_k at some look) for Z_k = S(t_k) / sqrt(t_k), S a Brownian motion with drift `drift` per
    unit information (E Z at t = 1 is `drift`), by the recursive integration of Jennison & Turnbull (2000, ch. 19)
    on a grid of S below the bound (the lower bound is not a stopping rule here: the power of the tested side)."""
    t_old, s_grid, density, crossed = 0.0, None, None, 0.0
    for b, t in zip(bounds, fractions):
        sd = math.sqrt(t - t_old)
        upper = b * math.sqrt(t)
        if density is None:  # first look: S(t_1) ~ N(drift t_1, t_1)
            crossed += float(special.ndtr((drift * t - upper) / sd))
            s_grid = np.linspace(drift * t - 8.5 * sd, min(upper, drift * t + 8.5 * sd), _POWER_GRID)
            density = np.exp(-0.5 * ((s_grid - drift * t) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        else:
            weights = density * _simpson(s_grid)  # quadrature weights x the sub-density of S on its grid
            mean = s_grid + drift * (t - t_old)
            crossed += float(np.sum(weights * special.ndtr((mean - upper) / sd)))
            new = np.linspace(s_grid[0] + drift * (t - t_old) - 8.5 * sd, upper, _POWER_GRID)
            kernel = np.exp(-0.5 * ((new[:, None] - mean[None, :]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            s_grid, density = new, kernel @ weights
        t_old = t
    return crossed


@lru_cache(maxsize=256)
def group_sequential_inflation(alpha: float, power: float, spending: str, rho: float, looks: int) -> float:
    """Sample-size inflation factor of a group-sequential design over the fixed-horizon test of the same level:
    (drift the design needs for `power` / (z_{1-alpha/2} + z_power))^2, with `looks` equally spaced looks, bounds
    spending the two-sided `alpha` (one-sided at alpha/2 on the tested side) by the Lan-DeMets function
    (Jennison & Turnbull 2000, ch. 2 and 7: the factor R of the design)."""
    from pipelines.stats.sequential import Spending, boundaries

    fractions = np.arange(1, looks + 1) / looks
    bounds = boundaries(fractions, alpha, Spending(spending, rho) if spending == "power" else Spending(spending))
    fixed = float(special.ndtri(1 - alpha / 2) + special.ndtri(power))
    # the crossing probability increases with the drift: below `power` at the fixed design's drift, above at the upper end
    drift = optimize.brentq(lambda d: _upper_crossing(bounds, fractions, d) - power, fixed, 2.0 * fixed + 2.0,
                            xtol=1e-13, rtol=4 * np.finfo(float).eps)  # fmt: skip
    return (drift / fixed) ** 2


def confidence_sequence_sample_size(
    fixed_units: np.ndarray, alpha: np.ndarray, power: np.ndarray, tuning: np.ndarray
) -> np.ndarray:
    """Units a confidence sequence at two-sided level `alpha` needs to reach `power` at the effect a fixed-horizon
    test at one-sided level alpha/2 detects with `fixed_units`: the N where its bound in z units plus z_power
    equals the effect in standard errors, (c(N) + z_power)^2 / N = (z_{1-alpha/2} + z_power)^2 / fixed_units
    (Waudby-Smith et al. 2021, eq. 9), solved by fixed-point iteration (c changes slowly with N)."""
    from pipelines.stats.sequential import confidence_sequence_bound

    z_power = special.ndtri(np.asarray(power, float))
    scale = np.asarray(fixed_units, float) / (special.ndtri(1 - np.asarray(alpha, float) / 2) + z_power) ** 2
    units = np.asarray(fixed_units, float)
    with np.errstate(all="ignore"):
        for _ in range(60):
            units = (confidence_sequence_bound(units, alpha, tuning) + z_power) ** 2 * scale
    return np.ceil(units)

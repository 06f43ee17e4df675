"""Sequential testing: Lan-DeMets group-sequential boundaries and asymptotic confidence sequences.

Group-sequential (alpha-spending) tests
---------------------------------------
Lan & DeMets (1983, Biometrika 70:659) spend a two-sided type-I error alpha over the information fractions
t_1 < t_2 < ... of the looks through a spending function alpha(t), spent symmetrically (alpha(t)/2 per side):

- ``"obf"``    O'Brien-Fleming type: per side 2 - 2 Phi(z_{1-alpha/4} / sqrt(t)), i.e. the one-sided
               Lan-DeMets function 2 - 2 Phi(z_{1-a/2} / sqrt(t)) at a = alpha/2 on each side; in total
               alpha(t) = 4 - 4 Phi(z_{1-alpha/4} / sqrt(t)). This is the convention of the published two-sided
               tables (DeMets & Lan 1994, Stat Med 13:1341; ldbounds, gsDesign sfLDOF, rpact asOF): five equal
               looks at alpha = 0.05 give 4.877, 3.357, 2.680, 2.290, 2.031. (Plugging the two-sided alpha into
               the one-sided formula, 2 - 2 Phi(z_{1-alpha/2}/sqrt(t)), would give 4.383, 3.100, ... instead.)
- ``"pocock"`` Pocock type            alpha(t) = alpha ln(1 + (e - 1) t)
- ``"power"``  power family (Kim & DeMets 1987) alpha(t) = alpha t^rho, rho = 2 unless given
  (spotify-confidence 4.1.0's only spending function, with rho = 2).

Spending functions are given as a name, a ``(name, rho)`` pair or a :class:`Spending`
(``"power"``, ``("power", 3)``, ``Spending("power", 3.0)``, ``Spending("obf")``). ``alpha(t)`` is capped at
alpha: a look with t >= 1 spends everything that is left, and any later look spends nothing (infinite bound).

The symmetric two-sided critical value c_k of look k solves
P(|Z_j| < c_j for j < k, |Z_k| >= c_k) = alpha(t_k) - alpha(t_{k-1}) under H0, where Z_k = S(t_k)/sqrt(t_k) for a
standard Brownian motion S (Armitage, McPherson & Rowe 1969). The joint probability is computed by the recursive
numerical integration of Jennison & Turnbull (2000, "Group Sequential Methods with Applications to Clinical
Trials", ch. 19): the sub-density of Z_{k-1} on its continuation region (-c_{k-1}, c_{k-1}) is carried on a
Gauss-Legendre grid (instead of the book's Simpson grid: spectral accuracy, nodes crowd at the boundaries where
the crossing mass comes from) and convolved with the Gaussian increment S(t_k) - S(t_{k-1}) ~ N(0, t_k - t_{k-1});
the crossing probability is integrated in closed form in the new look (normal tails), and c_k is found by a
safeguarded Newton iteration on the log crossing probability. The grid of a schedule has enough nodes to resolve
its narrowest increment kernel (bounds agree with a 400-node solution to ~1e-8).

Edge cases: a repeated fraction (no new information) repeats the previous look: same statistic, same bound,
nothing spent. An information increment too small to resolve with GRID_MAX nodes (below roughly 0.1% of the
information so far) is not a look of its own: it gets an infinite bound and its alpha rolls over to the next
look (conservative). The bound of look k depends on t_1..t_k only, so the whole schedule up to the current look
is the state; no other state is carried.

Confidence sequences
--------------------
:func:`confidence_sequence` is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy &
Ramdas (2021, "Time-uniform central limit theory and asymptotic confidence sequences", arXiv:2103.06476, eq. 9),
with the parametrisation of GrowthBook's gbstats 0.8.0 (``SequentialTwoSidedTTest``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl
from scipy import special

OBF = "obf"
POCOCK = "pocock"
POWER = "power"
SPENDING_KINDS = (OBF, POCOCK, POWER)
_ALIASES = {
    "obf": OBF, "obrien-fleming": OBF, "o'brien-fleming": OBF, "obrien_fleming": OBF, "of": OBF,
    "pocock": POCOCK, "power": POWER, "kim-demets": POWER,
}  # fmt: skip

# Numerical integration settings (see module docstring).
GRID_MIN = 32  # fewest Gauss-Legendre nodes over the continuation region of a look
_GRID_STEP = 16  # grid sizes are multiples of this (fewer distinct sizes: larger vectorised batches)
GRID_MAX = 400  # most nodes: an increment needing more is not a look of its own (see module docstring)
Z_MAX = 8.5  # an infinite bound is integrated to +/- Z_MAX (P(|Z| > 8.5) ~ 2e-17)
_RESOLVE = 1.6  # nodes per (continuation width / sd of the increment kernel on the previous look's z scale)
_SAME = 1e-12  # relative information increment treated as a repeated look
_NEWTON_ITER = 60
_TOL = 1e-12
_BUDGET = 2_000_000  # schedules x nodes^2 integrated at once (memory: a few arrays of this many doubles)


@dataclass(frozen=True)
class Spending:
    """A Lan-DeMets alpha-spending function: ``kind`` in ('obf', 'pocock', 'power'); ``rho`` for 'power' only.

    ``Spending("power", 3.0)`` spends alpha t^3; ``Spending("power")`` uses rho = 2 (spotify-confidence's
    default); ``Spending("obf")`` is the O'Brien-Fleming type with alpha/2 per side (module docstring).
    Strings and ``(kind, rho)`` tuples are accepted wherever a ``Spending`` is.
    """

    kind: str = POWER
    rho: float = 2.0

    def __post_init__(self) -> None:
        kind = _ALIASES.get(str(self.kind).strip().lower())
        if kind is None:
            raise ValueError(f"unknown spending function {self.kind!r}; use one of {SPENDING_KINDS}")
        object.__setattr__(self, "kind", kind)
        rho = float(self.rho)
        if kind == POWER and not (math.isfinite(rho) and rho > 0):
            raise ValueError(f"power spending needs rho > 0, got {self.rho!r}")
        object.__setattr__(self, "rho", rho if kind == POWER else 2.0)

    def spent(self, t: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
        """Cumulative two-sided alpha spent at information fraction t (t >= 1 spends alpha; t <= 0 nothing)."""
        t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
        alpha = np.asarray(alpha, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == OBF:
                # alpha/2 per side with the one-sided O'Brien-Fleming-type function (see module docstring)
                out = 4.0 * special.ndtr(-special.ndtri(1.0 - alpha / 4.0) / np.sqrt(t))
            elif self.kind == POCOCK:
                out = alpha * np.log1p((math.e - 1.0) * t)
            else:
                out = alpha * t**self.rho
        out = np.where(t >= 1.0, alpha, np.where(t <= 0.0, 0.0, out))
        return np.minimum(out, alpha)


def as_spending(spending: str | tuple | Spending) -> Spending:
    """Normalise 'obf' / 'pocock' / 'power' / ('power', rho) / Spending to a Spending."""
    if isinstance(spending, Spending):
        return spending
    if isinstance(spending, str):
        return Spending(spending)
    if isinstance(spending, tuple | list) and 1 <= len(spending) <= 2:
        return Spending(*spending)
    raise TypeError(f"spending must be a name, a (name, rho) pair or a Spending, got {spending!r}")


# ---------------------------------------------------------------------------------------------------------------
# Numerical core: many schedules at once. Arrays are (S, ...) with S schedules.


@lru_cache(maxsize=64)
def _legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(m)


def _grid(c: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (S, m) on (-c, c) and their weights (S, m)."""
    x, w = _legendre(m)
    return c[:, None] * x[None, :], c[:, None] * w[None, :]


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) * _INV_SQRT_2PI


def _crossing(c, z, wd, s_old, s_new, sd):
    """P(|Z_k| >= c and no earlier crossing) per schedule, and its derivative in c.

    z, wd: nodes and weight x sub-density of Z_{k-1} on its continuation region;
    Z_k sqrt(t_k) = Z_{k-1} sqrt(t_{k-1}) + N(0, sd^2), sd^2 = t_k - t_{k-1}.
    """
    a = (c * s_new / sd)[:, None]
    b = z * (s_old / sd)[:, None]
    upper, lower = -a - b, -a + b
    p = np.sum(wd * (special.ndtr(upper) + special.ndtr(lower)), axis=1)
    dp = -(s_new / sd) * np.sum(wd * (_pdf(upper) + _pdf(lower)), axis=1)
    return p, dp


def _solve_bound(target, z, wd, s_old, s_new, sd):
    """c with crossing(c) = target: safeguarded Newton on log crossing(c) (decreasing in c).

    Bracket [0, z_{1 - target/2}]: the crossing probability is at most P(|Z_k| >= c), so the fixed-sample
    quantile is an upper bound; at c = 0 it is the whole continuation mass 1 - (alpha spent) > target.
    """
    lo = np.zeros_like(target)
    hi = -special.ndtri(target / 2.0)
    c = hi.copy()
    log_target = np.log(target)
    active = np.ones(target.size, bool)
    for _ in range(_NEWTON_ITER):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        ci = c[idx]
        p, dp = _crossing(ci, z[idx], wd[idx], s_old[idx], s_new[idx], sd[idx])
        g = np.log(np.maximum(p, 1e-300)) - log_target[idx]
        lo[idx] = np.where(g > 0, ci, lo[idx])  # crossing too likely: c too small
        hi[idx] = np.where(g <= 0, ci, hi[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            step = g * p / dp  # g / (d log p / dc)
        new = ci - step
        converged = np.isfinite(step) & (np.abs(step) < _TOL * np.maximum(1.0, ci))
        bad = ~converged & (~np.isfinite(new) | (new <= lo[idx]) | (new >= hi[idx]))
        new = np.where(converged, ci, np.where(bad, 0.5 * (lo[idx] + hi[idx]), new))
        c[idx] = new
        active[idx[converged | (hi[idx] - lo[idx] < _TOL * np.maximum(1.0, ci))]] = False
    return c


def _bounds_batch(fractions: np.ndarray, alpha: np.ndarray, spending: Spending, m: int) -> np.ndarray:
    """Critical values (S, K) for S schedules of strictly increasing fractions (NaN-padded on the right).

    Every look spends alpha(t_k) - alpha(t_{k-1}); a look that spends nothing gets an infinite bound (and its
    continuation region is integrated over +/- Z_MAX).
    """
    s_count, k_count = fractions.shape
    out = np.full((s_count, k_count), np.nan)
    if s_count == 0 or k_count == 0:
        return out
    spent = spending.spent(np.nan_to_num(fractions, nan=0.0), alpha[:, None])
    inc = np.diff(spent, axis=1, prepend=0.0)
    with np.errstate(divide="ignore"):
        c = np.where(inc[:, 0] > 0, -special.ndtri(inc[:, 0] / 2.0), np.inf)
    out[:, 0] = c
    z, w = _grid(np.minimum(c, Z_MAX), m)
    wd = w * _pdf(z)  # quadrature weight x sub-density of Z_1
    for k in range(1, k_count):
        live = np.flatnonzero(~np.isnan(fractions[:, k]))
        if not live.size:
            break
        t_old, t_new = fractions[live, k - 1], fractions[live, k]
        sd = np.sqrt(t_new - t_old)
        s_old, s_new = np.sqrt(t_old), np.sqrt(t_new)
        zl, wdl = z[live], wd[live]
        target = inc[live, k]
        c_new = np.full(live.size, np.inf)
        solve = np.flatnonzero(target > 0)
        if solve.size:
            j = solve
            c_new[j] = _solve_bound(target[j], zl[j], wdl[j], s_old[j], s_new[j], sd[j])
        out[live, k] = c_new
        if k == k_count - 1:
            break
        # sub-density of Z_k on (-c_k, c_k): Gaussian convolution of the previous sub-density
        z_next, w_next = _grid(np.minimum(c_new, Z_MAX), m)
        kern = (z_next * (s_new / sd)[:, None])[:, :, None] - (zl * (s_old / sd)[:, None])[:, None, :]
        np.square(kern, out=kern)
        kern *= -0.5
        np.exp(kern, out=kern)
        dens = np.einsum("sij,sj->si", kern, wdl) * (_INV_SQRT_2PI * s_new / sd)[:, None]
        z[live], wd[live] = z_next, w_next * dens
    return out


@dataclass(frozen=True)
class _Plan:
    """How a validated schedule is integrated: the looks that get their own bound (`kept`: strictly increasing,
    resolvable fractions) and, for every look, which kept look's bound it reports (a repeated fraction reports the
    previous bound; an unresolvably small increment reports none: -1, infinite bound)."""

    kept: np.ndarray  # indices into the schedule
    source: np.ndarray  # for every look: index into `kept` whose bound it takes, or -1 (infinite bound)
    grid: int


def _plan(t: np.ndarray, alpha: float, spending: Spending) -> _Plan:
    """Choose the Gauss-Legendre grid resolving every increment kernel, _RESOLVE nodes per kernel sd across the
    continuation region of the previous look (bounded above by its fixed-sample quantile), rounded up to a
    multiple of _GRID_STEP; repeated fractions share a bound; increments needing more than GRID_MAX nodes are
    skipped looks (infinite bound, their alpha rolls over to the next look)."""
    spent = spending.spent(t, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        inc = np.diff(spent, prepend=0.0)
        c_hat = np.minimum(Z_MAX, np.where(inc > 0, -special.ndtri(inc / 2.0), Z_MAX))
        delta = np.diff(t)
        need = _RESOLVE * 2.0 * c_hat[:-1] / np.sqrt(delta / t[:-1])
    if t.size == 1 or (np.all(delta > _SAME * t[1:]) and np.all(need <= GRID_MAX)):  # the usual case
        kept = np.arange(t.size)
        source = kept
        top = float(need.max()) if t.size > 1 else 0.0
    else:
        kept_list = [0]
        source = np.zeros(t.size, dtype=np.int64)
        top = 0.0
        last_spent = float(spent[0])
        c_prev = float(c_hat[0])
        for k in range(1, t.size):
            t_old = t[kept_list[-1]]
            d = t[k] - t_old
            if d <= _SAME * t[k]:
                source[k] = len(kept_list) - 1
                continue
            nk = _RESOLVE * 2.0 * c_prev / math.sqrt(d / t_old)
            if nk > GRID_MAX:
                source[k] = -1
                continue
            top = max(top, nk)
            i = float(spent[k]) - last_spent
            c_prev = min(Z_MAX, float(-special.ndtri(i / 2.0))) if i > 0 else Z_MAX
            last_spent = float(spent[k])
            kept_list.append(k)
            source[k] = len(kept_list) - 1
        kept = np.asarray(kept_list)
    grid = max(GRID_MIN, _GRID_STEP * math.ceil(top / _GRID_STEP))
    return _Plan(kept, source, grid)


def _validate_schedule(t: np.ndarray) -> None:
    if t.ndim != 1 or t.size == 0:
        raise ValueError("information_fractions must be a non-empty 1-d sequence")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"information fractions must be finite and > 0, got {t.tolist()}")
    if np.any(np.diff(t) < 0):
        raise ValueError(f"information fractions must not decrease, got {t.tolist()}")


def boundaries(
    information_fractions: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    spending: str | tuple | Spending = POWER,
) -> np.ndarray:
    """Two-sided Lan-DeMets critical values |Z_k| >= c_k, one per look (Lan & DeMets 1983; numerical integration
    of Jennison & Turnbull 2000, ch. 19 — see the module docstring).

    ``information_fractions``: non-decreasing values > 0 (a look at t > 1 spends what is left of alpha; a
    repeated fraction repeats the bound). ``alpha``: two-sided family-wise level, spent two-sided over the looks.
    ``spending``: 'obf', 'pocock', 'power' (rho 2), ('power', rho) or :class:`Spending`.
    Looks after alpha is exhausted get an infinite bound.
    """
    t = np.asarray(information_fractions, dtype=float)
    _validate_schedule(t)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return bounds_for_schedules([t], [float(alpha)], spending)[0]


def bounds_for_schedules(
    schedules: Sequence[Sequence[float]],
    alpha: Sequence[float] | np.ndarray | float,
    spending: str | tuple | Spending = POWER,
) -> list[np.ndarray]:
    """:func:`boundaries` for many schedules at once, vectorised over schedules (Lan & DeMets 1983; Jennison &
    Turnbull 2000, ch. 19). ``alpha``: one level or one per schedule. Each schedule must be finite, > 0 and
    non-decreasing (ValueError otherwise). Schedules are batched by grid size and length."""
    spending = as_spending(spending)
    n = len(schedules)
    alphas = np.broadcast_to(np.asarray(alpha, dtype=float), (n,))
    if np.any(~((alphas > 0) & (alphas < 1))):
        raise ValueError("alpha must lie in (0, 1)")
    arrays = [np.asarray(x, dtype=float) for x in schedules]
    for a in arrays:
        _validate_schedule(a)
    plans = [_plan(a, float(alphas[i]), spending) for i, a in enumerate(arrays)]
    out: list[np.ndarray] = [np.empty(0)] * n
    order = sorted(range(n), key=lambda i: (plans[i].grid, plans[i].kept.size))
    start = 0
    while start < n:
        m = plans[order[start]].grid
        per_chunk = max(1, _BUDGET // (m * m))
        idx = [i for i in order[start : start + per_chunk] if plans[i].grid == m]
        start += len(idx)
        width = max(plans[i].kept.size for i in idx)
        block = np.full((len(idx), width), np.nan)
        for r, i in enumerate(idx):
            block[r, : plans[i].kept.size] = arrays[i][plans[i].kept]
        res = _bounds_batch(block, alphas[idx], spending, m)
        for r, i in enumerate(idx):
            src = plans[i].source
            out[i] = np.where(src >= 0, res[r, np.maximum(src, 0)], np.inf)
    return out


def _look_schedules(ts: list, alpha: float) -> list[tuple[tuple[float, ...], float] | None]:
    """For every look of one comparison, the schedule its bound is solved on (None: no bound).

    The valid prefix (finite, > 0, non-decreasing) counts; later looks get none. While no look has passed the plan
    (fraction <= 1) every look reads its bound off the one schedule of all looks. Over-running follows
    spotify-confidence: at look k the fractions are divided by max(1, largest fraction so far), so the look that
    runs past the plan is at information 1 and spends what its predecessors, rescaled, left; the bounds are
    re-solved at every such look (Lan & DeMets spending on the observed information; Jennison & Turnbull 2000,
    section 7.2, on over-running)."""
    good, last = 0, 0.0
    for v in ts:
        if v is None or not math.isfinite(v) or v <= 0 or v < last:
            break
        last, good = v, good + 1
    valid = [float(v) for v in ts[:good]]
    if not valid:
        return [None] * len(ts)
    base = (tuple(valid), alpha)
    out: list[tuple[tuple[float, ...], float] | None] = []
    top = 0.0
    for k, v in enumerate(valid):
        top = max(top, v)
        out.append(base if top <= 1.0 else (tuple(x / top for x in valid[: k + 1]), alpha))
    return out + [None] * (len(ts) - good)


def group_sequential_bounds(
    looks: pl.DataFrame,
    *,
    by: Sequence[str],
    fraction: str = "information_fraction",
    alpha: str | float = "alpha",
    spending: str | tuple | Spending = POWER,
    order: str = "as_of_date",
) -> pl.DataFrame:
    """Add ``critical_value`` (two-sided bound c_k on |z|), ``sequential_alpha`` = 2 (1 - Phi(c_k)) (the nominal
    two-sided level of look k) and ``spent_fraction`` (the information fraction the bound was solved at) to
    ``looks``: one row per (comparison, look); Lan-DeMets / Jennison-Turnbull ch. 19.

    The schedule of a comparison is its ``fraction`` values ordered by ``order`` within ``by``; the bound of a look
    uses every earlier look of that comparison, so pass the full history (earlier looks' fractions). Fractions are
    planned information (units so far / planned units); a comparison that runs past its plan (fraction > 1) has
    its fractions rescaled by the largest one so far at each later look (see `_look_schedules`), so every look
    keeps a finite bound. ``alpha`` is a column (constant within a comparison) or a number: the two-sided level
    to spend, after any Bonferroni division. Bounds are computed once per distinct (schedule, alpha). A
    comparison whose fractions are null, non-finite, <= 0 or decreasing gets null bounds from the first such look
    on (earlier looks keep theirs); a comparison whose alpha is not in (0, 1) or varies between its looks gets
    null bounds throughout. Reject H0 at look k when |estimate / std_error| >= critical_value. Row order is
    preserved; a repeated ``order`` value within a comparison is a ValueError.
    """
    by = list(by)
    needed = [*by, fraction, order, *([alpha] if isinstance(alpha, str) else [])]
    missing = [c for c in needed if c not in looks.columns]
    if missing:
        raise ValueError(f"group_sequential_bounds: missing columns {missing}")
    spending = as_spending(spending)
    if looks.height == 0:
        return looks.with_columns(
            critical_value=pl.lit(None, pl.Float64), sequential_alpha=pl.lit(None, pl.Float64),
            spent_fraction=pl.lit(None, pl.Float64),
        )  # fmt: skip
    if looks.select(pl.struct([*by, order]).is_duplicated().any()).item():
        raise ValueError(f"group_sequential_bounds: repeated {order!r} within {by}")
    alpha_expr = pl.col(alpha) if isinstance(alpha, str) else pl.lit(float(alpha))
    per = (
        looks.select(
            *by,
            pl.col(order),
            __row=pl.int_range(pl.len(), dtype=pl.UInt32),
            __t=pl.col(fraction).cast(pl.Float64),
            __a=alpha_expr.cast(pl.Float64),
        )
        .sort([*by, order], nulls_last=True)
        .group_by(by, maintain_order=True)
        .agg(pl.col("__row"), pl.col("__t"), __a=pl.col("__a").first(), __a_unique=pl.col("__a").n_unique())
    )
    per_look: list[list[tuple[tuple[float, ...], float] | None]] = []
    for ts, a, n_a in zip(per["__t"].to_list(), per["__a"].to_list(), per["__a_unique"].to_list(), strict=True):
        usable = n_a == 1 and a is not None and 0 < a < 1
        per_look.append(_look_schedules(ts, a) if usable else [None] * len(ts))
    distinct = list(dict.fromkeys(x for looks_ in per_look for x in looks_ if x is not None))
    solved = bounds_for_schedules([d[0] for d in distinct], [d[1] for d in distinct], spending) if distinct else []
    by_schedule = dict(zip(distinct, solved, strict=True))
    crit, used = [], []
    for schedules in per_look:
        base = next((x for x in schedules if x is not None), None)
        crit.append([
            None if x is None else float(by_schedule[x][len(x[0]) - 1 if x is not base else k])
            for k, x in enumerate(schedules)
        ])  # fmt: skip
        used.append([None if x is None else x[0][len(x[0]) - 1 if x is not base else k] for k, x in enumerate(schedules)])
    mapped = (
        per.select("__row")
        .with_columns(
            critical_value=pl.Series(crit, dtype=pl.List(pl.Float64)),
            spent_fraction=pl.Series(used, dtype=pl.List(pl.Float64)),
        )
        .explode("__row", "critical_value", "spent_fraction")
        .sort("__row")
    )
    c = mapped["critical_value"].to_numpy()
    with np.errstate(invalid="ignore"):
        nominal = 2.0 * special.ndtr(-c)
    return looks.with_columns(
        critical_value=mapped["critical_value"],
        sequential_alpha=pl.Series(nominal, dtype=pl.Float64).fill_nan(None),
        spent_fraction=mapped["spent_fraction"],
    )


# ---------------------------------------------------------------------------------------------------------------
# Always-valid inference


def confidence_sequence_rho(alpha: np.ndarray | float, tuning: np.ndarray | float) -> np.ndarray:
    """rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / tuning) (Waudby-Smith et al. 2021, eq. 161; gbstats 0.8.0):
    the mixture width optimised for a total sample size of about ``tuning`` units."""
    alpha = np.asarray(alpha, dtype=float)
    la = -2.0 * np.log(alpha)
    return np.sqrt((la + np.log(la + 1.0)) / np.asarray(tuning, dtype=float))


def confidence_sequence_bound(n: np.ndarray, alpha: np.ndarray | float, tuning: np.ndarray | float) -> np.ndarray:
    """The sequence's half-width in standard errors at N = ``n`` units: |estimate / std_error| >= this bound is the
    two-sided rejection at level ``alpha`` (eq. 9 of Waudby-Smith et al. 2021, in z units)."""
    with np.errstate(all="ignore"):
        nr2 = np.asarray(n, dtype=float) * confidence_sequence_rho(alpha, tuning) ** 2
        return np.sqrt(2.0 * (nr2 + 1.0) / nr2 * np.log(np.sqrt(nr2 + 1.0) / np.asarray(alpha, dtype=float)))


def confidence_sequence_p_value(statistic: np.ndarray, n: np.ndarray, alpha, tuning) -> np.ndarray:
    """Always-valid two-sided p-value min(1, 1 / e-value) of a standardised statistic (eq. 155 of Waudby-Smith
    et al. 2021): p < alpha exactly when |statistic| >= `confidence_sequence_bound` at that alpha."""
    with np.errstate(all="ignore"):
        nr2 = np.asarray(n, dtype=float) * confidence_sequence_rho(alpha, tuning) ** 2
        z = np.asarray(statistic, dtype=float)
        return np.minimum(1.0, np.exp(-(nr2 * z * z / (2.0 * (nr2 + 1.0)) - 0.5 * np.log1p(nr2))))


def confidence_sequence(
    estimate: np.ndarray,
    std_error: np.ndarray,
    n: np.ndarray,
    alpha: np.ndarray | float = 0.05,
    tuning: np.ndarray | float = 5000.0,
) -> dict[str, np.ndarray]:
    """Asymptotic two-sided confidence sequence and always-valid p-value, vectorised (Waudby-Smith, Arbour, Sinha,
    Kennedy & Ramdas 2021, arXiv:2103.06476, eq. 9 for the interval and eq. 155 for the e-value; as implemented
    by GrowthBook's gbstats 0.8.0 ``SequentialTwoSidedTTest``).

    With N = ``n`` (total units over both groups), sigma^2 = N std_error^2 and rho from
    :func:`confidence_sequence_rho`:
      half-width = sigma sqrt(2 (N rho^2 + 1) / (N^2 rho^2) ln(sqrt(N rho^2 + 1) / alpha)),
      e-value    = exp(N rho^2 (estimate / std_error)^2 / (2 (N rho^2 + 1))) / sqrt(N rho^2 + 1),
      p_value    = min(1, 1 / e-value)   (p_value < alpha  <=>  0 lies outside the interval).
    ``std_error`` is the standard error of ``estimate`` (e.g. sqrt(var_t/n_t + var_c/n_c), or a delta-method
    relative standard error). ``tuning`` (gbstats' ``sequential_tuning_parameter``, the N at which the sequence
    is tightest) is returned as ``tuning_parameter`` so it can be recorded with the results.

    Returns a dict of arrays: ci_lower, ci_upper, p_value, rho, tuning_parameter.
    """
    est, se, n, alpha, tuning = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (estimate, std_error, n, alpha, tuning))
    )
    with np.errstate(all="ignore"):
        rho = confidence_sequence_rho(alpha, tuning)
        half = se * confidence_sequence_bound(n, alpha, tuning)
        p = confidence_sequence_p_value(est / se, n, alpha, tuning)
    return {
        "ci_lower": est - half,
        "ci_upper": est + half,
        "p_value": p,
        "rho": rho,
        "tuning_parameter": tuning.astype(float),
    }


def confidence_sequence_from_moments(
    mean_control: np.ndarray,
    var_control: np.ndarray,
    n_control: np.ndarray,
    mean_treatment: np.ndarray,
    var_treatment: np.ndarray,
    n_treatment: np.ndarray,
    alpha: np.ndarray | float = 0.05,
    tuning: np.ndarray | float = 5000.0,
) -> dict[str, np.ndarray]:
    """:func:`confidence_sequence` for the absolute difference mean_t - mean_c with std_error
    sqrt(var_c/n_c + var_t/n_t) and N = n_c + n_t (per-unit variances); adds ``estimate`` and ``std_error``."""
    m_c, v_c, n_c, m_t, v_t, n_t = (np.asarray(v, dtype=float) for v in (
        mean_control, var_control, n_control, mean_treatment, var_treatment, n_treatment))  # fmt: skip
    with np.errstate(all="ignore"):
        est = m_t - m_c
        se = np.sqrt(v_c / n_c + v_t / n_t)
    return {"estimate": est, "std_error": se, **confidence_sequence(est, se, n_c + n_t, alpha, tuning)}

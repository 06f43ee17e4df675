"""Absolute and relative treatment effects from per-group moments, with one- or two-sided z / Welch t tests.

Relative effect (mean_t - mean_c) / mean_c in two conventions:
- `delta` (default; GrowthBook gbstats 0.8.0 `frequentist_variance` / `variance_of_ratios`, the delta method of
  Deng, Knoblich & Lu 2018, section 3.3, with independent groups so the covariance term is 0):
  Var = var_t / (mu_c^2 n_t) + var_c mu_t^2 / (mu_c^4 n_c), with mu the *unadjusted* group means; the estimate is
  (mean_t - mean_c) / mu_c with mean_* the (possibly regression-adjusted) means. CI rel -/+ q sqrt(Var), p-value
  from rel / sqrt(Var) with the same degrees of freedom as the absolute test.
- `simple` (spotify-confidence 4.1.0): the absolute effect, its CI bounds (and std error) divided by mean_control;
  p-value of the absolute test. Delegates to `pipelines.stats.two_sample.relative_interval`.

Everything is vectorised over the rows of a pairs frame (one row per treatment-vs-control comparison).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import special

from pipelines.stats.two_sample import (
    METHOD_ALIASES,
    T,
    critical_value,
    p_value_two_sided,
    relative_interval,
    welch_df,
)

FIELLER = "fieller"
DELTA = "delta"
SIMPLE = "simple"
RELATIVE_METHODS = (FIELLER, DELTA, SIMPLE)

TWO_SIDED = "two-sided"
GREATER = "greater"
LESS = "less"
ALTERNATIVE_ALIASES = {
    "two-sided": TWO_SIDED, "two_sided": TWO_SIDED, "two sided": TWO_SIDED, "both": TWO_SIDED,
    "greater": GREATER, "larger": GREATER, "increase": GREATER,
    "less": LESS, "lesser": LESS, "smaller": LESS, "decrease": LESS,
}  # fmt: skip

OK = "ok"
PAIR_INPUT = ("n_control", "n_treatment", "mean_control", "mean_treatment", "var_control", "var_treatment")

# ---------------------------------------------------------------------------------------------- pure formulas


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


def normalise_method(method: pl.Expr) -> pl.Expr:
    """Map method spellings (z, z-test, t, t-test, welch) to 'z' / 't'; unknown -> null."""
    return method.cast(pl.String).str.to_lowercase().replace_strict(METHOD_ALIASES, default=None)


def normalise_alternative(alternative: pl.Expr) -> pl.Expr:
    """Map spellings of the alternative hypothesis to 'two-sided' / 'greater' / 'less'; unknown -> null."""
    return alternative.cast(pl.String).str.to_lowercase().replace_strict(ALTERNATIVE_ALIASES, default=None)


def quantile(alpha: np.ndarray, df: np.ndarray, is_t: np.ndarray, two_sided: np.ndarray) -> np.ndarray:
    """q_{1-alpha/2} (two-sided) or q_{1-alpha} (one-sided), standard normal or Student t(df) (gbstats / statsmodels)."""
    alpha = np.asarray(alpha, float)
    return critical_value(np.where(two_sided, alpha, 2.0 * alpha), df, is_t)


def p_value(stat: np.ndarray, df: np.ndarray, is_t: np.ndarray, alternative: np.ndarray) -> np.ndarray:
    """p-value of H0: effect = 0 against `alternative` ('greater': sf(stat), 'less': cdf(stat), else two-sided)."""
    stat, df, is_t, alternative = np.broadcast_arrays(
        np.asarray(stat, float), np.asarray(df, float), np.asarray(is_t, bool), np.asarray(alternative, object)
    )
    two = p_value_two_sided(stat, df, is_t)
    signed = np.where(alternative == GREATER, -stat, stat)  # P(Z <= signed)
    one = special.ndtr(signed)
    if is_t.any():
        one = one.copy()
        one[is_t] = special.stdtr(df[is_t], signed[is_t])
    return np.where(alternative == TWO_SIDED, two, one)


def interval(
    estimate: np.ndarray, se: np.ndarray, q: np.ndarray, alternative: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """estimate -/+ q se; one-sided intervals are open at one end (greater: [lo, inf), less: (-inf, hi])."""
    lo = np.where(alternative == LESS, -np.inf, estimate - q * se)
    hi = np.where(alternative == GREATER, np.inf, estimate + q * se)
    return lo, hi


# ---------------------------------------------------------------------------------------------- pairing


def pair_with_control(groups: pl.DataFrame, key: Sequence[str], columns: Sequence[str]) -> pl.DataFrame:
    """One row per (key, treatment): each treatment row joined to its key's control row.

    `groups` has `variant`, `is_control` and `columns`; output columns `control`, `treatment`, `<c>_control`,
    `<c>_treatment` for each c in columns, and `n_controls` (controls found for the key; 1 expected).
    """
    key = list(key)
    ctl = pl.col("is_control").fill_null(False)
    controls = groups.filter(ctl).group_by(key, maintain_order=True).agg(
        n_controls=pl.len(),
        control=pl.col("variant").first(),
        **{f"{c}_control": pl.col(c).first() for c in columns},
    )
    treatments = groups.filter(~ctl).select(
        *key, treatment=pl.col("variant"), **{f"{c}_treatment": pl.col(c) for c in columns}
    )
    out = treatments.join(controls, on=key, how="left", nulls_equal=True, maintain_order="left")
    return out.with_columns(pl.col("n_controls").fill_null(0))


def pairing_status(pairs: pl.DataFrame) -> pl.DataFrame:
    """status / status_reason for missing or multiple controls (null reason and 'ok' otherwise)."""
    return pairs.with_columns(
        status=pl.when(pl.col("n_controls") == 0)
        .then(pl.lit("missing_control"))
        .when(pl.col("n_controls") > 1)
        .then(pl.lit("multiple_controls"))
        .otherwise(pl.lit(OK)),
        status_reason=pl.when(pl.col("n_controls") == 0)
        .then(pl.lit("no control row for this comparison key"))
        .when(pl.col("n_controls") > 1)
        .then(pl.format("{} control rows; exactly one expected", pl.col("n_controls")))
        .otherwise(None),
    )


# ---------------------------------------------------------------------------------------------- tests


def _option(pairs: pl.DataFrame, name: str, default: object) -> pl.Expr:
    """Row-wise option: the column `name` when present (nulls filled with the default), else the default."""
    lit = pl.lit(default)
    return pl.col(name).fill_null(lit) if name in pairs.columns else lit


def _status(pairs: pl.DataFrame) -> pl.DataFrame:
    """First failing check as status / status_reason; keeps an incoming non-ok status (e.g. from ratio or CUPED)."""
    n_c, n_t = pl.col("n_control").cast(pl.Float64), pl.col("n_treatment").cast(pl.Float64)
    moments = [pl.col(c).cast(pl.Float64) for c in PAIR_INPUT]
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (pl.any_horizontal(m.is_null() | ~m.is_finite() for m in moments), "invalid_input",
         pl.lit("missing or non-finite n, mean or variance")),
        ((pl.col("var_control") < 0) | (pl.col("var_treatment") < 0), "invalid_input", pl.lit("negative variance")),
        (pl.col("_method").is_null(), "invalid_method", pl.lit(f"method must be one of {sorted(METHOD_ALIASES)}")),
        (pl.col("_alternative").is_null(), "invalid_alternative",
         pl.lit(f"alternative must be one of {sorted(ALTERNATIVE_ALIASES)}")),
        (pl.col("_alpha").is_null() | ~((pl.col("_alpha") > 0) & (pl.col("_alpha") < 1)), "invalid_alpha",
         pl.format("alpha must lie in (0, 1), got {}", pl.col("_alpha"))),
        ((n_c < 2) | (n_t < 2), "insufficient_sample",
         pl.format("need n >= 2 in both groups (control n={}, treatment n={})", n_c, n_t)),
        ((pl.col("var_control") == 0) & (pl.col("var_treatment") == 0), "zero_variance",
         pl.lit("zero variance in both groups: standard error is 0")),
    ]  # fmt: skip
    has = "status" in pairs.columns
    incoming = (pl.col("status") != OK).fill_null(False) if has else pl.lit(False)
    status = pl.when(incoming).then(pl.col("status") if has else pl.lit(None, pl.String))
    reason = pl.when(incoming).then(pl.col("status_reason") if has and "status_reason" in pairs.columns else pl.lit(None, pl.String))
    for cond, code, why in checks:
        status, reason = status.when(cond).then(pl.lit(code)), reason.when(cond).then(why)
    return pairs.with_columns(status=status.otherwise(pl.lit(OK)), status_reason=reason.otherwise(None))


def effect_tests(
    pairs: pl.DataFrame,
    *,
    alpha: float = 0.05,
    method: str = "t",
    alternative: str = TWO_SIDED,
    relative_method: str = DELTA,
) -> pl.DataFrame:
    """Absolute and relative effect of treatment vs control with z or Welch t tests, one- or two-sided.

    Input: one row per comparison with n_control, n_treatment, mean_control, mean_treatment, var_control,
    var_treatment (per-unit variances of the compared statistic: plain, ratio delta-method or CUPED-adjusted);
    optional unadjusted_mean_control / unadjusted_mean_treatment (the delta-method relative uses them, as gbstats;
    default: the means) and optional columns `alpha`, `method` ('z'/'t'), `alternative`
    ('two-sided'/'greater'/'less') overriding the arguments row by row; an incoming non-ok `status` is kept.

    Output adds estimate, std_error, df (Welch-Satterthwaite, Welch 1947; inf for z), ci_lower, ci_upper, p_value,
    relative_estimate, relative_std_error, relative_ci_lower, relative_ci_upper, relative_p_value, status,
    status_reason, relative_status_reason. Absolute: estimate mean_t - mean_c, se sqrt(var_c/n_c + var_t/n_t).
    Relative: `relative_method` 'delta' (gbstats 0.8.0) or 'simple' (spotify-confidence 4.1.0), see module doc.
    Degenerate rows never raise: voided columns are null and the status / reason columns say why.
    """
    missing = [c for c in PAIR_INPUT if c not in pairs.columns]
    if missing:
        raise ValueError(f"effect_tests: missing input columns {missing}")
    if relative_method not in RELATIVE_METHODS:
        raise ValueError(f"effect_tests: unknown relative_method {relative_method!r}; available: {RELATIVE_METHODS}")
    pairs = pairs.with_columns(
        _alpha=_option(pairs, "alpha", float(alpha)).cast(pl.Float64),
        _method=normalise_method(_option(pairs, "method", method)),
        _alternative=normalise_alternative(_option(pairs, "alternative", alternative)),
    )
    pairs = _status(pairs)

    def arr(name: str) -> np.ndarray:
        return pairs[name].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()

    n_c, n_t, m_c, m_t, v_c, v_t, alpha_ = (arr(c) for c in (*PAIR_INPUT, "_alpha"))
    u_c = arr("unadjusted_mean_control") if "unadjusted_mean_control" in pairs.columns else m_c
    u_t = arr("unadjusted_mean_treatment") if "unadjusted_mean_treatment" in pairs.columns else m_t
    status = pairs["status"].to_numpy()
    ok = status == OK
    estimate_ok = np.isin(status, [OK, "insufficient_sample", "zero_variance"]) & np.isfinite(m_c) & np.isfinite(m_t)
    is_t = (pairs["_method"] == T).fill_null(False).to_numpy()
    alt = pairs["_alternative"].fill_null(TWO_SIDED).to_numpy().astype(object)
    two = alt == TWO_SIDED

    with np.errstate(all="ignore"):
        est = np.where(estimate_ok, m_t - m_c, np.nan)
        se = np.where(ok, np.sqrt(v_c / n_c + v_t / n_t), np.nan)
        df = np.where(ok, np.where(is_t, welch_df(v_c, n_c, v_t, n_t), np.inf), np.nan)
        q = quantile(alpha_, df, is_t, two)
        lo, hi = interval(est, se, q, alt)
        p = p_value(est / se, df, is_t, alt)

        base = u_c if relative_method == DELTA else m_c
        base_ok = np.isfinite(base) & (base != 0)
        if relative_method == DELTA:
            rel = relative_estimate(m_c, m_t, base)
            rel_se = np.sqrt(delta_relative_variance(u_c, v_c, n_c, u_t, v_t, n_t))
            rel_lo, rel_hi = interval(rel, rel_se, q, alt)
            rel_p = p_value(rel / rel_se, df, is_t, alt)
        else:
            safe = np.where(base_ok, base, np.nan)
            rel, rel_lo, rel_hi = relative_interval(est, lo, hi, safe)
            rel_se = se / np.abs(safe)
            rel_p = p
    rel_void = ~base_ok | ~estimate_ok
    rel, rel_se, rel_lo, rel_hi, rel_p = (np.where(rel_void, np.nan, x) for x in (rel, rel_se, rel_lo, rel_hi, rel_p))
    rel_se, rel_lo, rel_hi, rel_p = (np.where(ok, x, np.nan) for x in (rel_se, rel_lo, rel_hi, rel_p))
    lo, hi, p = (np.where(ok, x, np.nan) for x in (lo, hi, p))
    rel_reason = np.where(
        ~ok, pairs["status_reason"].to_numpy().astype(object),
        np.where(~base_ok, "control mean is 0 (or undefined): relative effect undefined", None),
    )  # fmt: skip

    out = pairs.drop("_alpha", "_method", "_alternative").with_columns(
        estimate=pl.Series(est),
        std_error=pl.Series(se),
        df=pl.Series(df),
        ci_lower=pl.Series(lo),
        ci_upper=pl.Series(hi),
        p_value=pl.Series(p),
        relative_estimate=pl.Series(rel),
        relative_std_error=pl.Series(rel_se),
        relative_ci_lower=pl.Series(rel_lo),
        relative_ci_upper=pl.Series(rel_hi),
        relative_p_value=pl.Series(rel_p),
        relative_status_reason=pl.Series(rel_reason, dtype=pl.String),
    )
    return out.with_columns(
        pl.col(c).fill_nan(None)
        for c in ("estimate", "std_error", "df", "ci_lower", "ci_upper", "p_value", "relative_estimate",
                  "relative_std_error", "relative_ci_lower", "relative_ci_upper", "relative_p_value")
    )  # fmt: skip

"""Per-row hypotheses of a comparison frame: what is tested, against which null value, on which side.

Optional columns of a comparison (or variant) frame, so one frame can mix hypotheses (null / absent = default):

| column | meaning |
|---|---|
| `preferred_direction` | `increase` / `decrease`: the metric has a preferred direction; null: none |
| `non_inferiority_margin` | margin m relative to the control mean (spotify-confidence `non_inferiority_margins`) |
| `non_inferiority_margin_absolute` | margin on the metric's own scale |
| `minimum_detectable_effect` | MDE relative to the control mean (for the required sample size) |
| `minimum_detectable_effect_absolute` | MDE on the metric's own scale |
| `alternative` | `two_sided` / `two-sided`: test a metric with a preferred direction two-sided (its deterioration test
  and `is_significant_preferred` still use the direction); `one_sided` or null: the default below |

Resulting test per row (delta = mean_treatment - mean_control, mu = control mean):
- no direction, no margin: two-sided superiority, H0 delta == 0 (default; `alternative` two-sided);
- direction, no margin: one-sided superiority, H0 delta <= 0 (`increase`, alternative `greater`) or
  delta >= 0 (`decrease`, alternative `less`); the interval is one-sided, its open end +/-inf;
- direction and margin: non-inferiority, H0 delta <= -m |mu| (`increase`) or delta >= +m |mu| (`decrease`), as
  spotify-confidence (which uses mu; |mu| keeps the margin on the unwanted side for negative-mean metrics);
  an absolute margin replaces m |mu|. A margin without a direction, both margin kinds, a negative margin or a
  relative margin on a zero control mean are `invalid_hypothesis`.
- deterioration (inferiority) test on every row with a preferred direction: H0 delta >= 0 (`increase`) resp.
  delta <= 0 (`decrease`) against the alternative that the metric moved the unwanted way, one-sided, always
  against 0 (not the margin). Rows WITHOUT a preferred direction have no unwanted direction: their deterioration
  columns are null (documented choice: a two-sided metric that moves significantly either way is already
  reported by `is_significant`; calling one of the two directions "deterioration" would be an arbitrary guess).

Everything here works on whole NumPy columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from pipelines.stats.two_sample import critical_value

INCREASE = "increase"
DECREASE = "decrease"
TWO_SIDED = "two-sided"
GREATER = "greater"
LESS = "less"
ALTERNATIVES = (TWO_SIDED, GREATER, LESS)
# Codes of the test's alternative: 0 two-sided, +1 greater, -1 less (also the sign of a preferred direction).
ALTERNATIVE_NAMES = {0: TWO_SIDED, 1: GREATER, -1: LESS}
PREFERENCE_NAMES = {0: TWO_SIDED, 1: INCREASE, -1: DECREASE}
DIRECTION_ALIASES = {
    INCREASE: 1, "higher": 1, "larger": 1, "greater": 1, "up": 1,
    DECREASE: -1, "lower": -1, "smaller": -1, "less": -1, "down": -1,
    "": 0, "none": 0, TWO_SIDED: 0, "two_sided": 0,
}  # fmt: skip

PREFERRED_DIRECTION = "preferred_direction"
MARGIN = "non_inferiority_margin"
MARGIN_ABSOLUTE = "non_inferiority_margin_absolute"
MDE = "minimum_detectable_effect"
MDE_ABSOLUTE = "minimum_detectable_effect_absolute"
ALTERNATIVE = "alternative"
HYPOTHESIS_COLUMNS = (PREFERRED_DIRECTION, MARGIN, MARGIN_ABSOLUTE, MDE, MDE_ABSOLUTE, ALTERNATIVE)
ALTERNATIVE_SPELLINGS = {"two_sided": True, "two-sided": True, "one_sided": False, "one-sided": False}
_SQRT1_2 = float(np.sqrt(0.5))


@dataclass(frozen=True)
class Hypotheses:
    """Hypothesis inputs of every row, as NumPy columns (NaN / 0 where absent)."""

    direction: np.ndarray  # int8: +1 increase, -1 decrease, 0 none
    margin: np.ndarray  # relative non-inferiority margin
    margin_absolute: np.ndarray
    mde: np.ndarray  # relative MDE
    mde_absolute: np.ndarray
    problem: np.ndarray  # bool: the row's hypothesis columns are unusable
    reason: np.ndarray | None  # object: reason text where `problem`, else None (None: no hypothesis columns)
    present: bool  # any hypothesis column given at all
    two_sided: np.ndarray | None = None  # bool: a directional metric tested two-sided (None: no such row)

    @property
    def is_guardrail(self) -> np.ndarray:
        """Rows with a non-inferiority margin (spotify-confidence: guardrails, not counted by spot-1)."""
        if not self.present:
            return self.problem  # all False
        return ~np.isnan(self.margin) | ~np.isnan(self.margin_absolute)


def _column(frame: pl.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return frame.get_column(name).cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()


def read_hypotheses(frame: pl.DataFrame) -> Hypotheses:
    """Parse the optional hypothesis columns of `frame` (see module docstring); never raises on bad values."""
    size = frame.height
    present = any(c in frame.columns for c in HYPOTHESIS_COLUMNS)
    nan = np.full(size, np.nan)
    nan.flags.writeable = False  # shared by the absent columns
    if not present:
        none = np.zeros(size, dtype=bool)
        return Hypotheses(np.zeros(size, np.int8), nan, nan, nan, nan, none, None, False)
    problem = np.zeros(size, dtype=bool)
    reason = np.full(size, None, dtype=object)

    def flag(mask: np.ndarray, text: str) -> None:
        new = mask & ~problem
        reason[new] = text
        problem[new] = True

    if PREFERRED_DIRECTION in frame.columns:
        spelled = frame.get_column(PREFERRED_DIRECTION).cast(pl.String).str.strip_chars().str.to_lowercase()
        code = spelled.replace_strict(DIRECTION_ALIASES, default=None, return_dtype=pl.Int8)
        unknown = (code.is_null() & spelled.is_not_null()).to_numpy()
        direction = code.fill_null(0).to_numpy().astype(np.int8)
        flag(unknown, "preferred_direction must be 'increase', 'decrease' or null")
    else:
        direction = np.zeros(size, np.int8)
    margin, margin_abs, mde, mde_abs = (
        v if (v := _column(frame, c)) is not None else nan for c in (MARGIN, MARGIN_ABSOLUTE, MDE, MDE_ABSOLUTE)
    )
    has_margin = ~np.isnan(margin) | ~np.isnan(margin_abs)
    two_sided = None
    if ALTERNATIVE in frame.columns:
        spelled = frame.get_column(ALTERNATIVE).cast(pl.String).str.strip_chars().str.to_lowercase()
        asked = spelled.replace_strict(ALTERNATIVE_SPELLINGS, default=None, return_dtype=pl.Boolean)
        flag((asked.is_null() & spelled.is_not_null()).to_numpy(), "alternative must be 'one_sided', 'two_sided' or null")
        two_sided = asked.fill_null(False).to_numpy()
        flag(two_sided & has_margin, "a non-inferiority test is one-sided: remove alternative 'two_sided'")
        two_sided = two_sided if two_sided.any() else None
    with np.errstate(invalid="ignore"):
        flag(~np.isnan(margin) & ~np.isnan(margin_abs),
             "give either a relative or an absolute non-inferiority margin, not both")
        flag(has_margin & (direction == 0),
             "a non-inferiority margin needs a preferred_direction ('increase' or 'decrease')")
        flag(~(np.isnan(margin) | (np.isfinite(margin) & (margin >= 0))),
             "non_inferiority_margin must be a finite number >= 0")
        flag(~(np.isnan(margin_abs) | (np.isfinite(margin_abs) & (margin_abs >= 0))),
             "non_inferiority_margin_absolute must be a finite number >= 0")
        flag(~np.isnan(mde) & ~np.isnan(mde_abs),
             "give either a relative or an absolute minimum detectable effect, not both")
        flag(~(np.isnan(mde) | (np.isfinite(mde) & (mde > 0))),
             "minimum_detectable_effect must be a finite number > 0")
        flag(~(np.isnan(mde_abs) | (np.isfinite(mde_abs) & (mde_abs > 0))),
             "minimum_detectable_effect_absolute must be a finite number > 0")  # fmt: skip
    return Hypotheses(direction, margin, margin_abs, mde, mde_abs, problem, reason, True, two_sided)


def flag_zero_mean_margin(h: Hypotheses, control_mean: np.ndarray) -> np.ndarray:
    """Rows whose relative margin cannot be placed: control mean 0 (or unknown while the row is otherwise fine)."""
    return ~np.isnan(h.margin) & (control_mean == 0)


def null_value(h: Hypotheses, control_mean: np.ndarray) -> np.ndarray:
    """Absolute null value of delta: 0, or -/+ the margin on the unwanted side (spotify-confidence signed NIM)."""
    if not h.present:
        return np.zeros_like(control_mean)
    size = np.where(np.isnan(h.margin_absolute), h.margin * np.abs(control_mean), h.margin_absolute)
    return np.where(h.is_guardrail, -h.direction * size, 0.0)


def hypothetical_effect(h: Hypotheses, control_mean: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Signed effect the required sample size is powered for (NaN: none). spotify-confidence: alternative - null,
    with alternative 0 on non-inferiority rows (the margin plays the MDE role) and the signed MDE otherwise."""
    if not h.present:
        return np.full(control_mean.shape, np.nan)
    sign = np.where(h.direction == 0, 1, h.direction)
    mde = np.where(np.isnan(h.mde_absolute), h.mde * np.abs(control_mean), h.mde_absolute) * sign
    return np.where(h.is_guardrail, -null, mde)


def alternatives(h: Hypotheses, two_sided_one_sided: bool = False) -> np.ndarray:
    """Alternative of the reported test per row (0 two-sided, +1 greater, -1 less). With `two_sided_one_sided`
    (spot-1-bonferroni, as spotify-confidence 4.1.0 `get_preference`) every row is reported two-sided."""
    if two_sided_one_sided or not h.present:
        return np.zeros(h.direction.shape, np.int8)
    if h.two_sided is not None:
        return np.where(h.two_sided, 0, h.direction).astype(np.int8)
    return h.direction


def quantile(alpha: np.ndarray, df: np.ndarray, is_t: np.ndarray, alternative: np.ndarray) -> np.ndarray:
    """q_{1-alpha/2} (two-sided rows) or q_{1-alpha} (one-sided rows): normal for z rows, Student t(df) for t rows."""
    alpha = np.asarray(alpha, float)
    if not alternative.any():
        return critical_value(alpha, df, is_t)
    return critical_value(np.where(alternative == 0, alpha, 2.0 * alpha), df, is_t)


def p_value(stat: np.ndarray, df: np.ndarray, is_t: np.ndarray, alternative: np.ndarray) -> np.ndarray:
    """Two-sided 2 sf(|stat|), `greater` sf(stat), `less` cdf(stat) (statsmodels `_zstat_generic` / scipy)."""
    if not alternative.any() and not is_t.any():
        return special.erfc(np.abs(stat) * _SQRT1_2)  # == 2 ndtr(-|stat|) bit for bit (ndtr is erfc-based)
    if not alternative.any():
        signed = -np.abs(stat)
        factor = 2.0
    else:
        signed = np.where(alternative == 0, -np.abs(stat), -alternative * stat)
        factor = np.where(alternative == 0, 2.0, 1.0)
    p = factor * special.ndtr(signed)
    if is_t.any():
        p = np.array(p, dtype=float, copy=True)
        f = factor[is_t] if np.ndim(factor) else factor
        p[is_t] = f * special.stdtr(df[is_t], signed[is_t])
    return p


def interval(
    estimate: np.ndarray, se: np.ndarray, q: np.ndarray, alternative: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """estimate -/+ q se, the open end of a one-sided interval at -inf (`less`) or +inf (`greater`)."""
    lower, upper = estimate - q * se, estimate + q * se
    if alternative.any():  # open ends only where the interval exists (degenerate rows stay null)
        lower = np.where((alternative == -1) & ~np.isnan(lower), -np.inf, lower)
        upper = np.where((alternative == 1) & ~np.isnan(upper), np.inf, upper)
    return lower, upper


def deterioration_p_value(
    estimate: np.ndarray, se: np.ndarray, df: np.ndarray, is_t: np.ndarray, direction: np.ndarray
) -> np.ndarray:
    """One-sided p-value of H0 'no move against the preferred direction' (delta >= 0 for `increase`, <= 0 for
    `decrease`) vs delta on the unwanted side; NaN where the row has no preferred direction."""
    p = p_value(estimate / se, df, is_t, -direction.astype(np.int8))
    return np.where(direction == 0, np.nan, p)

"""Treatment-vs-control comparisons, vectorised: variant rows are paired once, then every comparison of the
frame is computed at once with NumPy on whole columns (never a Python loop per comparison).

Two entry points:
- `analyse(pairs)`: a frame of comparisons (one row each, control and treatment statistics side by side);
- `compare(stats)`: a frame of variant rows, paired by `pair_variants` and then analysed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import special

from pipelines.stats.multiple_testing import BONFERRONI, CORRECTIONS, family_size
from pipelines.stats.power import (
    CLOSED_FORM,
    CONFIDENCE,
    POWERED_EFFECT_CONVENTIONS,
    powered_effect_binary,
    powered_effect_binary_closed_form,
    powered_effect_continuous,
)
from pipelines.stats.sufficient import MEAN, PROPORTION, impossible, moments
from pipelines.stats.two_sample import (
    METHOD_ALIASES,
    T,
    Z,
    confidence_interval,
    critical_value,
    p_value_two_sided,
    relative_interval,
    standard_error,
    welch_df,
)

OK = "ok"
BASE_KEY = ("experiment_id", "metric_id", "as_of_date")
SEGMENT = "segment"
REQUIRED = ("experiment_id", "metric_id", "as_of_date", "variant", "is_control", "metric_type", "n", "sum", "sum_sq")
SIDES = ("n", "sum", "sum_sq")
OUTPUT = (
    "control", "treatment", "metric_type", "method", "n_control", "n_treatment", "mean_control", "mean_treatment",
    "estimate", "std_error", "ci_lower", "ci_upper", "relative_estimate", "relative_ci_lower", "relative_ci_upper",
    "p_value", "alpha", "adjusted_alpha", "adjusted_p_value", "adjusted_ci_lower", "adjusted_ci_upper",
    "is_significant", "powered_effect", "status", "status_reason",
)  # fmt: skip

# Status codes in order of precedence: the first that applies names the row's problem.
STATUSES = (
    OK, "invalid_input", "missing_control", "multiple_controls", "invalid_method", "invalid_alpha",
    "insufficient_sample", "zero_variance", "zero_control_mean",
)  # fmt: skip
_CODE = {name: i for i, name in enumerate(STATUSES)}
# Statuses under which the test is valid (a zero control mean only voids the relative columns) ...
_INFERENCE_OK = (_CODE[OK], _CODE["zero_control_mean"])
# ... and under which the point estimate still is.
_ESTIMATE_OK = (*_INFERENCE_OK, _CODE["insufficient_sample"], _CODE["zero_variance"])


def comparison_key(stats: pl.DataFrame) -> list[str]:
    """experiment_id, metric_id, as_of_date [, segment]."""
    return [*BASE_KEY, *([SEGMENT] if SEGMENT in stats.columns else [])]


def family_key(frame: pl.DataFrame, family: Sequence[str]) -> list[str]:
    """The multiple-testing family, plus segment when the input is segmented."""
    fam = list(family)
    return fam + ([SEGMENT] if SEGMENT in frame.columns and SEGMENT not in fam else [])


def pair_variants(stats: pl.DataFrame) -> pl.DataFrame:
    """Variant rows -> one row per treatment with its key's control beside it (`*_control`, `*_treatment`).

    A key without exactly one control keeps its treatments, flagged in `pairing_problem`.
    """
    missing = [c for c in REQUIRED if c not in stats.columns]
    if missing:
        raise ValueError(f"compare: missing input columns {missing}")
    key = comparison_key(stats)
    options = [c for c in ("alpha", "method") if c in stats.columns]
    is_control = pl.col("is_control").fill_null(False)
    controls = stats.filter(is_control).select(
        *key, control=pl.col("variant"), metric_type_control=pl.col("metric_type"),
        **{f"{c}_control": pl.col(c) for c in SIDES},
    )  # fmt: skip
    control_count = controls.group_by(key, maintain_order=False).len("n_controls")
    treatments = stats.filter(~is_control).select(
        *key, *options, "metric_type", treatment=pl.col("variant"), **{f"{c}_treatment": pl.col(c) for c in SIDES}
    )
    paired = (
        treatments.join(controls.unique(key, keep="first"), on=key, how="left", nulls_equal=True)
        .join(control_count, on=key, how="left", nulls_equal=True)
        .with_columns(pl.col("n_controls").fill_null(0))
    )
    mismatch = pl.col("metric_type_control").is_not_null() & (pl.col("metric_type_control") != pl.col("metric_type"))
    return paired.with_columns(
        pairing_problem=pl.when(pl.col("n_controls") == 0)
        .then(pl.lit("missing_control"))
        .when(pl.col("n_controls") > 1)
        .then(pl.lit("multiple_controls"))
        .when(mismatch)
        .then(pl.lit("invalid_input"))
    ).drop("n_controls", "metric_type_control")


def _floats(frame: pl.DataFrame, column: str) -> np.ndarray:
    """A column as float64 NumPy (null -> NaN)."""
    return frame.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()


def _methods(frame: pl.DataFrame, default: str) -> pl.Series:
    """Per-row test, 'z' or 't', from a `method` column (null: the default); unknown spellings -> null."""
    if "method" not in frame.columns:
        return pl.repeat(default, frame.height, dtype=pl.String, eager=True)
    spelled = frame.get_column("method").cast(pl.String).fill_null(default).str.to_lowercase()
    return spelled.replace_strict(METHOD_ALIASES, default=None, return_dtype=pl.String)


def _pairing_problems(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose key had no control, several controls, or a control of another metric type."""
    if "pairing_problem" not in frame.columns:
        none = np.zeros(frame.height, dtype=bool)
        return none, none, none
    problem = frame.get_column("pairing_problem")
    return tuple((problem == name).fill_null(False).to_numpy() for name in ("missing_control", "multiple_controls", "invalid_input"))


def _status_codes(checks: list[tuple[str, np.ndarray]], size: int) -> np.ndarray:
    """The first failing check per row as a code into STATUSES (0 = ok)."""
    code = np.zeros(size, dtype=np.int8)
    for name, failed in reversed(checks):
        code[failed] = _CODE[name]
    return code


def _reasons(frame: pl.DataFrame, code: np.ndarray) -> pl.Series:
    """Human-readable reason per non-ok row, built only for those rows."""
    bad = np.flatnonzero(code != 0)
    reasons = pl.Series("status_reason", [None] * frame.height, dtype=pl.String)
    if not bad.size:
        return reasons
    sub = frame[bad].with_columns(status=pl.Series(np.asarray(STATUSES)[code[bad]]))
    described = sub.select(
        pl.when(pl.col("status") == "invalid_input")
        .then(pl.lit("sufficient statistics are missing, inconsistent or of different metric types"))
        .when(pl.col("status") == "missing_control")
        .then(pl.lit("no control row for this experiment, metric and date"))
        .when(pl.col("status") == "multiple_controls")
        .then(pl.lit("more than one control row; exactly one expected"))
        .when(pl.col("status") == "invalid_method")
        .then(pl.lit(f"method must be one of {sorted(METHOD_ALIASES)}"))
        .when(pl.col("status") == "invalid_alpha")
        .then(pl.format("alpha must lie in (0, 1), got {}", pl.col("alpha")))
        .when(pl.col("status") == "insufficient_sample")
        .then(pl.format("need n >= 2 in both groups (control n={}, treatment n={})", "n_control", "n_treatment"))
        .when(pl.col("status") == "zero_variance")
        .then(pl.lit("zero variance in both groups: standard error is 0"))
        .when(pl.col("status") == "zero_control_mean")
        .then(pl.lit("control mean is 0: relative effect undefined"))
    ).to_series()
    return reasons.scatter(bad, described)


def analyse(
    pairs: pl.DataFrame,
    *,
    alpha: float = 0.05,
    method: str = Z,
    power: float = 0.8,
    family: Sequence[str] = ("experiment_id", "as_of_date"),
    correction: str = BONFERRONI,
    powered_effect: str = CLOSED_FORM,
) -> pl.DataFrame:
    """Two-sided z / Welch t test of every comparison row, Bonferroni within `family`.

    `pairs` has one row per comparison: `n_`, `sum_`, `sum_sq_` + `control`/`treatment` and `metric_type`,
    optionally `alpha`, `method` and `pairing_problem` per row. Output: the input's key columns and OUTPUT.
    Degenerate rows never raise: the columns they void are null and `status` names the problem.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"compare: unknown correction {correction!r}; available: {CORRECTIONS}")
    if not 0 < power < 1:
        raise ValueError(f"compare: power must lie in (0, 1), got {power}")
    if powered_effect not in POWERED_EFFECT_CONVENTIONS:
        raise ValueError(f"compare: powered_effect must be one of {POWERED_EFFECT_CONVENTIONS}, got {powered_effect!r}")
    default_method = METHOD_ALIASES.get(str(method).lower())
    if default_method is None:
        raise ValueError(f"compare: unknown method {method!r}; use 'z' or 't'")
    fam = family_key(pairs, family)

    binary = (pairs.get_column("metric_type") == PROPORTION).fill_null(False).to_numpy()
    known_type = pairs.get_column("metric_type").is_in([MEAN, PROPORTION]).fill_null(False).to_numpy()
    methods = _methods(pairs, default_method)
    is_t = (methods == T).fill_null(False).to_numpy()
    alphas = _floats(pairs, "alpha") if "alpha" in pairs.columns else np.full(pairs.height, float(alpha))
    alphas = np.where(np.isnan(alphas), float(alpha), alphas)
    n_c, s_c, q_c = (_floats(pairs, f"{c}_control") for c in SIDES)
    n_t, s_t, q_t = (_floats(pairs, f"{c}_treatment") for c in SIDES)

    with np.errstate(all="ignore"):
        m_c, v_c = moments(n_c, s_c, q_c, binary)
        m_t, v_t = moments(n_t, s_t, q_t, binary)
        missing_control, multiple_controls, mismatched = _pairing_problems(pairs)
        code = _status_codes(
            [
                ("invalid_input", ~known_type | mismatched | impossible(n_t, s_t, q_t, binary)
                 | impossible(n_c, s_c, q_c, binary) & ~missing_control),
                ("missing_control", missing_control),
                ("multiple_controls", multiple_controls),
                ("invalid_method", methods.is_null().to_numpy()),
                ("invalid_alpha", ~((alphas > 0) & (alphas < 1))),
                ("insufficient_sample", (n_c < 2) | (n_t < 2)),
                ("zero_variance", (v_c == 0) & (v_t == 0)),
                ("zero_control_mean", m_c == 0),
            ],
            pairs.height,
        )  # fmt: skip
        zero_mean = _CODE["zero_control_mean"]
        inference_ok = (code == 0) | (code == zero_mean)
        estimate_ok = inference_ok | (code == _CODE["insufficient_sample"]) | (code == _CODE["zero_variance"])

        estimate = np.where(estimate_ok, m_t - m_c, np.nan)
        se = np.where(inference_ok, standard_error(v_c, n_c, v_t, n_t), np.nan)
        df = np.where(is_t, welch_df(v_c, n_c, v_t, n_t), np.inf)
        ci_lower, ci_upper = confidence_interval(estimate, se, critical_value(alphas, df, is_t))
        p_value = p_value_two_sided(estimate / se, df, is_t)

        m = family_size(pairs, fam, correction).to_numpy().astype(float)
        adjusted_alpha = alphas / m
        adjusted_p = np.minimum(p_value * m, 1.0)
        q_adjusted = critical_value(adjusted_alpha, df, is_t)
        adj_lower, adj_upper = confidence_interval(estimate, se, q_adjusted)

        # z_{1-alpha/2} + z_{power}: on z rows the adjusted critical value is the first term.
        z_sum = q_adjusted + special.ndtri(power)
        powered = np.where(~is_t & inference_ok, powered_effect_continuous(z_sum, v_c, n_c, n_t), np.nan)
        rows = ~is_t & inference_ok & binary
        if rows.any():
            solve = powered_effect_binary if powered_effect == CONFIDENCE else powered_effect_binary_closed_form
            powered[rows] = solve(z_sum[rows], m_c[rows], v_c[rows], n_c[rows], n_t[rows], (n_c + n_t)[rows])

        control_mean = np.where(estimate_ok & (m_c != 0), m_c, np.nan)
        relative, rel_lower, rel_upper = relative_interval(estimate, ci_lower, ci_upper, control_mean)

        # A row still ok must have every test column finite; anything else is a numerical problem, said so.
        finite = np.isfinite(estimate + se + ci_lower + ci_upper + p_value + relative)
    code = np.where((code == 0) & ~finite, len(STATUSES), code).astype(np.uint8)
    key = [c for c in pairs.columns if c in (*BASE_KEY, SEGMENT)]
    out = pairs.select(*key, "control", "treatment", "metric_type").with_columns(
        methods.alias("method"),
        *(pl.Series(name, values, nan_to_null=True) for name, values in {
            "n_control": n_c, "n_treatment": n_t, "mean_control": np.where(estimate_ok, m_c, np.nan),
            "mean_treatment": np.where(estimate_ok, m_t, np.nan), "estimate": estimate, "std_error": se,
            "ci_lower": ci_lower, "ci_upper": ci_upper, "relative_estimate": relative,
            "relative_ci_lower": rel_lower, "relative_ci_upper": rel_upper, "p_value": p_value, "alpha": alphas,
            "adjusted_alpha": adjusted_alpha, "adjusted_p_value": adjusted_p, "adjusted_ci_lower": adj_lower,
            "adjusted_ci_upper": adj_upper, "powered_effect": powered,
        }.items()),
        status=pl.Series(code).replace_strict(dict(enumerate((*STATUSES, "numerical_error"))), return_dtype=pl.String),
        status_reason=_reasons(pairs.with_columns(alpha=pl.Series(alphas)), code),
    )  # fmt: skip
    out = out.with_columns(
        pl.col("n_control", "n_treatment").cast(pl.Int64),
        is_significant=pl.col("p_value") < pl.col("adjusted_alpha"),
    )
    return out.select(*key, *OUTPUT)


def compare(
    stats: pl.DataFrame,
    *,
    alpha: float = 0.05,
    method: str = Z,
    power: float = 0.8,
    family: Sequence[str] = ("experiment_id", "as_of_date"),
    correction: str = BONFERRONI,
    powered_effect: str = CLOSED_FORM,
) -> pl.DataFrame:
    """Compare every treatment with its control per (experiment_id, metric_id, as_of_date[, segment]).

    Input: one row per variant (`variant`, `is_control`, `metric_type`, `n`, `sum`, `sum_sq`; optional per-row
    `alpha` and `method`). Conventions follow spotify-confidence 4.1.0; see `analyse` for the output.
    """
    key = comparison_key(stats)
    fam = family_key(stats, family)
    if not set(fam) <= set(key):
        raise ValueError(f"compare: family columns {sorted(set(fam) - set(key))} are not comparison-key columns {key}")
    out = analyse(
        pair_variants(stats), alpha=alpha, method=method, power=power, family=family,
        correction=correction, powered_effect=powered_effect,
    )  # fmt: skip
    return out.sort([*fam, *[k for k in key if k not in fam], "treatment"])

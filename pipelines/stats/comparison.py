"""`compare`: every treatment against its control for each (experiment, metric, date[, segment]), vectorised."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from pipelines.stats.multiple_testing import BONFERRONI, CORRECTIONS, bonferroni
from pipelines.stats.power import powered_effect_binary, powered_effect_continuous, z_quantiles
from pipelines.stats.sufficient import PROPORTION, group_moments
from pipelines.stats.two_sample import (
    METHOD_ALIASES,
    T,
    Z,
    critical_value,
    normalise_method,
    relative_interval,
    two_sample_tests,
)

OK = "ok"
BASE_KEY = ("experiment_id", "metric_id", "as_of_date")
SEGMENT = "segment"
REQUIRED = ("experiment_id", "metric_id", "as_of_date", "variant", "is_control", "metric_type", "n", "sum", "sum_sq")
OUTPUT = (
    "control", "treatment", "metric_type", "method", "n_control", "n_treatment", "mean_control", "mean_treatment",
    "estimate", "std_error", "ci_lower", "ci_upper", "relative_estimate", "relative_ci_lower", "relative_ci_upper",
    "p_value", "alpha", "adjusted_alpha", "adjusted_p_value", "adjusted_ci_lower", "adjusted_ci_upper",
    "is_significant", "powered_effect", "status", "status_reason",
)  # fmt: skip
_FLOAT_OUT = (
    "mean_control", "mean_treatment", "estimate", "std_error", "ci_lower", "ci_upper", "relative_estimate",
    "relative_ci_lower", "relative_ci_upper", "p_value", "adjusted_p_value", "adjusted_ci_lower",
    "adjusted_ci_upper", "powered_effect",
)  # fmt: skip
# Statuses under which the test itself is valid (zero_control_mean only voids the relative columns).
_INFERENCE_OK = (OK, "zero_control_mean")
_ESTIMATE_OK = (*_INFERENCE_OK, "insufficient_sample", "zero_variance")


def comparison_key(stats: pl.DataFrame) -> list[str]:
    """experiment_id, metric_id, as_of_date [, segment]."""
    return [*BASE_KEY, *([SEGMENT] if SEGMENT in stats.columns else [])]


def family_key(stats: pl.DataFrame, family: Sequence[str]) -> list[str]:
    """The multiple-testing family, plus segment when the input is segmented."""
    fam = list(family)
    return fam + ([SEGMENT] if SEGMENT in stats.columns and SEGMENT not in fam else [])


def _resolve_options(stats: pl.DataFrame, alpha: float | pl.Expr, method: str) -> pl.DataFrame:
    """Row-wise alpha (an `alpha` column overrides the argument) and method (a `method` column overrides the argument)."""
    default_alpha = alpha if isinstance(alpha, pl.Expr) else pl.lit(float(alpha))
    alpha_expr = pl.col("alpha").cast(pl.Float64).fill_null(default_alpha) if "alpha" in stats.columns else default_alpha
    if "method" in stats.columns:
        method_expr = pl.when(pl.col("method").is_null()).then(pl.lit(method)).otherwise(normalise_method(pl.col("method")))
    else:
        method_expr = pl.lit(method)
    return stats.with_columns(alpha=alpha_expr.cast(pl.Float64), method=method_expr.cast(pl.String))


def _pair(stats: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Join each treatment row to its key's control (first control; the control count is kept for the status)."""
    rows = group_moments(stats).with_columns(is_control=pl.col("is_control").fill_null(False))
    ctl = pl.col("is_control")
    per_key = rows.group_by(key).agg(
        n_units=pl.col("n").sum(),
        n_controls=ctl.sum(),
        control=pl.col("variant").filter(ctl).first(),
        n_control=pl.col("n").filter(ctl).first(),
        mean_control=pl.col("mean").filter(ctl).first(),
        var_control=pl.col("variance").filter(ctl).first(),
        metric_type_control=pl.col("metric_type").filter(ctl).first(),
        problem_control=pl.col("input_problem").filter(ctl).first(),
    )
    treatments = rows.filter(~ctl).select(
        *key,
        "alpha",
        "method",
        "metric_type",
        treatment=pl.col("variant"),
        n_treatment=pl.col("n"),
        mean_treatment=pl.col("mean"),
        var_treatment=pl.col("variance"),
        problem_treatment=pl.col("input_problem"),
    )
    return treatments.join(per_key, on=key, how="left", nulls_equal=True)


def _status(pairs: pl.DataFrame) -> pl.DataFrame:
    """status (first failing check) and status_reason; both columns never null, reason null only when ok."""
    n_c, n_t = pl.col("n_control"), pl.col("n_treatment")
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (pl.col("problem_control").is_not_null(), "invalid_input", pl.format("control: {}", pl.col("problem_control"))),
        (pl.col("problem_treatment").is_not_null(), "invalid_input", pl.format("treatment: {}", pl.col("problem_treatment"))),
        (pl.col("n_controls") == 0, "missing_control", pl.lit("no control row for this experiment/metric/date")),
        (pl.col("n_controls") > 1, "multiple_controls", pl.format("{} control rows; exactly one expected", pl.col("n_controls"))),
        (pl.col("metric_type_control") != pl.col("metric_type"), "invalid_input",
         pl.format("metric_type differs: control {} vs treatment {}", pl.col("metric_type_control"), pl.col("metric_type"))),
        (pl.col("method").is_null(), "invalid_method", pl.lit(f"method must be one of {sorted(METHOD_ALIASES)}")),
        (pl.col("alpha").is_null() | ~((pl.col("alpha") > 0) & (pl.col("alpha") < 1)), "invalid_alpha",
         pl.format("alpha must lie in (0, 1), got {}", pl.col("alpha"))),
        ((n_c < 2) | (n_t < 2), "insufficient_sample",
         pl.format("need n >= 2 in both groups (control n={}, treatment n={})", n_c, n_t)),
        ((pl.col("var_control") == 0) & (pl.col("var_treatment") == 0), "zero_variance",
         pl.lit("zero variance in both groups: standard error is 0")),
        (pl.col("mean_control") == 0, "zero_control_mean", pl.lit("control mean is 0: relative effect undefined")),
    ]  # fmt: skip
    status, reason = pl.when(checks[0][0]).then(pl.lit(checks[0][1])), pl.when(checks[0][0]).then(checks[0][2])
    for cond, code, why in checks[1:]:
        status, reason = status.when(cond).then(pl.lit(code)), reason.when(cond).then(why)
    return pairs.with_columns(status=status.otherwise(pl.lit(OK)), status_reason=reason.otherwise(None))


def _finalise(pairs: pl.DataFrame, power: float) -> pl.DataFrame:
    """Null out what each status voids, then add adjusted CIs, powered effect, relative columns and is_significant."""
    status = pairs["status"]
    inference_ok = status.is_in(list(_INFERENCE_OK)).to_numpy()
    estimate_ok = status.is_in(list(_ESTIMATE_OK)).to_numpy()
    f = {c: pairs[c].cast(pl.Float64).fill_null(np.nan).to_numpy().copy() for c in (
        "n_control", "n_treatment", "n_units", "mean_control", "var_control", "estimate", "std_error", "df",
        "ci_lower", "ci_upper", "p_value", "adjusted_alpha", "adjusted_p_value")}  # fmt: skip
    is_t = (pairs["method"] == T).fill_null(False).to_numpy()
    is_z = (pairs["method"] == Z).fill_null(False).to_numpy()
    binary = (pairs["metric_type"] == PROPORTION).fill_null(False).to_numpy()
    for c in ("std_error", "df", "ci_lower", "ci_upper", "p_value", "adjusted_p_value"):
        f[c][~inference_ok] = np.nan
    f["estimate"][~estimate_ok] = np.nan
    m_c = np.where(estimate_ok, f["mean_control"], np.nan)

    with np.errstate(all="ignore"):
        q_adj = critical_value(f["adjusted_alpha"], f["df"], is_t)
        adj_lo = f["estimate"] - q_adj * f["std_error"]
        adj_hi = f["estimate"] + q_adj * f["std_error"]
        adj_lo[~inference_ok] = np.nan
        adj_hi[~inference_ok] = np.nan

        powered = np.full(len(pairs), np.nan)
        z_sum = z_quantiles(f["adjusted_alpha"], power)
        cont = inference_ok & is_z & ~binary
        powered[cont] = powered_effect_continuous(z_sum[cont], f["var_control"][cont], f["n_control"][cont], f["n_treatment"][cont])
        bin_ = inference_ok & is_z & binary
        if bin_.any():
            powered[bin_] = powered_effect_binary(
                z_sum[bin_], f["mean_control"][bin_], f["var_control"][bin_],
                f["n_control"][bin_], f["n_treatment"][bin_], f["n_units"][bin_],
            )  # fmt: skip

        rel, rel_lo, rel_hi = relative_interval(f["estimate"], f["ci_lower"], f["ci_upper"], np.where(m_c == 0, np.nan, m_c))

    out = pairs.with_columns(
        mean_control=pl.Series(m_c),
        estimate=pl.Series(f["estimate"]),
        std_error=pl.Series(f["std_error"]),
        ci_lower=pl.Series(f["ci_lower"]),
        ci_upper=pl.Series(f["ci_upper"]),
        p_value=pl.Series(f["p_value"]),
        adjusted_p_value=pl.Series(f["adjusted_p_value"]),
        adjusted_ci_lower=pl.Series(adj_lo),
        adjusted_ci_upper=pl.Series(adj_hi),
        powered_effect=pl.Series(powered),
        relative_estimate=pl.Series(rel),
        relative_ci_lower=pl.Series(rel_lo),
        relative_ci_upper=pl.Series(rel_hi),
    ).with_columns(pl.col(c).cast(pl.Float64).fill_nan(None) for c in _FLOAT_OUT)
    # Guard: a row still marked ok must have every test column finite.
    broken = (pl.col("status") == OK) & pl.any_horizontal(
        pl.col(c).is_null() for c in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value", "relative_estimate")
    )
    return out.with_columns(
        status=pl.when(broken).then(pl.lit("numerical_error")).otherwise(pl.col("status")),
        status_reason=pl.when(broken).then(pl.lit("non-finite result from finite input")).otherwise(pl.col("status_reason")),
    ).with_columns(is_significant=pl.col("p_value") < pl.col("adjusted_alpha"))


def compare(
    stats: pl.DataFrame,
    *,
    alpha: float | pl.Expr = 0.05,
    method: str = "z",
    power: float = 0.8,
    family: Sequence[str] = ("experiment_id", "as_of_date"),
    correction: str = BONFERRONI,
) -> pl.DataFrame:
    """Two-sided z / Welch t comparison of every treatment with its control, Bonferroni within `family`.

    One output row per (experiment_id, metric_id, as_of_date[, segment]) x treatment. Degenerate input never
    raises: affected columns are null and `status` names the problem (`status_reason` explains it).
    Conventions follow spotify-confidence 4.1.0; `powered_effect` is given for the z-test only (as there).
    """
    missing = [c for c in REQUIRED if c not in stats.columns]
    if missing:
        raise ValueError(f"compare: missing input columns {missing}")
    method_norm = METHOD_ALIASES.get(str(method).lower())
    if method_norm is None:
        raise ValueError(f"compare: unknown method {method!r}; use 'z' or 't'")
    if correction not in CORRECTIONS:
        raise ValueError(f"compare: unknown correction {correction!r}; available: {CORRECTIONS}")
    if not 0 < power < 1:
        raise ValueError(f"compare: power must lie in (0, 1), got {power}")
    key = comparison_key(stats)
    fam = family_key(stats, family)
    if not set(fam) <= set(key):
        raise ValueError(f"compare: family columns {sorted(set(fam) - set(key))} are not comparison-key columns {key}")

    pairs = _pair(_resolve_options(stats, alpha, method_norm), key)
    pairs = _status(pairs)
    pairs = two_sample_tests(pairs)
    pairs = pairs.with_columns(
        pl.col(c).fill_nan(None) for c in ("estimate", "std_error", "df", "ci_lower", "ci_upper", "p_value")
    )
    pairs = pairs.with_columns(
        p_value=pl.when(pl.col("status").is_in(list(_INFERENCE_OK))).then(pl.col("p_value")).otherwise(None)
    )
    pairs = bonferroni(pairs, fam, dimensions=[*(k for k in key if k not in fam), "treatment"], correction=correction)
    out = _finalise(pairs, power)
    return out.select(*key, *OUTPUT).sort([*fam, *[k for k in key if k not in fam], "treatment"])

"""Treatment-vs-control comparisons, vectorised: variant rows are paired once, then every comparison of the
frame is computed at once with NumPy on whole columns (never a Python loop per comparison).

Each row carries its own hypothesis (`pipelines.stats.hypotheses`: two-sided or one-sided superiority,
non-inferiority with a relative or absolute margin, and a deterioration test on every metric with a preferred
direction) and is corrected within its family (`pipelines.stats.multiple_testing`: Bonferroni, Holm,
Benjamini-Hochberg, spot-1-bonferroni, none).

Two entry points:
- `analyse(pairs)`: a frame of comparisons (one row each, control and treatment statistics side by side);
- `compare(stats)`: a frame of variant rows, paired by `pair_variants` and then analysed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import special

from pipelines.stats.hypotheses import (
    ALTERNATIVE_NAMES,
    HYPOTHESIS_COLUMNS,
    PREFERENCE_NAMES,
    TWO_SIDED,
    alternatives,
    deterioration_p_value,
    flag_zero_mean_margin,
    hypothetical_effect,
    interval,
    null_value,
    quantile,
    read_hypotheses,
)
from pipelines.stats.hypotheses import p_value as hypothesis_p_value
from pipelines.stats.ratio import SHIFT_COLUMNS, metric_group_moments, with_shift_columns
from pipelines.stats.relative import DELTA, FIELLER, RELATIVE_METHODS, delta_relative_variance, fieller_interval
from pipelines.stats.variance_reduction import CONFIDENCE as CONFIDENCE_CUPED
from pipelines.stats.variance_reduction import CONVENTIONS as CUPED_CONVENTIONS
from pipelines.stats.variance_reduction import cuped_group_moments
from pipelines.stats.multiple_testing import (
    BONFERRONI,
    CORRECTIONS,
    NONE,
    RISK_AWARE_CORRECTIONS,
    SPOT_1_BONFERRONI,
    STEPWISE,
    DESIGN_COLUMNS,
    adjusted_power,
    design_counts,
    family_index,
    family_sizes,
    normalise_correction,
    stepwise,
)
from pipelines.stats.power import (
    CLOSED_FORM,
    CONFIDENCE,
    POWERED_EFFECT_CONVENTIONS,
    powered_effect_binary,
    powered_effect_binary_closed_form,
    powered_effect_continuous,
    required_sample_size_rows,
)
from pipelines.stats.sufficient import (
    BASE_KEY,
    MEAN,
    PROPORTION,
    RATIO,
    SEGMENT,
    comparison_key,
    impossible,
    moments,
    variance_lost,
)
from pipelines.stats.two_sample import METHOD_ALIASES, T, Z, relative_interval, standard_error, welch_df

OK = "ok"
# Per-group moments computed before pairing (ratio metrics, CUPED): used instead of the moments of n, sum, sum_sq.
GROUP_MOMENTS = (
    "group_mean", "group_variance", "group_problem", "unadjusted_mean", "unadjusted_variance", "group_adjusted",
    "group_imprecise",
)  # fmt: skip
RATIO_TEST, PLUG_IN = "ratio", "plug_in"  # how a relative non-inferiority margin is tested (see `analyse`)
NON_INFERIORITY_TESTS = (RATIO_TEST, PLUG_IN)
# When a comparison has no usable variance (see `analyse`): both groups without variance (default), or either.
BOTH, EITHER = "both", "either"
ZERO_VARIANCE_RULES = (BOTH, EITHER)
# A control mean within this share of its values' root mean square is zero up to the rounding of its sums.
MEAN_NOISE = 1e-10
COVARIATE = "cov_sum"
ROLE = "role"  # optional: success, guardrail or deterioration (tested for harm only)
DETERIORATION_ONLY = "deterioration"
ZERO_MEAN_MARGIN = "a relative non-inferiority margin needs a non-zero control mean"
REQUIRED = ("experiment_id", "metric_id", "as_of_date", "variant", "is_control", "metric_type", "n", "sum", "sum_sq")
SIDES = ("n", "sum", "sum_sq")
OUTPUT = (
    "control", "treatment", "metric_type", "method", "n_control", "n_treatment", "mean_control", "mean_treatment",
    "estimate", "std_error", "statistic", "ci_lower", "ci_upper", "ci_level", "relative_estimate",
    "relative_ci_lower", "relative_ci_upper", "relative_p_value",
    "p_value", "alpha", "adjusted_alpha", "adjusted_p_value", "adjusted_ci_lower", "adjusted_ci_upper",
    "adjusted_ci_level",
    "is_significant", "powered_effect", "null_hypothesis", "preference", "alternative", "adjusted_power",
    "required_sample_size", "is_significant_preferred", "deterioration_p_value", "deterioration_adjusted_alpha",
    "is_deteriorating", "status", "status_reason",
)  # fmt: skip

# Status codes in order of precedence: the first that applies names the row's problem.
STATUSES = (
    OK, "invalid_input", "missing_control", "multiple_controls", "invalid_method", "invalid_alpha",
    "invalid_hypothesis", "insufficient_sample", "imprecise_sums", "zero_variance", "zero_control_mean",
)  # fmt: skip
_CODE = {name: i for i, name in enumerate(STATUSES)}
# Statuses under which the test is valid (a zero control mean only voids the relative columns) ...
_INFERENCE_OK = (_CODE[OK], _CODE["zero_control_mean"])
# ... and under which the point estimate still is.
_ESTIMATE_OK = (*_INFERENCE_OK, *(_CODE[c] for c in ("insufficient_sample", "imprecise_sums", "zero_variance")))


def family_key(frame: pl.DataFrame, family: Sequence[str]) -> list[str]:
    """The multiple-testing family, plus segment when the input is segmented."""
    fam = list(family)
    return fam + ([SEGMENT] if SEGMENT in frame.columns and SEGMENT not in fam else [])


def pair_variants(stats: pl.DataFrame) -> pl.DataFrame:
    """Variant rows -> one row per treatment with its key's control beside it (`*_control`, `*_treatment`).

    Per-row options (`alpha`, `method`) and hypothesis columns (`preferred_direction`, margins, MDEs) come from the
    treatment row; a hypothesis column left null there is taken from the control row (metric-level settings may
    be given on either). A key without exactly one control keeps its treatments, flagged in `pairing_problem`.
    """
    missing = [c for c in REQUIRED if c not in stats.columns]
    if missing:
        raise ValueError(f"compare: missing input columns {missing}")
    key = comparison_key(stats)
    options = [c for c in ("alpha", "method", ROLE, *DESIGN_COLUMNS) if c in stats.columns]
    hypothesis = [c for c in HYPOTHESIS_COLUMNS if c in stats.columns]
    sides = [*SIDES, *(c for c in (*GROUP_MOMENTS, "value_shift") if c in stats.columns)]
    is_control = pl.col("is_control").fill_null(False)
    controls = stats.filter(is_control).select(
        *key, control=pl.col("variant"), metric_type_control=pl.col("metric_type"),
        **{f"{c}_control": pl.col(c) for c in sides}, **{f"_{c}_of_control": pl.col(c) for c in hypothesis},
    )  # fmt: skip
    control_count = controls.group_by(key, maintain_order=False).len("n_controls")
    treatments = stats.filter(~is_control).select(
        *key, *options, *hypothesis, "metric_type", treatment=pl.col("variant"),
        **{f"{c}_treatment": pl.col(c) for c in sides},
    )  # fmt: skip
    paired = (
        treatments.join(controls.unique(key, keep="first"), on=key, how="left", nulls_equal=True)
        .join(control_count, on=key, how="left", nulls_equal=True)
        .with_columns(pl.col("n_controls").fill_null(0))
    )
    if hypothesis:
        paired = paired.with_columns(pl.coalesce(c, f"_{c}_of_control").alias(c) for c in hypothesis).drop(
            f"_{c}_of_control" for c in hypothesis
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


def _methods(frame: pl.DataFrame, default: str) -> pl.Series | pl.Expr:
    """Per-row test, "z" or "t", from a `method` column (null: the default; absent: one literal); unknown -> null."""
    if "method" not in frame.columns:
        return pl.lit(default, dtype=pl.String)
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


def _reasons(
    frame: pl.DataFrame,
    code: np.ndarray,
    hypothesis_reason: np.ndarray | None = None,
    alphas: np.ndarray | None = None,
    group_reason: np.ndarray | None = None,
    variance_reason: np.ndarray | None = None,
) -> pl.Series | pl.Expr:
    """Human-readable reason per non-ok row, built only for those rows (a null literal when every row is ok).
    `group_reason`: why a group's precomputed moments are unusable (ratio, CUPED); `variance_reason`: which group
    has no usable variance (else both have none)."""
    bad = np.flatnonzero(code != 0)
    if not bad.size:
        return pl.lit(None, dtype=pl.String).alias("status_reason")
    reasons = pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias("status_reason")

    def texts(values: np.ndarray | None) -> pl.Series:
        return pl.Series([None] * bad.size if values is None else values[bad].tolist(), dtype=pl.String)

    sub = frame[bad].with_columns(
        status=pl.Series(np.asarray((*STATUSES, "numerical_error"))[code[bad]]),
        _hypothesis=texts(hypothesis_reason),
        _group=texts(group_reason),
        _variance=texts(variance_reason),
        **({} if alphas is None else {"alpha": pl.Series(alphas[bad])}),
    )
    described = sub.select(
        pl.when(pl.col("status") == "invalid_input")
        .then(pl.col("_group").fill_null(
            pl.lit("sufficient statistics are missing, inconsistent or of different metric types")
        ))
        .when(pl.col("status") == "missing_control")
        .then(pl.lit("no control row for this experiment, metric and date"))
        .when(pl.col("status") == "multiple_controls")
        .then(pl.lit("more than one control row; exactly one expected"))
        .when(pl.col("status") == "invalid_method")
        .then(pl.lit(f"method must be one of {sorted(METHOD_ALIASES)}"))
        .when(pl.col("status") == "invalid_alpha")
        .then(pl.format("alpha must lie in (0, 1), got {}", pl.col("alpha")))
        .when(pl.col("status") == "invalid_hypothesis")
        .then(pl.col("_hypothesis").fill_null(pl.lit(ZERO_MEAN_MARGIN)))
        .when(pl.col("status") == "insufficient_sample")
        .then(pl.format("need n >= 2 in both groups (control n={}, treatment n={})", "n_control", "n_treatment"))
        .when(pl.col("status") == "imprecise_sums")
        .then(pl.lit("the variance is below the float64 precision of the sums: the values' mean is too large "
                     "against their spread (or they are constant); return the value from a fixed offset in the metric "
                     "model (e.g. seconds since a date instead of an epoch time)"))
        .when(pl.col("status") == "zero_variance")
        .then(pl.col("_variance").fill_null(pl.lit("zero variance in both groups: standard error is 0")))
        .when(pl.col("status") == "zero_control_mean")
        .then(pl.lit("control mean is 0: relative effect undefined"))
        .when(pl.col("status") == "numerical_error")
        .then(pl.lit("the test statistics are not finite (numerical overflow or underflow)"))
    ).to_series()
    return reasons.scatter(bad, described)


def _constant_or_series(name: str, values: np.ndarray | float | str | None, dtype: pl.DataType) -> pl.Expr | pl.Series:
    """A whole-column value as a cheap literal when it is one value, else a Series (NaN -> null)."""
    if values is None or isinstance(values, (float, int, str)):
        return pl.lit(values, dtype=dtype).alias(name)
    return pl.Series(name, values, dtype=dtype, nan_to_null=dtype == pl.Float64)


def analyse(
    pairs: pl.DataFrame,
    *,
    alpha: float = 0.05,
    method: str = Z,
    power: float = 0.8,
    family: Sequence[str] = ("experiment_id", "as_of_date"),
    correction: str = BONFERRONI,
    powered_effect: str = CLOSED_FORM,
    deterioration_alpha: float | None = None,
    relative_method: str = FIELLER,
    non_inferiority: str = RATIO_TEST,
    zero_variance: str = BOTH,
) -> pl.DataFrame:
    """Z / Welch t test of every comparison row under its own hypothesis, corrected within `family`.

    `pairs` has one row per comparison: `n_`, `sum_`, `sum_sq_` + `control`/`treatment` and `metric_type`,
    optionally per row `alpha`, `method`, `pairing_problem`, the hypothesis columns of
    `pipelines.stats.hypotheses` (`preferred_direction`, `non_inferiority_margin[_absolute]`,
    `minimum_detectable_effect[_absolute]`, `alternative`) and the design counts of
    `pipelines.stats.multiple_testing.DESIGN_COLUMNS`. Output: the input's key columns and OUTPUT.

    `correction`: `bonferroni` (default), `holm`, `benjamini-hochberg` (`bh`), `risk-aware`, `spot-1-bonferroni`
    or `none` (see `pipelines.stats.multiple_testing`). `deterioration_alpha` (default: each row's alpha) is the
    level of the deterioration tests, Bonferroni-corrected over the family's metrics with a preferred direction x
    treatments (the design's counts when given; not corrected with `none`).

    `relative_method`: `fieller` (default: the Fieller interval of mean_t / mean_c - 1, which excludes the null
    exactly when the row's test rejects), `delta` (gbstats 0.8.0: delta-method interval and its own p-value in
    `relative_p_value`) or `simple` (spotify-confidence: the absolute interval over the control mean).
    `non_inferiority`: how a relative margin m is tested: `ratio` (default; H0 mu_t <= (1 - m) mu_c tested with
    the variance v_t/n_t + (1 - m)^2 v_c/n_c, Hauschke, Kieser & Hothorn 1999, so the estimated control mean's
    uncertainty counts) or `plug_in` (spotify-confidence: the margin m times the estimated control mean taken as
    known).
    `zero_variance`: when a comparison has no test (status `zero_variance`): `both` (default) when neither group
    has any variance (a Welch test with one constant group is still a test), `either` (gbstats 0.8.0
    `_has_zero_variance`) when either group's variance is zero or negative. A negative (CUPED-adjusted) group
    variance voids the test under both rules.

    Hypothesis columns of the output:
    - `null_hypothesis`: absolute null value of delta (0, or -/+ margin on non-inferiority rows; for a relative
      margin the estimated control mean times the margin);
    - `statistic`: the row's standardised test statistic (z or t) of its null hypothesis;
    - `preference`: the metric's `increase` / `decrease` / `two-sided` (spotify-confidence's PREFERENCE);
    - `alternative`: the test reported, `two-sided` / `greater` / `less` (two-sided for every row under
      spot-1-bonferroni, whose one-sided rows are tested two-sided at 2 alpha as the library does; `alpha`
      stays the input alpha, `adjusted_alpha` carries the doubling). One-sided intervals have an infinite end;
    - `ci_level`, `adjusted_ci_level`: the confidence level of `ci_*` and `adjusted_ci_*` (and of the relative
      interval, which shares `ci_level`), one- or two-sided as `alternative` says;
    - `relative_p_value`: the p-value that matches the relative interval (delta method: its own test; otherwise
      the row's test, `p_value`);
    - `adjusted_power`: power used for `powered_effect` and `required_sample_size`;
    - `required_sample_size`: units over control + this treatment (spotify-confidence, current split) for the
      row's minimum detectable effect, or for its margin on non-inferiority rows; null without either, and on
      t-test rows (as `powered_effect`);
    - `is_significant_preferred`: significant AND the estimate on the preferred side of the null value
      (superiority / non-inferiority shown); differs from `is_significant` for two-sided tests that reject on
      the wrong side; null for rows without a preferred direction;
    - `deterioration_p_value`, `deterioration_adjusted_alpha`, `is_deteriorating`: one-sided test of a move
      against the preferred direction (against 0); null for rows without a preferred direction.
    Degenerate rows never raise: the columns they void are null and `status` names the problem.
    """
    try:
        correction = normalise_correction(correction)
    except ValueError:
        raise ValueError(f"compare: unknown correction {correction!r}; available: {CORRECTIONS}") from None
    if not 0 < power < 1:
        raise ValueError(f"compare: power must lie in (0, 1), got {power}")
    if relative_method not in RELATIVE_METHODS:
        raise ValueError(f"compare: relative_method must be one of {RELATIVE_METHODS}, got {relative_method!r}")
    if zero_variance not in ZERO_VARIANCE_RULES:
        raise ValueError(f"compare: zero_variance must be one of {ZERO_VARIANCE_RULES}, got {zero_variance!r}")
    if non_inferiority not in NON_INFERIORITY_TESTS:
        raise ValueError(f"compare: non_inferiority must be one of {NON_INFERIORITY_TESTS}, got {non_inferiority!r}")
    if deterioration_alpha is not None and not 0 < deterioration_alpha < 1:
        raise ValueError(f"compare: deterioration_alpha must lie in (0, 1), got {deterioration_alpha}")
    if powered_effect not in POWERED_EFFECT_CONVENTIONS:
        raise ValueError(f"compare: powered_effect must be one of {POWERED_EFFECT_CONVENTIONS}, got {powered_effect!r}")
    default_method = METHOD_ALIASES.get(str(method).lower())
    if default_method is None:
        raise ValueError(f"compare: unknown method {method!r}; use 'z' or 't'")
    fam = family_key(pairs, family)
    size = pairs.height
    ids = family_index(pairs, fam) if correction != NONE else np.zeros(size, np.int64)
    spot1 = correction == SPOT_1_BONFERRONI
    risk_aware = correction in RISK_AWARE_CORRECTIONS
    design = design_counts(pairs)

    metric_type = pairs.get_column("metric_type")
    binary = (metric_type == PROPORTION).fill_null(False).to_numpy()
    known_type = binary | (metric_type == MEAN).fill_null(False).to_numpy()
    methods = _methods(pairs, default_method)
    if "method" in pairs.columns:
        is_t = (methods == T).fill_null(False).to_numpy()
        unknown_method = methods.is_null().to_numpy()
    else:  # one method for every row
        is_t = np.full(size, default_method == T)
        unknown_method = np.zeros(size, bool)
    alphas = _floats(pairs, "alpha") if "alpha" in pairs.columns else np.full(size, float(alpha))
    if "alpha" in pairs.columns:
        alphas = np.where(np.isnan(alphas), float(alpha), alphas)
    n_c, s_c, q_c = (_floats(pairs, f"{c}_control") for c in SIDES)
    n_t, s_t, q_t = (_floats(pairs, f"{c}_treatment") for c in SIDES)
    hyp = read_hypotheses(pairs)
    direction = hyp.direction
    directional = hyp.present and bool(direction.any())
    guardrail = hyp.is_guardrail
    # Deterioration-only metrics are tested for harm only: the risk-aware rule counts them neither as success
    # metrics (for alpha) nor as guardrails (for power).
    uncounted = (pairs.get_column(ROLE) == DETERIORATION_ONLY).fill_null(False).to_numpy() if ROLE in pairs.columns else None

    precomputed = "group_mean_control" in pairs.columns
    with np.errstate(all="ignore"):
        if precomputed:  # ratio metrics and CUPED: moments of the (linearised or adjusted) statistic per group
            m_c, v_c = _floats(pairs, "group_mean_control"), _floats(pairs, "group_variance_control")
            m_t, v_t = _floats(pairs, "group_mean_treatment"), _floats(pairs, "group_variance_treatment")
            u_c, u_t = _floats(pairs, "unadjusted_mean_control"), _floats(pairs, "unadjusted_mean_treatment")
            u_c, u_t = np.where(np.isnan(u_c), m_c, u_c), np.where(np.isnan(u_t), m_t, u_t)
            # moments of shifted sums are of value - value_shift (one shift per comparison): differences are taken
            # there, where they keep their precision, and the means get the shift back
            difference, unadjusted_difference = m_t - m_c, u_t - u_c
            if "value_shift_control" in pairs.columns:
                shift = np.nan_to_num(_floats(pairs, "value_shift_control"))
                m_c, m_t, u_c, u_t = m_c + shift, m_t + shift, u_c + shift, u_t + shift
            scale_c = np.sqrt(np.abs(_floats(pairs, "unadjusted_variance_control")) + u_c * u_c)
            scale_c = np.where(np.isnan(scale_c), np.sqrt(np.abs(v_c) + m_c * m_c), scale_c)
            group_reason = pairs.select(
                pl.when(pl.col("group_problem_control").is_not_null())
                .then(pl.format("control: {}", "group_problem_control"))
                .when(pl.col("group_problem_treatment").is_not_null())
                .then(pl.format("treatment: {}", "group_problem_treatment"))
            ).to_series()
            group_problem = group_reason.is_not_null().to_numpy()
            group_reason = group_reason.to_numpy() if group_problem.any() else None
            known_type = known_type | (metric_type == RATIO).fill_null(False).to_numpy()
            adjusted = pairs.get_column("group_adjusted_treatment").fill_null(False).to_numpy()
            cuped_binary = binary & adjusted
            binary = binary & ~adjusted  # CUPED-adjusted proportions are tested as means
            lost = np.zeros(size, bool)
            for side in ("control", "treatment"):
                if f"group_imprecise_{side}" in pairs.columns:
                    lost |= pairs.get_column(f"group_imprecise_{side}").fill_null(False).to_numpy()
        else:
            m_c, v_c = moments(n_c, s_c, q_c, binary)
            m_t, v_t = moments(n_t, s_t, q_t, binary)
            u_c, u_t = m_c, m_t
            difference = unadjusted_difference = m_t - m_c
            scale_c = np.sqrt(np.abs(q_c / n_c))
            group_problem = np.zeros(size, bool)
            group_reason = None
            cuped_binary = None
            lost = variance_lost(n_c, s_c, q_c, binary) | variance_lost(n_t, s_t, q_t, binary)
        missing_control, multiple_controls, mismatched = _pairing_problems(pairs)
        sums_impossible = (
            np.zeros(size, bool) if precomputed
            else impossible(n_t, s_t, q_t, binary) | impossible(n_c, s_c, q_c, binary) & ~missing_control
        )  # fmt: skip
        # a control mean that is zero up to the rounding of its sums is zero (no relative effect, no relative margin)
        zero_control_mean = np.abs(m_c) <= MEAN_NOISE * scale_c
        small = (n_c < 2) | (n_t < 2)  # a group problem of a too small group is reported as such
        # No test without a variance: none in both groups, or (rule `either`) none in one; never a negative one.
        negative = (v_c < 0) | (v_t < 0)
        no_variance = (v_c == 0) & (v_t == 0) | negative
        variance_reason = None
        if zero_variance == EITHER or negative.any():
            one = ((v_c <= 0) | (v_t <= 0)) if zero_variance == EITHER else negative
            single = one & ~((v_c == 0) & (v_t == 0))
            no_variance = no_variance | one
            if single.any():
                variance_reason = np.where(
                    single,
                    np.where((v_c <= 0), "zero or negative variance in the control group", "zero or negative variance in the treatment group"),
                    None,
                ).astype(object)
        hypothesis_problem = hyp.problem
        if hyp.present:
            zero_mean_margin = ~np.isnan(hyp.margin) & zero_control_mean & ~hyp.problem
            hypothesis_problem = hyp.problem | zero_mean_margin
        code = _status_codes(
            [
                ("invalid_input", ~known_type | mismatched | group_problem & ~missing_control & ~small | sums_impossible),
                ("missing_control", missing_control),
                ("multiple_controls", multiple_controls),
                ("invalid_method", unknown_method),
                ("invalid_alpha", ~((alphas > 0) & (alphas < 1))),
                ("invalid_hypothesis", hypothesis_problem),
                ("insufficient_sample", small),
                ("imprecise_sums", lost),
                ("zero_variance", no_variance),
                ("zero_control_mean", zero_control_mean),
            ],
            size,
        )  # fmt: skip
        zero_mean = _CODE["zero_control_mean"]
        all_ok = not code.any()  # fast path: no row needs masking
        inference_ok = (code == 0) | (code == zero_mean)
        estimate_ok = np.isin(code, _ESTIMATE_OK)

        def keep(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
            return values if all_ok else np.where(mask, values, np.nan)

        estimate = keep(estimate_ok, difference)
        se = keep(inference_ok, standard_error(v_c, n_c, v_t, n_t))
        df = np.where(is_t, welch_df(v_c, n_c, v_t, n_t), np.inf) if is_t.any() else np.full(size, np.inf)

        # Hypothesis of each row. spot-1-bonferroni (spotify-confidence `get_preference` and
        # `set_alpha_and_adjust_preference`): every row with a preferred direction is reported as a two-sided test
        # of its null value at twice the alpha; its bound on the preferred side equals the one-sided bound at alpha.
        null = null_value(hyp, m_c) if hyp.present else 0.0
        alternative = alternatives(hyp, two_sided_one_sided=spot1)
        row_alpha = np.where(direction != 0, 2.0 * alphas, alphas) if spot1 and directional else alphas
        q_row = quantile(row_alpha, df, is_t, alternative)
        ci_lower, ci_upper = interval(estimate, se, q_row, alternative)
        statistic = (estimate - null if hyp.present else estimate) / se
        ratio_rows = (~np.isnan(hyp.margin) & guardrail & ~zero_control_mean) if hyp.present else None
        if non_inferiority == RATIO_TEST and ratio_rows is not None and ratio_rows.any():
            # H0 mu_t <= theta0 mu_c (increase) with theta0 = 1 + null / mu_c = 1 -/+ m: the difference
            # mu_t - theta0 mu_c has variance v_t/n_t + theta0^2 v_c/n_c (Hauschke, Kieser & Hothorn 1999)
            theta0 = 1.0 + null / m_c
            ratio_se = np.sqrt(v_t / n_t + theta0 * theta0 * v_c / n_c)
            statistic = np.where(ratio_rows & inference_ok, (difference - (theta0 - 1.0) * m_c) / ratio_se, statistic)
            if is_t.any():
                df = np.where(ratio_rows & is_t, welch_df(theta0 * theta0 * v_c, n_c, v_t, n_t), df)
        p_value = hypothesis_p_value(statistic, df, is_t, alternative)

        if correction in STEPWISE:
            step = stepwise(pairs, fam, p_value, row_alpha, correction, ids=ids)
            adjusted_alpha, adjusted_p, significant = step.threshold, step.adjusted_p, step.significant
            interval_alpha, power_alpha = step.interval_alpha, row_alpha / step.m
        else:
            m = family_sizes(
                pairs, fam, correction, guardrail=guardrail, uncounted=uncounted, ids=ids, design=design
            )
            adjusted_alpha = row_alpha / m
            adjusted_p = np.minimum(p_value * m, 1.0)
            significant = None  # p < adjusted_alpha, evaluated on the output columns below
            interval_alpha = power_alpha = adjusted_alpha
        q_adjusted = quantile(interval_alpha, df, is_t, alternative)
        adj_lower, adj_upper = interval(estimate, se, q_adjusted, alternative)

        # Powered effect and required sample size: z rows, at the (Bonferroni-)adjusted alpha of the row's test
        # and the adjusted power; on z rows the adjusted critical value is z_a when the interval level is it.
        adj_power = float(power)
        if risk_aware:
            adj_power = adjusted_power(
                pairs, fam, correction, power, guardrail=guardrail, uncounted=uncounted, ids=ids, design=design
            )
        z_alpha = q_adjusted if power_alpha is interval_alpha else quantile(power_alpha, np.inf, False, alternative)
        z_sum = z_alpha + special.ndtri(adj_power)
        z_rows = inference_ok & ~is_t
        powered = powered_effect_continuous(z_sum, v_c, n_c, n_t)
        if not (all_ok and not is_t.any()):
            powered = np.where(z_rows, powered, np.nan)
        # Proportions tested for superiority use the treatment variance at p + x; non-inferiority rows keep the
        # control variance (spotify-confidence: the means are assumed equal under non-inferiority).
        # spotify-confidence searches the binary powered effect of a CUPED-adjusted proportion too, from the
        # control's unadjusted proportion and its adjusted variance (`z_test_linreg` with ORIGINAL_POINT_ESTIMATE).
        cuped_search = powered_effect == CONFIDENCE and cuped_binary is not None and bool(cuped_binary.any())
        searched = binary | cuped_binary if cuped_search else binary
        rows = z_rows & searched & ~guardrail if searched.any() else None
        if rows is not None and rows.any():
            if powered_effect == CONFIDENCE:
                p_c = np.where(cuped_binary, u_c, m_c) if cuped_search else m_c
                powered[rows] = powered_effect_binary(
                    z_sum[rows], p_c[rows], v_c[rows], n_c[rows], n_t[rows], (n_c + n_t)[rows]
                )
            else:  # closed form on whole columns, then picked: cheaper than gathering half the rows
                sign = np.where(direction == -1, -1.0, 1.0) if directional else 1.0
                closed = powered_effect_binary_closed_form(z_sum, m_c, v_c, n_c, n_t, None, sign)
                powered = np.where(rows, closed, powered)

        required = None
        if hyp.present:
            effect = hypothetical_effect(hyp, m_c, null)
            rows = z_rows & np.isfinite(effect) & (effect != 0)
            if rows.any():
                required = np.full(size, np.nan)
                required[rows] = required_sample_size_rows(
                    z_sum[rows], effect[rows], m_c[rows], v_c[rows], (n_c / n_t)[rows], (binary & ~guardrail)[rows]
                )[0]

        base = u_c if relative_method == DELTA else m_c
        control_mean = base if all_ok else np.where(estimate_ok & ~zero_control_mean, base, np.nan)
        relative_p = p_value
        relative_se = None
        if relative_method == DELTA:  # delta-method interval of mean_t / mean_c - 1 (Deng et al. 2018)
            relative = estimate / control_mean
            relative_se = keep(inference_ok, np.sqrt(delta_relative_variance(control_mean, v_c, n_c, u_t, v_t, n_t)))
            rel_alternative = alternative * np.sign(control_mean).astype(np.int8) if alternative.any() else alternative
            rel_lower, rel_upper = interval(relative, relative_se, q_row, rel_alternative)
            relative_null = null / control_mean if hyp.present else 0.0
            relative_p = hypothesis_p_value((relative - relative_null) / relative_se, df, is_t, rel_alternative)
        elif relative_method == FIELLER:  # the ratio's Fieller interval, minus 1
            relative = estimate / control_mean
            lo, hi = fieller_interval(control_mean, np.sqrt(v_c / n_c), m_t, np.sqrt(v_t / n_t), q_row)
            if alternative.any():  # one-sided: open on the side the test does not bound (flipped by a negative mean)
                side = alternative * np.sign(control_mean)
                lo, hi = np.where(side < 0, -np.inf, lo), np.where(side > 0, np.inf, hi)
            rel_lower = np.where(np.isfinite(relative) & inference_ok, lo - 1.0, np.nan)
            rel_upper = np.where(np.isfinite(relative) & inference_ok, hi - 1.0, np.nan)
        else:  # spotify-confidence: the absolute interval divided by the control mean
            relative, rel_lower, rel_upper = relative_interval(estimate, ci_lower, ci_upper, control_mean)
        relative_p = np.where(np.isfinite(relative), relative_p, np.nan)

        # Deterioration (inferiority) test of every row with a preferred direction, Bonferroni over the family's
        # directional metrics x treatments (the design's, when given); rows without a preferred direction have none.
        det_p = det_alpha = is_det = preferred = None
        if directional:
            det_rows = (direction != 0) & inference_ok
            det_p = np.where(det_rows, deterioration_p_value(estimate, se, df, is_t, direction), np.nan)
            base_alpha = alphas if deterioration_alpha is None else np.full(size, float(deterioration_alpha))
            det_m = np.maximum(np.bincount(ids, direction != 0, ids.size)[ids], 1.0)
            if design is not None:
                det_m = np.where(np.isfinite(design.metrics * design.treatments), design.metrics * design.treatments, det_m)
            det_alpha = np.where(det_rows, base_alpha / (1.0 if correction == NONE else det_m), np.nan)
            is_det = np.where(det_rows, det_p < det_alpha, np.nan)
            rejected = p_value < adjusted_alpha if significant is None else significant
            preferred = np.where(
                (direction != 0) & inference_ok, rejected & (direction * (estimate - null) > 0), np.nan
            )

        # A row still ok must have every test column defined; anything else is a numerical problem, said so.
        finite = np.isfinite(estimate + se + p_value + relative)
    code = np.where((code == 0) & ~finite, len(STATUSES), code).astype(np.uint8)
    inference = (code == 0) | (code == zero_mean)
    key = [c for c in pairs.columns if c in (*BASE_KEY, SEGMENT)]
    hypothesis_columns = (
        {
            "null_hypothesis": np.where(estimate_ok, null, np.nan),
            "preference": pl.Series(direction).replace_strict(PREFERENCE_NAMES, return_dtype=pl.String),
            "alternative": pl.Series(alternative).replace_strict(ALTERNATIVE_NAMES, return_dtype=pl.String),
        }
        if hyp.present
        else {"null_hypothesis": 0.0 if all_ok else np.where(estimate_ok, 0.0, np.nan), "preference": TWO_SIDED,
              "alternative": TWO_SIDED}
    )
    floats = {
        "n_control": n_c, "n_treatment": n_t, "mean_control": keep(estimate_ok, m_c),
        "mean_treatment": keep(estimate_ok, m_t), "estimate": estimate, "std_error": se,
        "ci_lower": ci_lower, "ci_upper": ci_upper, "ci_level": keep(inference_ok, 1.0 - row_alpha),
        "relative_estimate": relative, "relative_ci_lower": rel_lower, "relative_ci_upper": rel_upper,
        "relative_p_value": keep(inference_ok, relative_p), "statistic": keep(inference_ok, statistic),
        "p_value": p_value, "alpha": alphas,
        "adjusted_alpha": adjusted_alpha, "adjusted_p_value": adjusted_p, "adjusted_ci_lower": adj_lower,
        "adjusted_ci_upper": adj_upper, "adjusted_ci_level": keep(inference_ok, 1.0 - interval_alpha),
        "powered_effect": powered, "adjusted_power": adj_power,
        "required_sample_size": required, "null_hypothesis": hypothesis_columns.pop("null_hypothesis"),
        "deterioration_p_value": det_p, "deterioration_adjusted_alpha": det_alpha,
    }  # fmt: skip
    if relative_se is not None:
        floats["relative_std_error"] = relative_se
    out = pairs.select(*key, "control", "treatment", "metric_type").with_columns(
        methods.alias("method"),
        *(_constant_or_series(name, values, pl.Float64) for name, values in floats.items()),
        *(_constant_or_series(name, values, pl.String) for name, values in hypothesis_columns.items()),
        status=(
            pl.lit(OK) if not code.any()
            else pl.Series(code).replace_strict(dict(enumerate((*STATUSES, "numerical_error"))), return_dtype=pl.String)
        ),
        status_reason=_reasons(pairs, code, hyp.reason, alphas, group_reason, variance_reason),
        is_significant=_constant_or_series(
            "is_significant", None if significant is None else np.where(inference, significant, np.nan), pl.Float64
        ),
        is_significant_preferred=_constant_or_series("is_significant_preferred", preferred, pl.Float64),
        is_deteriorating=_constant_or_series("is_deteriorating", is_det, pl.Float64),
    )  # fmt: skip
    out = out.with_columns(
        pl.col("n_control", "n_treatment").cast(pl.Int64),
        pl.col("is_significant", "is_significant_preferred", "is_deteriorating").cast(pl.Boolean),
    )
    if correction not in STEPWISE:  # exactly the library's rule (and no rounding through a float round-trip)
        out = out.with_columns(is_significant=pl.col("p_value") < pl.col("adjusted_alpha"))
    extra = ["relative_std_error"] if relative_se is not None else []
    if "unadjusted_mean_control" in pairs.columns:  # CUPED: the unadjusted test and the variance reduction beside it
        with np.errstate(all="ignore"):
            uv_c, uv_t = _floats(pairs, "unadjusted_variance_control"), _floats(pairs, "unadjusted_variance_treatment")
            unadjusted_se = standard_error(uv_c, n_c, uv_t, n_t)
            reduction = 1.0 - (v_c / n_c + v_t / n_t) / (uv_c / n_c + uv_t / n_t)
            unadjusted_estimate = np.where(estimate_ok, unadjusted_difference, np.nan)
        out = out.with_columns(
            unadjusted_estimate=pl.Series(unadjusted_estimate, nan_to_null=True),
            unadjusted_std_error=pl.Series(unadjusted_se, nan_to_null=True),
            variance_reduction_rate=pl.Series(reduction, nan_to_null=True),
        )
        extra += ["unadjusted_estimate", "unadjusted_std_error", "variance_reduction_rate"]
    return out.select(*key, *OUTPUT, *extra)


def with_group_moments(stats: pl.DataFrame, cuped: str = CONFIDENCE_CUPED) -> pl.DataFrame:
    """Per-group moments, before pairing, of ratio metrics (delta method) and of CUPED-adjusted metrics (the rows
    that carry covariate sums; one slope per comparison key, `cuped` convention `confidence` as
    spotify-confidence's `z-test-linreg`, or `gbstats`); plain mean and proportion input passes through when no
    row needs them. `group_adjusted` marks the rows CUPED adjusted."""
    ratio = bool((stats.get_column("metric_type") == RATIO).any())
    shifted = any(c in stats.columns and stats.get_column(c).is_not_null().any() for c in SHIFT_COLUMNS)
    has_covariate = pl.col(COVARIATE).is_not_null() if COVARIATE in stats.columns else pl.lit(False)
    with_covariate = stats.filter(has_covariate)
    if not (ratio or shifted or with_covariate.height):
        return stats
    if shifted:
        stats = with_shift_columns(stats)
    parts = []
    if with_covariate.height:
        adjusted = cuped_group_moments(with_covariate, key=comparison_key(stats), convention=cuped)
        parts.append(adjusted.with_columns(group_adjusted=pl.lit(True)))
    without = stats.filter(~has_covariate)
    if without.height:
        plain = metric_group_moments(without)
        parts.append(plain.with_columns(
            unadjusted_mean=pl.col("mean"), unadjusted_variance=pl.col("variance"), group_adjusted=pl.lit(False)
        ))  # fmt: skip
    groups = pl.concat(parts, how="diagonal_relaxed")
    if shifted:  # the groups of a comparison share their shift, or their moments are not comparable
        several = pl.col("value_shift").fill_null(0.0).n_unique().over(comparison_key(stats)) > 1
        groups = groups.with_columns(
            input_problem=pl.when(several & pl.col("input_problem").is_null())
            .then(pl.lit("the groups' sums have different value_shift values"))
            .otherwise(pl.col("input_problem"))
        )
    return groups.rename({
        "mean": "group_mean", "variance": "group_variance", "input_problem": "group_problem",
        "imprecise": "group_imprecise",
    })  # fmt: skip


def compare(
    stats: pl.DataFrame,
    *,
    alpha: float = 0.05,
    method: str = Z,
    power: float = 0.8,
    family: Sequence[str] = ("experiment_id", "as_of_date"),
    correction: str = BONFERRONI,
    powered_effect: str = CLOSED_FORM,
    deterioration_alpha: float | None = None,
    relative_method: str = FIELLER,
    non_inferiority: str = RATIO_TEST,
    cuped: str = CONFIDENCE_CUPED,
    zero_variance: str = BOTH,
) -> pl.DataFrame:
    """Compare every treatment with its control per (experiment_id, metric_id, as_of_date[, segment]).

    Input: one row per variant (`variant`, `is_control`, `metric_type`, `n`, `sum`, `sum_sq`; optional per-row
    `alpha`, `method`, `role`, hypothesis columns `preferred_direction`, `non_inferiority_margin[_absolute]`,
    `minimum_detectable_effect[_absolute]`, `alternative`, and the design counts `design_*`). Ratio metrics
    (`metric_type` ratio) add `den_sum`, `den_sum_sq`, `cross_sum`; CUPED adds the covariate's `cov_sum`,
    `cov_sum_sq` and `cross_sum` (sum of value x covariate) on the rows it applies to (rows without them are
    tested unadjusted), and the output then carries the unadjusted estimate and the variance reduction.

    Conventions, chosen by argument: spotify-confidence 4.1.0 (`relative_method="simple"`,
    `non_inferiority="plug_in"`, `correction="spot-1-bonferroni"`, `powered_effect="confidence"`) or GrowthBook
    gbstats 0.8.0 (`method="t"`, `relative_method="delta"`, `cuped="gbstats"`, `correction="none"`,
    `zero_variance="either"`, and a per-row `preferred_direction` for its one-sided tests); the defaults
    are the nightly job's. See `analyse`.
    """
    key = comparison_key(stats)
    fam = family_key(stats, family)
    if not set(fam) <= set(key):
        raise ValueError(f"compare: family columns {sorted(set(fam) - set(key))} are not comparison-key columns {key}")
    if cuped not in CUPED_CONVENTIONS:
        raise ValueError(f"compare: cuped must be one of {CUPED_CONVENTIONS}, got {cuped!r}")
    out = analyse(
        pair_variants(with_group_moments(stats, cuped)), alpha=alpha, method=method, power=power, family=family,
        correction=correction, powered_effect=powered_effect, deterioration_alpha=deterioration_alpha,
        relative_method=relative_method, non_inferiority=non_inferiority, zero_variance=zero_variance,
    )  # fmt: skip
    return out.sort([*fam, *[k for k in key if k not in fam], "treatment"])

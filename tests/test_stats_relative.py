"""Relative effects (`pipelines.stats.relative`) and the one-/two-sided z / Welch t tests of `compare`, against scipy,
Monte Carlo and hand computations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pipelines.stats import compare, cuped_group_moments
from pipelines.stats.relative import delta_relative_variance
from pipelines.stats.two_sample import relative_interval

DIRECTION = {"two-sided": None, "greater": "increase", "less": "decrease"}


def _rows(c: np.ndarray, t: np.ndarray, **treatment) -> pl.DataFrame:
    """Variant rows of one experiment per leading index from raw per-unit data of shape (R, n); `treatment`:
    per-row columns (length R) on the treatment rows."""
    reps = c.shape[0]
    parts = []
    for variant, x in (("control", c), ("treatment", t)):
        extra = {k: v for k, v in treatment.items()} if variant == "treatment" else {k: [None] * reps for k in treatment}
        parts.append(pl.DataFrame(
            {"experiment_id": np.arange(reps), "metric_id": "m", "as_of_date": 0, "variant": variant,
             "is_control": variant == "control", "metric_type": "mean", "n": np.full(reps, x.shape[1]),
             "sum": x.sum(1), "sum_sq": (x * x).sum(1), **extra},
            strict=False,
        ))  # fmt: skip
    return pl.concat(parts, how="vertical_relaxed")


def _compare(frame: pl.DataFrame, alternative: str = "two-sided", **kwargs) -> pl.DataFrame:
    """compare() without a correction, the alternative given as the metric's preferred direction."""
    direction = DIRECTION[alternative]
    frame = frame.with_columns(preferred_direction=pl.lit(direction, dtype=pl.String))
    return compare(frame, correction="none", **({"relative_method": "delta"} | kwargs)).sort("experiment_id")


def test_welch_t_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(10)
    c, t = rng.normal(5.0, 2.0, (1, 40)), rng.normal(6.0, 4.0, (1, 70))
    out = _compare(_rows(c, t), method="t").row(0, named=True)
    ref = stats.ttest_ind(t[0], c[0], equal_var=False)
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert out["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (out["ci_lower"], out["ci_upper"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    for alt in ("greater", "less"):
        one = _compare(_rows(c, t), alt, method="t").row(0, named=True)
        assert one["alternative"] == alt
        assert one["p_value"] == pytest.approx(stats.ttest_ind(t[0], c[0], equal_var=False, alternative=alt).pvalue, rel=1e-10)


def test_delta_relative_variance_matches_monte_carlo() -> None:
    rng = np.random.default_rng(11)
    reps, n_c, n_t = 20000, 200, 300
    c = rng.exponential(4.0, (reps, n_c))
    t = rng.exponential(4.4, (reps, n_t))
    rel = t.mean(1) / c.mean(1) - 1.0
    predicted = delta_relative_variance(4.0, 16.0, n_c, 4.4, 4.4**2, n_t)
    assert rel.var(ddof=1) == pytest.approx(predicted, rel=0.05)


def test_delta_relative_interval_covers_at_nominal_rate() -> None:
    rng = np.random.default_rng(12)
    reps, alpha, truth = 4000, 0.1, 0.1
    c = rng.lognormal(1.0, 0.8, (reps, 250))
    t = rng.lognormal(1.0, 0.8, (reps, 250)) * (1 + truth)
    out = _compare(_rows(c, t), alpha=alpha, method="t")
    covered = ((out["relative_ci_lower"] <= truth) & (truth <= out["relative_ci_upper"])).to_numpy()
    assert abs(covered.mean() - (1 - alpha)) < 3.5 * np.sqrt(alpha * (1 - alpha) / reps)


def test_aa_rejection_rates_are_nominal_for_all_alternatives() -> None:
    rng = np.random.default_rng(13)
    reps, alpha = 4000, 0.05
    # n large enough that the skew of the ratio of means does not bias one-sided relative tests
    c, t = rng.gamma(2.0, 3.0, (reps, 1000)), rng.gamma(2.0, 3.0, (reps, 1200))
    band = 3.5 * np.sqrt(alpha * (1 - alpha) / reps)
    rows = _rows(c, t)
    for alternative in ("two-sided", "greater", "less"):
        for method in ("z", "t"):
            out = _compare(rows, alternative, alpha=alpha, method=method)
            for column in ("p_value", "relative_p_value"):
                rate = (out[column].to_numpy() < alpha).mean()
                assert abs(rate - alpha) < band, (alternative, method, column, rate)


def test_simple_convention_divides_the_absolute_interval_by_the_control_mean() -> None:
    rng = np.random.default_rng(14)
    c, t = rng.normal(-3.0, 1.0, (3, 50)), rng.normal(-2.5, 1.0, (3, 50))  # negative control mean flips bounds
    out = _compare(_rows(c, t), method="z", relative_method="simple")
    rel, lo, hi = relative_interval(
        out["estimate"].to_numpy(), out["ci_lower"].to_numpy(), out["ci_upper"].to_numpy(), out["mean_control"].to_numpy()
    )
    np.testing.assert_allclose(out["relative_estimate"].to_numpy(), rel)
    np.testing.assert_allclose(out["relative_ci_lower"].to_numpy(), lo)
    np.testing.assert_allclose(out["relative_ci_upper"].to_numpy(), hi)
    assert (out["relative_ci_lower"] <= out["relative_ci_upper"]).all()
    np.testing.assert_allclose(out["relative_p_value"].to_numpy(), out["p_value"].to_numpy())


def test_delta_uses_unadjusted_means_for_base_and_variance() -> None:
    """CUPED: the delta-method relative effect divides the adjusted difference by the control's unadjusted mean,
    and its variance uses the unadjusted means with the adjusted variances (gbstats 0.8.0)."""
    rng = np.random.default_rng(17)
    rows = []
    for variant, shift in (("control", 0.0), ("treatment", 0.5)):
        x = rng.normal(10.0, 2.0, 300)
        y = 8.0 + 0.7 * (x - 10.0) + rng.normal(0.0, 1.0, 300) + shift
        rows.append({"experiment_id": 0, "metric_id": "m", "as_of_date": 0, "variant": variant,
                     "is_control": variant == "control", "metric_type": "mean", "n": 300, "sum": y.sum(),
                     "sum_sq": (y * y).sum(), "cov_sum": x.sum(), "cov_sum_sq": (x * x).sum(),
                     "cross_sum": (x * y).sum()})  # fmt: skip
    frame = pl.DataFrame(rows)
    out = compare(frame, method="t", relative_method="delta", cuped="gbstats", correction="none").row(0, named=True)
    g = {r["variant"]: r for r in cuped_group_moments(frame, convention="gbstats").to_dicts()}
    c, t = g["control"], g["treatment"]
    assert c["mean"] != pytest.approx(c["unadjusted_mean"], rel=1e-3)  # the adjustment moved the means
    assert out["relative_estimate"] == pytest.approx((t["mean"] - c["mean"]) / c["unadjusted_mean"], rel=1e-12)
    var = delta_relative_variance(c["unadjusted_mean"], c["variance"], 300, t["unadjusted_mean"], t["variance"], 300)
    assert out["relative_std_error"] == pytest.approx(np.sqrt(var), rel=1e-12)


def test_one_sided_intervals_are_open_at_one_end() -> None:
    rng = np.random.default_rng(15)
    c, t = rng.normal(0, 1, (1, 80)), rng.normal(0.5, 1, (1, 80))
    rows = _rows(c, t)
    two = _compare(rows, alpha=0.1).row(0, named=True)
    greater = _compare(rows, "greater", alpha=0.05).row(0, named=True)
    less = _compare(rows, "less", alpha=0.05).row(0, named=True)
    assert greater["ci_upper"] == np.inf and less["ci_lower"] == -np.inf
    assert greater["relative_ci_upper"] == np.inf and less["relative_ci_lower"] == -np.inf
    assert greater["ci_lower"] == pytest.approx(two["ci_lower"]) and less["ci_upper"] == pytest.approx(two["ci_upper"])
    assert greater["p_value"] == pytest.approx(two["p_value"] / 2) and less["p_value"] == pytest.approx(1 - two["p_value"] / 2)


def test_row_options_override_arguments() -> None:
    rng = np.random.default_rng(16)
    c, t = rng.normal(0, 1, (2, 30)), rng.normal(0, 1, (2, 30))
    rows = _rows(c, t, alpha=[0.05, 0.2], method=["z", "welch"], preferred_direction=[None, "increase"])
    out = compare(rows, alpha=0.01, method="t", correction="none").sort("experiment_id")
    assert out["method"].to_list() == ["z", "t"]
    assert out["ci_level"].to_list() == pytest.approx([0.95, 0.8])
    assert np.isfinite(out["ci_upper"][0]) and np.isinf(out["ci_upper"][1])
    assert out["alternative"].to_list() == ["two-sided", "greater"]


def test_zero_control_mean_voids_only_the_relative_columns() -> None:
    c = np.array([[-1.0, 1.0] * 25])
    t = c + 0.2
    out = _compare(_rows(c, t)).row(0, named=True)
    assert out["status"] == "zero_control_mean" and "control mean is 0" in out["status_reason"]
    assert out["p_value"] is not None and out["ci_lower"] is not None
    assert out["relative_estimate"] is None and out["relative_ci_lower"] is None and out["relative_p_value"] is None


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"n": 1, "sum": 1.0, "sum_sq": 1.0}, "insufficient_sample"),
        ({"sum": 20.0, "sum_sq": 20.0}, "zero_variance"),  # every control value is 1 ...
        ({"sum": None}, "invalid_input"),
        ({"sum_sq": 1.0}, "invalid_input"),  # sum^2 > n sum_sq: a negative variance
        ({"alpha": 1.5}, "invalid_alpha"),
        ({"method": "bayes"}, "invalid_method"),
        ({"alternative": "sideways"}, "invalid_hypothesis"),
    ],
)
def test_degenerate_rows_give_null_and_reason(change: dict, status: str) -> None:
    base = {"experiment_id": 0, "metric_id": "m", "as_of_date": 0, "metric_type": "mean", "n": 20}
    control = base | {"variant": "control", "is_control": True, "sum": 20.0, "sum_sq": 40.0}
    treatment = base | {"variant": "treatment", "is_control": False, "sum": 30.0, "sum_sq": 65.0}
    if status == "zero_variance":  # ... and so is every treatment value
        treatment |= {"sum": 20.0, "sum_sq": 20.0}
    target = treatment if set(change) <= {"alpha", "method", "alternative"} else control
    target |= change
    out = compare(pl.DataFrame([control, treatment], infer_schema_length=None), relative_method="delta").row(0, named=True)
    assert out["status"] == status and out["status_reason"], out
    for column in ("std_error", "ci_lower", "ci_upper", "p_value", "relative_ci_lower", "relative_p_value"):
        assert out[column] is None, column

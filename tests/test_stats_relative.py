"""Relative effects and the one-/two-sided z / Welch t tests of `pipelines.stats.relative`."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pipelines.stats.relative import (
    SIMPLE,
    delta_relative_variance,
    effect_tests,
    pair_with_control,
    pairing_status,
)
from pipelines.stats.two_sample import relative_interval


def _pairs(c: np.ndarray, t: np.ndarray, **extra) -> pl.DataFrame:
    """One comparison row per leading index from raw per-unit data of shape (R, n)."""
    return pl.DataFrame(
        {
            "n_control": np.full(c.shape[0], c.shape[1]),
            "n_treatment": np.full(t.shape[0], t.shape[1]),
            "mean_control": c.mean(1),
            "mean_treatment": t.mean(1),
            "var_control": c.var(1, ddof=1),
            "var_treatment": t.var(1, ddof=1),
            **extra,
        }
    )


def test_welch_t_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(10)
    c, t = rng.normal(5.0, 2.0, (1, 40)), rng.normal(6.0, 4.0, (1, 70))
    out = effect_tests(_pairs(c, t), method="t").row(0, named=True)
    ref = stats.ttest_ind(t[0], c[0], equal_var=False)
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert out["df"] == pytest.approx(ref.df, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (out["ci_lower"], out["ci_upper"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    for alt, scipy_alt in (("greater", "greater"), ("less", "less")):
        one = effect_tests(_pairs(c, t), method="t", alternative=alt).row(0, named=True)
        assert one["p_value"] == pytest.approx(stats.ttest_ind(t[0], c[0], equal_var=False, alternative=scipy_alt).pvalue, rel=1e-10)


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
    out = effect_tests(_pairs(c, t), alpha=alpha, method="t")
    covered = ((out["relative_ci_lower"] <= truth) & (truth <= out["relative_ci_upper"])).to_numpy()
    assert abs(covered.mean() - (1 - alpha)) < 3.5 * np.sqrt(alpha * (1 - alpha) / reps)


def test_aa_rejection_rates_are_nominal_for_all_alternatives() -> None:
    rng = np.random.default_rng(13)
    reps, alpha = 4000, 0.05
    # n large enough that the skew of the ratio of means does not bias one-sided relative tests
    c, t = rng.gamma(2.0, 3.0, (reps, 1000)), rng.gamma(2.0, 3.0, (reps, 1200))
    band = 3.5 * np.sqrt(alpha * (1 - alpha) / reps)
    for alternative in ("two-sided", "greater", "less"):
        for method in ("z", "t"):
            out = effect_tests(_pairs(c, t), alpha=alpha, method=method, alternative=alternative)
            for column in ("p_value", "relative_p_value"):
                rate = (out[column].to_numpy() < alpha).mean()
                assert abs(rate - alpha) < band, (alternative, method, column, rate)


def test_simple_convention_divides_the_absolute_interval_by_the_control_mean() -> None:
    rng = np.random.default_rng(14)
    c, t = rng.normal(-3.0, 1.0, (3, 50)), rng.normal(-2.5, 1.0, (3, 50))  # negative control mean flips bounds
    out = effect_tests(_pairs(c, t), method="z", relative_method=SIMPLE)
    rel, lo, hi = relative_interval(
        out["estimate"].to_numpy(), out["ci_lower"].to_numpy(), out["ci_upper"].to_numpy(), out["mean_control"].to_numpy()
    )
    np.testing.assert_allclose(out["relative_estimate"].to_numpy(), rel)
    np.testing.assert_allclose(out["relative_ci_lower"].to_numpy(), lo)
    np.testing.assert_allclose(out["relative_ci_upper"].to_numpy(), hi)
    assert (out["relative_ci_lower"] <= out["relative_ci_upper"]).all()
    np.testing.assert_allclose(out["relative_p_value"].to_numpy(), out["p_value"].to_numpy())


def test_delta_uses_unadjusted_means_for_base_and_variance() -> None:
    base = dict(n_control=[100], n_treatment=[100], mean_control=[9.0], mean_treatment=[10.0], var_control=[4.0],
                var_treatment=[5.0], unadjusted_mean_control=[8.0], unadjusted_mean_treatment=[8.5])  # fmt: skip
    out = effect_tests(pl.DataFrame(base), method="t").row(0, named=True)
    assert out["relative_estimate"] == pytest.approx(1.0 / 8.0)
    var = 5.0 / (64 * 100) + 4.0 * 8.5**2 / (8.0**4 * 100)
    assert out["relative_std_error"] == pytest.approx(np.sqrt(var))


def test_one_sided_intervals_are_open_at_one_end() -> None:
    rng = np.random.default_rng(15)
    c, t = rng.normal(0, 1, (1, 80)), rng.normal(0.5, 1, (1, 80))
    two = effect_tests(_pairs(c, t), alpha=0.1).row(0, named=True)
    greater = effect_tests(_pairs(c, t), alpha=0.05, alternative="greater").row(0, named=True)
    less = effect_tests(_pairs(c, t), alpha=0.05, alternative="lesser").row(0, named=True)
    assert greater["ci_upper"] == np.inf and less["ci_lower"] == -np.inf
    assert greater["ci_lower"] == pytest.approx(two["ci_lower"]) and less["ci_upper"] == pytest.approx(two["ci_upper"])
    assert greater["p_value"] == pytest.approx(two["p_value"] / 2) and less["p_value"] == pytest.approx(1 - two["p_value"] / 2)


def test_row_options_override_arguments() -> None:
    rng = np.random.default_rng(16)
    c, t = rng.normal(0, 1, (2, 30)), rng.normal(0, 1, (2, 30))
    out = effect_tests(_pairs(c, t, alpha=[0.05, 0.2], method=["z", "welch"], alternative=[None, "greater"]))
    assert np.isinf(out["df"][0]) and np.isfinite(out["df"][1])
    assert np.isfinite(out["ci_upper"][0]) and np.isinf(out["ci_upper"][1])


def test_zero_control_mean_voids_only_the_relative_columns() -> None:
    out = effect_tests(
        pl.DataFrame(dict(n_control=[50], n_treatment=[50], mean_control=[0.0], mean_treatment=[0.2],
                          var_control=[1.0], var_treatment=[1.0]))  # fmt: skip
    ).row(0, named=True)
    assert out["status"] == "ok" and out["p_value"] is not None
    assert out["relative_estimate"] is None and out["relative_ci_lower"] is None and out["relative_p_value"] is None
    assert "control mean is 0" in out["relative_status_reason"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"n_control": [1]}, "insufficient_sample"),
        ({"var_control": [0.0], "var_treatment": [0.0]}, "zero_variance"),
        ({"var_control": [None]}, "invalid_input"),
        ({"var_control": [-1.0]}, "invalid_input"),
        ({"alpha": [1.5]}, "invalid_alpha"),
        ({"method": ["bayes"]}, "invalid_method"),
        ({"alternative": ["sideways"]}, "invalid_alternative"),
        ({"status": ["invalid_input"], "status_reason": ["control: denominator sum is 0"]}, "invalid_input"),
    ],
)
def test_degenerate_rows_give_null_and_reason(change: dict, status: str) -> None:
    row = dict(n_control=[20], n_treatment=[20], mean_control=[1.0], mean_treatment=[1.5], var_control=[1.0],
               var_treatment=[1.0]) | change  # fmt: skip
    out = effect_tests(pl.DataFrame(row, strict=False)).row(0, named=True)
    assert out["status"] == status and out["status_reason"]
    for column in ("std_error", "ci_lower", "ci_upper", "p_value", "relative_ci_lower", "relative_p_value"):
        assert out[column] is None, column
    assert out["relative_status_reason"]


def test_pairing_flags_missing_and_multiple_controls() -> None:
    groups = pl.DataFrame(
        {"k": ["a", "a", "b", "c", "c", "c"], "variant": ["c", "t", "t", "c", "c2", "t"],
         "is_control": [True, False, False, True, True, False], "x": [1, 2, 3, 4, 5, 6]}  # fmt: skip
    )
    out = pairing_status(pair_with_control(groups, ["k"], ("x",))).sort("k")
    assert out["status"].to_list() == ["ok", "missing_control", "multiple_controls"]
    assert out["x_control"][0] == 1 and out["x_treatment"][0] == 2

"""Unit tests of the two-sample engine (`pipelines.stats.compare`) against scipy and hand computations."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

from pipelines.stats import compare
from pipelines.stats.sufficient import moments

DATE = dt.date(2024, 1, 1)
FLOAT_COLUMNS = (
    "mean_control", "mean_treatment", "estimate", "std_error", "ci_lower", "ci_upper", "relative_estimate",
    "relative_ci_lower", "relative_ci_upper", "p_value", "alpha", "adjusted_alpha", "adjusted_p_value",
    "adjusted_ci_lower", "adjusted_ci_upper", "powered_effect", "null_hypothesis", "adjusted_power",
    "required_sample_size", "deterioration_p_value", "deterioration_adjusted_alpha",
)  # fmt: skip


def frame(rows: list[dict], **const) -> pl.DataFrame:
    """Input rows with defaults for the key columns."""
    base = {"experiment_id": "e1", "metric_id": "m1", "as_of_date": DATE, "metric_type": "mean"}
    return pl.DataFrame([{**base, **const, **r} for r in rows])


def group(variant: str, n: int, total: float, sum_sq: float, **extra) -> dict:
    return {"variant": variant, "is_control": variant == "control", "n": n, "sum": total, "sum_sq": sum_sq, **extra}


def from_moments(n: int, mean: float, sd: float) -> tuple[float, float]:
    """sum and sum_sq reproducing a sample mean and sample standard deviation."""
    total = n * mean
    return total, sd**2 * (n - 1) + total**2 / n


def assert_no_nan(out: pl.DataFrame) -> None:
    for c in FLOAT_COLUMNS:
        assert out[c].is_nan().sum() == 0, c
    assert out["status"].null_count() == 0
    ok = out["status"] == "ok"
    assert out.filter(ok)["status_reason"].null_count() == ok.sum()
    assert out.filter(~ok)["status_reason"].null_count() == 0


def test_sufficient_statistics_mean_and_variance() -> None:
    mean, variance = moments(np.array([4.0, 10.0]), np.array([10.0, 3.0]), np.array([30.0, 3.0]), np.array([False, True]))
    assert mean.tolist() == pytest.approx([2.5, 0.3])
    assert variance.tolist() == pytest.approx([np.var([1, 2, 3, 4], ddof=1), 0.3 * 0.7])


def test_welch_t_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    rows, expected = [], []
    for i in range(50):
        n1, n2 = rng.integers(3, 60, size=2)
        m1, m2 = rng.normal(5, 2, size=2)
        s1, s2 = rng.uniform(0.5, 4, size=2)
        rows += [
            group("control", int(n1), *from_moments(n1, m1, s1), experiment_id=f"e{i:02d}"),
            group("treatment", int(n2), *from_moments(n2, m2, s2), experiment_id=f"e{i:02d}"),
        ]
        res = st.ttest_ind_from_stats(m2, s2, n2, m1, s1, n1, equal_var=False)
        df = (s1**2 / n1 + s2**2 / n2) ** 2 / ((s1**2 / n1) ** 2 / (n1 - 1) + (s2**2 / n2) ** 2 / (n2 - 1))
        se = math.sqrt(s1**2 / n1 + s2**2 / n2)
        q = st.t.ppf(0.975, df)
        expected.append((m2 - m1, se, res.pvalue, m2 - m1 - q * se, m2 - m1 + q * se))
    out = compare(frame(rows), method="t", alpha=0.05)
    assert (out["status"] == "ok").all()
    got = out.select("estimate", "std_error", "p_value", "ci_lower", "ci_upper").rows()
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-9, atol=1e-12)
    assert out["method"].unique().to_list() == ["t"]
    assert out["powered_effect"].null_count() == out.height  # spotify-confidence: no powered effect for the t-test


def test_z_test_matches_hand_computation() -> None:
    n1, n2, m1, m2, s1, s2 = 400, 420, 10.0, 10.5, 3.0, 3.5
    out = compare(frame([group("control", n1, *from_moments(n1, m1, s1)), group("b", n2, *from_moments(n2, m2, s2))]))
    r = out.row(0, named=True)
    se = math.sqrt(s1**2 / n1 + s2**2 / n2)
    z = (m2 - m1) / se
    q = st.norm.ppf(0.975)
    assert r["estimate"] == pytest.approx(0.5, rel=1e-12)
    assert r["std_error"] == pytest.approx(se, rel=1e-12)
    assert r["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-10)
    assert (r["ci_lower"], r["ci_upper"]) == pytest.approx((0.5 - q * se, 0.5 + q * se), rel=1e-12)
    assert r["relative_estimate"] == pytest.approx(0.05, rel=1e-12)
    # default relative interval: Fieller's, the ratios r with (m2 - r m1)^2 <= q^2 (s2^2/n2 + r^2 s1^2/n1), minus 1
    ends = np.roots([m1**2 - q**2 * s1**2 / n1, -2 * m1 * m2, m2**2 - q**2 * s2**2 / n2])
    assert (r["relative_ci_lower"], r["relative_ci_upper"]) == pytest.approx(tuple(sorted(ends - 1)), rel=1e-9)
    assert r["relative_p_value"] == r["p_value"]  # the interval excludes 0 exactly when the test rejects
    # delta method: var = s2^2/(m1^2 n2) + s1^2 m2^2/(m1^4 n1) (Deng et al. 2018), with its own p-value
    delta = compare(frame([group("control", n1, *from_moments(n1, m1, s1)), group("b", n2, *from_moments(n2, m2, s2))]),
                    relative_method="delta").row(0, named=True)  # fmt: skip
    rel_se = math.sqrt(s2**2 / (m1**2 * n2) + s1**2 * m2**2 / (m1**4 * n1))
    assert (delta["relative_ci_lower"], delta["relative_ci_upper"]) == pytest.approx(
        (0.05 - q * rel_se, 0.05 + q * rel_se), rel=1e-12
    )
    assert delta["relative_p_value"] == pytest.approx(2 * st.norm.sf(0.05 / rel_se), rel=1e-10)
    simple = compare(frame([group("control", n1, *from_moments(n1, m1, s1)), group("b", n2, *from_moments(n2, m2, s2))]),
                     relative_method="simple").row(0, named=True)  # fmt: skip
    assert (simple["relative_ci_lower"], simple["relative_ci_upper"]) == pytest.approx(
        ((0.5 - q * se) / m1, (0.5 + q * se) / m1), rel=1e-12
    )
    # single comparison: adjusted == unadjusted
    assert r["adjusted_alpha"] == 0.05 and r["adjusted_p_value"] == pytest.approx(r["p_value"])
    assert r["is_significant"] == (r["p_value"] < 0.05)
    # continuous powered effect: (z_{1-a/2} + z_power) * sqrt(var_c/n_c + var_c/n_t)
    pe = (q + st.norm.ppf(0.8)) * math.sqrt(s1**2 / n1 + s1**2 / n2)
    assert r["powered_effect"] == pytest.approx(pe, rel=1e-12)


def test_proportion_z_test_uses_binomial_variance() -> None:
    out = compare(
        frame([group("control", 1000, 100.0, 100.0), group("b", 1200, 150.0, 150.0)], metric_type="proportion")
    )
    r = out.row(0, named=True)
    p1, p2 = 0.1, 0.125
    se = math.sqrt(p1 * (1 - p1) / 1000 + p2 * (1 - p2) / 1200)
    assert r["std_error"] == pytest.approx(se, rel=1e-12)
    assert r["p_value"] == pytest.approx(2 * st.norm.sf(0.025 / se), rel=1e-10)
    # binary powered effect x solves (z_a+z_b)^2 (p(1-p) n_t/n_c + (p+x)(1-p-x)) / x^2 ~= n_t (up to ceil)
    x = r["powered_effect"]
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    required = z**2 * (p1 * (1 - p1) * 1200 / 1000 + (p1 + x) * (1 - p1 - x)) / x**2
    assert math.ceil(required) == 1200


def test_alpha_and_method_columns_override_arguments() -> None:
    rows = [
        group("control", 50, *from_moments(50, 1.0, 1.0), experiment_id="a", alpha=0.1, method="t-test"),
        group("b", 50, *from_moments(50, 1.3, 1.0), experiment_id="a", alpha=0.1, method="t-test"),
        group("control", 50, *from_moments(50, 1.0, 1.0), experiment_id="b", alpha=None, method=None),
        group("b", 50, *from_moments(50, 1.3, 1.0), experiment_id="b", alpha=None, method=None),
    ]
    out = compare(frame(rows), alpha=0.01, method="z").sort("experiment_id")
    assert out["alpha"].to_list() == [0.1, 0.01]
    assert out["method"].to_list() == ["t", "z"]
    assert out["p_value"][0] > out["p_value"][1]  # t has heavier tails than z


def test_segments_are_separate_comparisons() -> None:
    rows = [
        group(v, 100, *from_moments(100, mu, 1.0), segment=s)
        for s, mu_c, mu_t in (("ios", 1.0, 1.2), ("web", 2.0, 2.0))
        for v, mu in (("control", mu_c), ("b", mu_t))
    ]
    out = compare(frame(rows)).sort("segment")
    assert out.columns[:4] == ["experiment_id", "metric_id", "as_of_date", "segment"]
    assert out["estimate"].to_list() == pytest.approx([0.2, 0.0], abs=1e-12)


def _degenerate_rows() -> list[dict]:
    rows = [
        # n < 2 in treatment
        group("control", 10, *from_moments(10, 1.0, 1.0), metric_id="small"),
        group("b", 1, 2.0, 4.0, metric_id="small"),
        # empty variant
        group("control", 10, *from_moments(10, 1.0, 1.0), metric_id="empty"),
        group("b", 0, 0.0, 0.0, metric_id="empty"),
        # zero variance in both groups
        group("control", 10, 10.0, 10.0, metric_id="flat"),
        group("b", 10, 20.0, 40.0, metric_id="flat"),
        # proportion with no conversions anywhere
        group("control", 100, 0.0, 0.0, metric_id="noconv", metric_type="proportion"),
        group("b", 100, 0.0, 0.0, metric_id="noconv", metric_type="proportion"),
        # zero control mean, non-zero variance: absolute test fine, relative undefined
        group("control", 10, *from_moments(10, 0.0, 1.0), metric_id="zero_mean"),
        group("b", 10, *from_moments(10, 0.5, 1.0), metric_id="zero_mean"),
        # no control at all
        group("b", 10, *from_moments(10, 0.5, 1.0), metric_id="orphan"),
        # two controls
        group("control", 10, *from_moments(10, 0.5, 1.0), metric_id="twins"),
        {**group("control2", 10, *from_moments(10, 0.5, 1.0), metric_id="twins"), "is_control": True},
        group("b", 10, *from_moments(10, 0.5, 1.0), metric_id="twins"),
        # impossible sufficient statistics
        group("control", 10, 10.0, 1.0, metric_id="bad"),
        group("b", 10, *from_moments(10, 0.5, 1.0), metric_id="bad"),
        # fine
        group("control", 10, *from_moments(10, 1.0, 1.0), metric_id="fine"),
        group("b", 10, *from_moments(10, 1.5, 1.0), metric_id="fine"),
    ]
    return rows


@pytest.mark.parametrize("method", ["z", "t"])
def test_degenerate_inputs_give_status_and_no_nan(method: str) -> None:
    out = compare(frame(_degenerate_rows()), method=method)
    assert_no_nan(out)
    status = dict(zip(out["metric_id"], out["status"], strict=True))
    assert status == {
        "small": "insufficient_sample",
        "empty": "insufficient_sample",
        "flat": "zero_variance",
        "noconv": "zero_variance",
        "zero_mean": "zero_control_mean",
        "orphan": "missing_control",
        "twins": "multiple_controls",
        "bad": "invalid_input",
        "fine": "ok",
    }
    by = {r["metric_id"]: r for r in out.to_dicts()}
    assert by["flat"]["estimate"] == pytest.approx(1.0) and by["flat"]["p_value"] is None
    assert by["empty"]["mean_treatment"] is None and by["empty"]["estimate"] is None
    z = by["zero_mean"]
    assert z["p_value"] is not None and z["ci_lower"] is not None
    assert z["relative_estimate"] is None and z["relative_ci_lower"] is None and z["relative_ci_upper"] is None
    for m in ("small", "empty", "flat", "orphan", "twins", "bad"):
        assert by[m]["p_value"] is None and by[m]["is_significant"] is None and by[m]["adjusted_ci_lower"] is None
    assert by["fine"]["p_value"] is not None
    for m in ("small", "empty", "flat", "orphan", "twins", "bad"):
        assert by[m]["deterioration_p_value"] is None and by[m]["required_sample_size"] is None
        assert by[m]["is_significant_preferred"] is None and by[m]["is_deteriorating"] is None
    assert by["fine"]["preference"] == "two-sided" and by["fine"]["null_hypothesis"] == 0.0


@pytest.mark.parametrize("correction", ["bonferroni", "holm", "benjamini-hochberg", "spot-1-bonferroni", "none"])
@pytest.mark.parametrize("direction", ["increase", "decrease"])
def test_degenerate_inputs_with_hypotheses_and_corrections(correction: str, direction: str) -> None:
    """The same degenerate rows as one-sided / non-inferiority / MDE metrics under every correction: status rows,
    null (never NaN) test columns, no -inf/+inf open ends on rows without an interval."""
    rows = _degenerate_rows()
    for i, r in enumerate(rows):
        r["preferred_direction"] = direction
        r["non_inferiority_margin"] = 0.1 if i % 2 else None
        r["minimum_detectable_effect"] = 0.05
    rows = [{**r, "non_inferiority_margin": 0.1 if r["metric_id"] in ("small", "flat", "fine") else None} for r in rows]
    out = compare(frame(rows), correction=correction)
    assert_no_nan(out)
    status = dict(zip(out["metric_id"], out["status"], strict=True))
    assert status["fine"] == "ok" and status["small"] == "insufficient_sample" and status["bad"] == "invalid_input"
    bad = out.filter(~pl.col("status").is_in(["ok", "zero_control_mean"]))
    for c in ("ci_lower", "ci_upper", "adjusted_ci_lower", "adjusted_ci_upper", "p_value", "adjusted_p_value",
              "is_significant", "deterioration_p_value", "is_deteriorating", "required_sample_size"):  # fmt: skip
        assert bad[c].null_count() == bad.height, c
    fine = out.filter(pl.col("metric_id") == "fine").row(0, named=True)
    assert fine["deterioration_p_value"] is not None and fine["required_sample_size"] is not None
    assert fine["preference"] == direction and fine["null_hypothesis"] == pytest.approx(-0.1 if direction == "increase" else 0.1)


def test_negative_control_mean_keeps_relative_bounds_ordered() -> None:
    out = compare(frame([group("control", 100, *from_moments(100, -2.0, 1.0)), group("b", 100, *from_moments(100, -1.8, 1.0))]))
    r = out.row(0, named=True)
    assert r["relative_ci_lower"] < r["relative_estimate"] < r["relative_ci_upper"]
    assert r["relative_estimate"] == pytest.approx(0.2 / -2.0)


def _simulate(rng, k: int, n: int, effect: float, binary: bool, method: str, base: float = 0.3):
    """k independent experiments (one control, one treatment), sufficient statistics from simulated units."""
    if binary:
        s_c = rng.binomial(n, base, size=k).astype(float)
        s_t = rng.binomial(n, base + effect, size=k).astype(float)
        ss_c, ss_t = s_c, s_t
    else:
        x_c = rng.normal(0.0, 1.0, size=(k, n))
        x_t = rng.normal(effect, 1.0, size=(k, n))
        s_c, s_t = x_c.sum(axis=1), x_t.sum(axis=1)
        ss_c, ss_t = (x_c**2).sum(axis=1), (x_t**2).sum(axis=1)
    ids = np.repeat(np.char.add("e", np.arange(k).astype(str)), 2)
    stats = pl.DataFrame(
        {
            "experiment_id": ids,
            "metric_id": "m",
            "as_of_date": DATE,
            "variant": np.tile(["control", "treatment"], k),
            "is_control": np.tile([True, False], k),
            "metric_type": "proportion" if binary else "mean",
            "n": n,
            "sum": np.column_stack([s_c, s_t]).ravel(),
            "sum_sq": np.column_stack([ss_c, ss_t]).ravel(),
        }
    )
    return compare(stats, method=method, alpha=0.05)


def _band(k: int, p: float) -> tuple[float, float]:
    """Central 99.9% binomial band for a rejection rate."""
    return st.binom.ppf(0.0005, k, p) / k, st.binom.ppf(0.9995, k, p) / k


@pytest.mark.parametrize(
    ("binary", "method", "n"), [(False, "z", 200), (True, "z", 500), (False, "t", 8), (True, "t", 500)]
)
def test_aa_rejection_rate_is_nominal(binary: bool, method: str, n: int) -> None:
    k = 4000
    out = _simulate(np.random.default_rng(11 + n), k, n, 0.0, binary, method)
    assert (out["status"] == "ok").all()
    lo, hi = _band(k, 0.05)
    rate = out["is_significant"].mean()
    assert lo <= rate <= hi, (rate, lo, hi)
    coverage = ((out["ci_lower"] <= 0) & (out["ci_upper"] >= 0)).mean()
    assert 1 - hi <= coverage <= 1 - lo


@pytest.mark.parametrize("binary", [False, True])
def test_planted_effect_found_at_design_power(binary: bool) -> None:
    k, n, base = 4000, 400, 0.3
    rng = np.random.default_rng(5)
    # design: the engine's powered effect on noise-free statistics (80% power at alpha 0.05)
    design = frame(
        [group("control", n, base * n, base * n if binary else (1 + base**2) * n), group("b", n, base * n, base * n if binary else (1 + base**2) * n)],
        metric_type="proportion" if binary else "mean",
    )
    effect = compare(design, alpha=0.05)["powered_effect"][0]
    if not binary:
        assert effect == pytest.approx((st.norm.ppf(0.975) + st.norm.ppf(0.8)) * math.sqrt(2 / n), rel=1e-2)
    out = _simulate(rng, k, n, effect, binary, "z", base=base)
    lo, hi = _band(k, 0.8)
    rate = out["is_significant"].mean()
    assert lo - 0.01 <= rate <= hi + 0.01, (rate, lo, hi)


def test_large_input_is_vectorised() -> None:
    k = 100_000
    out = _simulate(np.random.default_rng(1), k, 50, 0.0, True, "z")
    assert out.height == k and (out["status"] == "ok").all()


def test_empty_input_gives_empty_output_with_schema() -> None:
    empty = frame([group("control", 10, 1.0, 1.0)]).clear()
    out = compare(empty)
    assert out.height == 0 and "status_reason" in out.columns and out.schema["p_value"] == pl.Float64


def test_invalid_arguments_raise() -> None:
    rows = frame([group("control", 10, 1.0, 1.0), group("b", 10, 1.0, 1.0)])
    for kwargs in ({"method": "bayes"}, {"power": 1.5}, {"family": ("experiment_id", "team")}):
        with pytest.raises(ValueError):
            compare(rows, **kwargs)
    with pytest.raises(ValueError):
        compare(rows.drop("sum_sq"))


def test_invalid_row_method_and_alpha_give_status() -> None:
    rows = frame(
        [
            group("control", 10, *from_moments(10, 1.0, 1.0), metric_id="m1", method="bayes", alpha=0.05),
            group("b", 10, *from_moments(10, 1.5, 1.0), metric_id="m1", method="bayes", alpha=0.05),
            group("control", 10, *from_moments(10, 1.0, 1.0), metric_id="m2", method="z", alpha=1.5),
            group("b", 10, *from_moments(10, 1.5, 1.0), metric_id="m2", method="z", alpha=1.5),
        ]
    )
    out = compare(rows).sort("metric_id")
    assert out["status"].to_list() == ["invalid_method", "invalid_alpha"]
    assert_no_nan(out)


def test_constant_values_and_unresolvable_variances_have_their_own_status() -> None:
    """Exactly constant values have zero variance; a variance lost in the rounding of the sums (constant 1.1s that
    do not sum exactly, or mean 1e12 with sd 1e5) is unknown, not zero, and no test is run on it."""
    n = 1000
    exact = np.full(n, 2.0)
    out = compare(frame([group(g, n, float(exact.sum()), float((exact**2).sum())) for g in ("control", "b")]))
    assert out["status"].to_list() == ["zero_variance"]
    rng = np.random.default_rng(4)
    for values in (np.full(n, 1.1), 1e12 + rng.normal(0, 1e5, n)):
        rows = [group(g, n, float(values.sum()), float((values**2).sum())) for g in ("control", "b")]
        r = compare(frame(rows)).row(0, named=True)
        assert r["status"] == "imprecise_sums" and "precision" in r["status_reason"]
        assert r["p_value"] is None and r["estimate"] is not None
    # one group unresolvable is enough: the other group's variance alone would understate the standard error
    big = 1e12 + rng.normal(0, 1e5, n)
    fine = rng.normal(0, 1.0, n)
    rows = [group("control", n, float(big.sum()), float((big**2).sum())), group("b", n, float(fine.sum()), float((fine**2).sum()))]
    assert compare(frame(rows))["status"].to_list() == ["imprecise_sums"]


def cuped_groups(values: dict[str, np.ndarray], covariates: dict[str, np.ndarray], shift: float | None = None) -> list[dict]:
    """Group rows with the covariate sums (the nightly job's CUPED path), of the values minus `shift` if given."""
    c = shift or 0.0
    return [
        group(g, v.size, float((v - c).sum()), float(((v - c) ** 2).sum()), cov_sum=float((x - c).sum()),
              cov_sum_sq=float(((x - c) ** 2).sum()), cross_sum=float(((v - c) * (x - c)).sum()),
              **({} if shift is None else {"value_shift": shift}))
        for (g, v), x in zip(values.items(), covariates.values(), strict=True)
    ]  # fmt: skip


def test_shifted_sums_resolve_values_large_against_their_spread() -> None:
    """Mean 1e12 with sd 1e5: raw sums lose the variance (imprecise_sums, on the CUPED path too, never "zero
    variance"); sums of value - 1e12 with `value_shift` give the test of the same data centred near zero."""
    rng = np.random.default_rng(11)
    n, big = 2000, 1e12
    centred = {"control": rng.normal(0, 1e5, n), "b": rng.normal(2e4, 1e5, n)}
    pre = {g: v + rng.normal(0, 5e4, n) for g, v in centred.items()}
    small = compare(frame(cuped_groups(centred, pre))).row(0, named=True)
    lifted = {g: v + big for g, v in centred.items()}
    raw = compare(frame(cuped_groups(lifted, {g: x + big for g, x in pre.items()}))).row(0, named=True)
    assert raw["status"] == "imprecise_sums" and raw["std_error"] is None
    shifted = compare(frame(cuped_groups(lifted, {g: x + big for g, x in pre.items()}, shift=big))).row(0, named=True)
    assert small["status"] == shifted["status"] == "ok"
    for column in ("estimate", "std_error", "p_value", "ci_lower", "unadjusted_std_error", "variance_reduction_rate"):
        assert shifted[column] == pytest.approx(small[column], rel=1e-6), column
    assert shifted["mean_control"] == pytest.approx(small["mean_control"] + big, rel=1e-15)
    assert shifted["relative_estimate"] == pytest.approx(small["estimate"] / (small["mean_control"] + big), rel=1e-6)
    # without covariates, the same
    plain = [group(g, n, float(v.sum()), float((v**2).sum()), value_shift=big) for g, v in centred.items()]
    out = compare(frame(plain)).row(0, named=True)
    assert out["status"] == "ok" and out["mean_control"] == pytest.approx(float(centred["control"].mean()) + big)


def test_shifted_sums_report_their_own_rounding_and_misuse() -> None:
    """`sum_sq_abs` (the terms sum_sq was accumulated from) sets the rounding floor: sums that cancelled terms
    1e10 times their variance are imprecise. A shift on a proportion, or different shifts in one comparison,
    are invalid input."""
    n = 1000
    total, sum_sq = from_moments(n, 0.0, 1.0)
    rows = [group(g, n, total, sum_sq, value_shift=1e12, sum_sq_abs=sum_sq * s) for g, s in (("control", 1e11), ("b", 1.0))]
    assert compare(frame(rows))["status"].to_list() == ["imprecise_sums"]
    rows = [group(g, n, total, sum_sq, value_shift=1e12, sum_sq_abs=sum_sq * 1e3) for g in ("control", "b")]
    assert compare(frame(rows))["status"].to_list() == ["ok"]
    proportion = [group(g, n, 300.0, 300.0, value_shift=5.0) for g in ("control", "b")]
    out = compare(frame(proportion, metric_type="proportion")).row(0, named=True)
    assert out["status"] == "invalid_input" and "value_shift" in out["status_reason"]
    mixed = [group("control", n, total, sum_sq, value_shift=1.0), group("b", n, total, sum_sq, value_shift=2.0)]
    out = compare(frame(mixed)).row(0, named=True)
    assert out["status"] == "invalid_input" and "value_shift" in out["status_reason"]


def test_impossible_sums_have_no_gap_with_the_noise_floor() -> None:
    """A variance is noise, impossible or real: a negative one beyond the rounding floor is invalid input."""
    n, mean = 1000, 10.0
    for share in (1e-11, 1e-9, 1e-6):  # negative variance as a share of the mean square
        sum_sq = n * mean**2 * (1 - share)
        r = compare(frame([group(g, n, n * mean, sum_sq) for g in ("control", "b")])).row(0, named=True)
        assert r["status"] == ("imprecise_sums" if share < 1e-10 else "invalid_input"), share


def test_a_control_mean_zero_up_to_rounding_has_no_relative_effect() -> None:
    n = 1000
    rows = [group("control", n, 1e-13, 1000.0), group("b", n, 50.0, 1100.0)]
    r = compare(frame(rows)).row(0, named=True)
    assert r["status"] == "zero_control_mean"
    assert r["relative_estimate"] is None and r["p_value"] is not None


def test_zero_variance_rule_either_refuses_a_constant_group() -> None:
    """Default: a Welch test with one constant group is a test; `zero_variance="either"` (gbstats 0.8.0) refuses
    it, naming the group, and keeps the estimate; an unknown rule is an error."""
    rows = [
        group("control", 50, 100.0, 200.0, metric_id="flat_control"),  # every control value is 2
        group("b", 60, *from_moments(60, 2.5, 1.0), metric_id="flat_control"),
        group("control", 500, 10.0, 10.0, metric_id="no_conversion", metric_type="proportion"),
        group("b", 480, 0.0, 0.0, metric_id="no_conversion", metric_type="proportion"),
        group("control", 40, *from_moments(40, 1.0, 1.0), metric_id="fine"),
        group("b", 40, *from_moments(40, 1.3, 1.2), metric_id="fine"),
    ]
    for relative in ("fieller", "delta", "simple"):
        default = {r["metric_id"]: r for r in compare(frame(rows), method="t", relative_method=relative).to_dicts()}
        either = {r["metric_id"]: r for r in compare(frame(rows), method="t", zero_variance="either",
                                                     relative_method=relative).to_dicts()}  # fmt: skip
        assert all(r["status"] == "ok" for r in default.values())
        assert either["fine"] == default["fine"]
        for metric, side in (("flat_control", "control"), ("no_conversion", "treatment")):
            row = either[metric]
            assert row["status"] == "zero_variance" and side in row["status_reason"], row
            assert row["estimate"] == pytest.approx(default[metric]["estimate"])
            for column in ("p_value", "ci_lower", "std_error", "relative_ci_lower", "relative_ci_upper",
                           "relative_p_value", "relative_std_error"):  # fmt: skip
                assert row.get(column) is None, (relative, metric, column)
    with pytest.raises(ValueError, match="zero_variance"):
        compare(frame(rows), zero_variance="one")

"""Per-row hypotheses (`pipelines.stats.hypotheses` via `compare`): one-sided superiority, non-inferiority with
relative / absolute margins, deterioration tests; checked against scipy and hand formulas, and by simulation."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

from pipelines.stats import compare
from pipelines.stats.comparison import analyse, pair_variants

DATE = dt.date(2024, 1, 1)
FLOATS = (
    "estimate", "std_error", "ci_lower", "ci_upper", "p_value", "adjusted_alpha", "adjusted_p_value",
    "adjusted_ci_lower", "adjusted_ci_upper", "powered_effect", "null_hypothesis", "adjusted_power",
    "required_sample_size", "deterioration_p_value", "deterioration_adjusted_alpha",
)  # fmt: skip


def from_moments(n: int, mean: float, sd: float) -> tuple[float, float]:
    total = n * mean
    return total, sd**2 * (n - 1) + total**2 / n


def pair(metric: str, n_c=1000, m_c=10.0, s_c=2.0, n_t=1000, m_t=10.1, s_t=2.0, **hyp) -> list[dict]:
    """Control and treatment rows of one metric with hypothesis columns `hyp` on both rows."""
    base = {"experiment_id": "e", "metric_id": metric, "as_of_date": DATE, "metric_type": "mean", **hyp}
    return [
        {**base, "variant": "control", "is_control": True, "n": n_c, **dict(zip(("sum", "sum_sq"), from_moments(n_c, m_c, s_c), strict=True))},
        {**base, "variant": "b", "is_control": False, "n": n_t, **dict(zip(("sum", "sum_sq"), from_moments(n_t, m_t, s_t), strict=True))},
    ]  # fmt: skip


def frame(*pairs: list[dict]) -> pl.DataFrame:
    rows = [r for p in pairs for r in p]
    columns = {k for r in rows for k in r}
    return pl.DataFrame([{c: r.get(c) for c in sorted(columns)} for r in rows])


def one(rows: list[dict], **kwargs) -> dict:
    out = compare(frame(rows), **kwargs)
    assert out.height == 1
    return out.row(0, named=True)


def test_default_is_two_sided_with_null_zero_and_no_deterioration() -> None:
    r = one(pair("m"))
    assert (r["preference"], r["alternative"], r["null_hypothesis"]) == ("two-sided", "two-sided", 0.0)
    assert r["deterioration_p_value"] is None and r["is_deteriorating"] is None
    assert r["is_significant_preferred"] is None and r["required_sample_size"] is None
    assert r["adjusted_power"] == 0.8


@pytest.mark.parametrize("direction", ["increase", "decrease"])
@pytest.mark.parametrize("method", ["z", "t"])
def test_one_sided_superiority_matches_scipy(direction: str, method: str) -> None:
    n1, n2, m1, m2, s1, s2 = 40, 45, 10.0, 10.6, 2.0, 2.5
    r = one(pair("m", n1, m1, s1, n2, m2, s2, preferred_direction=direction), method=method, alpha=0.05)
    alt = "greater" if direction == "increase" else "less"
    res = st.ttest_ind_from_stats(m2, s2, n2, m1, s1, n1, equal_var=False, alternative=alt)
    se = math.sqrt(s1**2 / n1 + s2**2 / n2)
    df = (s1**2 / n1 + s2**2 / n2) ** 2 / ((s1**2 / n1) ** 2 / (n1 - 1) + (s2**2 / n2) ** 2 / (n2 - 1))
    dist = st.t(df) if method == "t" else st.norm()
    z = (m2 - m1) / se
    want_p = res.pvalue if method == "t" else (dist.sf(z) if alt == "greater" else dist.cdf(z))
    assert r["p_value"] == pytest.approx(want_p, rel=1e-9)
    q = dist.ppf(0.95)
    if direction == "increase":
        assert r["ci_lower"] == pytest.approx(0.6 - q * se, rel=1e-9) and r["ci_upper"] == math.inf
    else:
        assert r["ci_upper"] == pytest.approx(0.6 + q * se, rel=1e-9) and r["ci_lower"] == -math.inf
    assert r["alternative"] == alt and r["preference"] == direction and r["null_hypothesis"] == 0.0
    # deterioration: the opposite one-sided test against 0
    assert r["deterioration_p_value"] == pytest.approx(1 - want_p, rel=1e-9)
    assert r["is_deteriorating"] == (r["deterioration_p_value"] < r["deterioration_adjusted_alpha"])
    # relative interval keeps the open end
    rel = (r["relative_ci_lower"], r["relative_ci_upper"])
    assert (rel[1] == math.inf) if direction == "increase" else (rel[0] == -math.inf)


@pytest.mark.parametrize("direction", ["increase", "decrease"])
def test_non_inferiority_relative_and_absolute_margins(direction: str) -> None:
    n, m1, m2, sd, margin = 2000, 10.0, 9.9, 3.0, 0.02
    sign = 1 if direction == "increase" else -1
    rel = one(pair("m", n, m1, sd, n, m2, sd, preferred_direction=direction, non_inferiority_margin=margin))
    ab = one(pair("m", n, m1, sd, n, m2, sd, preferred_direction=direction, non_inferiority_margin_absolute=margin * m1))
    plug_in = one(
        pair("m", n, m1, sd, n, m2, sd, preferred_direction=direction, non_inferiority_margin=margin),
        non_inferiority="plug_in",
    )
    se = math.sqrt(2 * sd**2 / n)
    null = -sign * margin * m1
    z = (m2 - m1 - null) / se
    want = st.norm.sf(z) if sign == 1 else st.norm.cdf(z)
    # the ratio test of a relative margin: mu_t - (1 -/+ m) mu_c with its own variance (Hauschke et al. 1999)
    theta0 = 1 - sign * margin
    ratio_z = (m2 - theta0 * m1) / math.sqrt(sd**2 / n + theta0**2 * sd**2 / n)
    want_ratio = st.norm.sf(ratio_z) if sign == 1 else st.norm.cdf(ratio_z)
    for r, expected in ((rel, want_ratio), (ab, want), (plug_in, want)):
        assert r["null_hypothesis"] == pytest.approx(null, rel=1e-12)
        assert r["p_value"] == pytest.approx(expected, rel=1e-9)
        assert r["is_significant"] == (expected < 0.05)
        assert r["is_significant_preferred"] == r["is_significant"]
        # the margin plays the MDE role: n_t = ceil(((z_a + z_b)/(m mu))^2 * 2 var_c), total 2 n_t
        n_t = math.ceil(((st.norm.ppf(0.95) + st.norm.ppf(0.8)) / (margin * m1)) ** 2 * 2 * sd**2)
        assert r["required_sample_size"] == 2 * n_t
        # deterioration is against 0, not the margin
        zd = (m2 - m1) / se
        assert r["deterioration_p_value"] == pytest.approx(st.norm.cdf(zd) if sign == 1 else st.norm.sf(zd), rel=1e-9)
    # the relative (Fieller) interval excludes 1 -/+ m exactly when the ratio test rejects
    bound = rel["relative_ci_lower"] if sign == 1 else rel["relative_ci_upper"]
    assert (sign * (bound + sign * margin) > 0) == rel["is_significant"]


def test_negative_control_mean_keeps_margin_on_the_unwanted_side() -> None:
    r = one(pair("m", 1000, -10.0, 2.0, 1000, -10.1, 2.0, preferred_direction="increase", non_inferiority_margin=0.1))
    assert r["null_hypothesis"] == pytest.approx(-1.0)  # -m |mu|


def test_mixed_hypotheses_in_one_frame_equal_separate_runs() -> None:
    specs = {
        "two": {},
        "inc": {"preferred_direction": "increase"},
        "dec": {"preferred_direction": "decrease"},
        "nim": {"preferred_direction": "increase", "non_inferiority_margin": 0.05},
        "nima": {"preferred_direction": "decrease", "non_inferiority_margin_absolute": 0.3},
        "mde": {"minimum_detectable_effect": 0.02},
    }
    mixed = compare(frame(*(pair(k, **v) for k, v in specs.items())), correction="none").sort("metric_id")
    for row in mixed.to_dicts():
        alone = one(pair(row["metric_id"], **specs[row["metric_id"]]), correction="none")
        for c in FLOATS:
            assert row[c] == alone[c] or row[c] == pytest.approx(alone[c], rel=1e-12), (row["metric_id"], c)


def test_hypothesis_columns_may_come_from_the_control_row() -> None:
    rows = pair("m", preferred_direction="increase", non_inferiority_margin=0.05)
    rows[1] |= {"preferred_direction": None, "non_inferiority_margin": None}
    pairs = pair_variants(frame(rows))
    assert pairs["preferred_direction"].to_list() == ["increase"] and pairs["non_inferiority_margin"].to_list() == [0.05]
    assert analyse(pairs)["alternative"].to_list() == ["greater"]


def test_invalid_hypotheses_give_status_and_reason() -> None:
    cases = {
        "unknown_dir": {"preferred_direction": "sideways"},
        "margin_no_dir": {"non_inferiority_margin": 0.05},
        "negative": {"preferred_direction": "increase", "non_inferiority_margin": -0.1},
        "both": {"preferred_direction": "increase", "non_inferiority_margin": 0.1, "non_inferiority_margin_absolute": 1.0},
        "bad_mde": {"minimum_detectable_effect": 0.0},
        "ok": {"preferred_direction": "increase", "non_inferiority_margin": 0.1},
    }
    rows = [pair(k, **v) for k, v in cases.items()]
    rows.append(pair("zero_mean", m_c=0.0, m_t=0.5, preferred_direction="decrease", non_inferiority_margin=0.1))
    out = compare(frame(*rows))
    status = dict(zip(out["metric_id"], out["status"], strict=True))
    assert status.pop("ok") == "ok"
    assert set(status.values()) == {"invalid_hypothesis"}
    reasons = dict(zip(out["metric_id"], out["status_reason"], strict=True))
    assert "preferred_direction" in reasons["unknown_dir"] and "needs a preferred_direction" in reasons["margin_no_dir"]
    assert "non-zero control mean" in reasons["zero_mean"] and "not both" in reasons["both"]
    bad = out.filter(pl.col("status") != "ok")
    for c in ("p_value", "ci_lower", "is_significant", "deterioration_p_value", "is_deteriorating", "required_sample_size"):
        assert bad[c].null_count() == bad.height, c
    for c in FLOATS:
        assert out[c].is_nan().sum() == 0, c


def test_spot1_reports_one_sided_rows_two_sided_at_twice_alpha() -> None:
    rows = frame(
        pair("success"),
        pair("guard_up", preferred_direction="increase", non_inferiority_margin=0.05),
        # decrease preferred, estimate 1.0 far above the margin 0.5: significantly WORSE, "significant" for spot-1
        pair("guard_down", m_t=11.0, preferred_direction="decrease", non_inferiority_margin=0.05),
    )
    out = compare(rows, alpha=0.05, correction="spot-1-bonferroni").sort("metric_id")
    by = {r["metric_id"]: r for r in out.to_dicts()}
    assert by["success"]["adjusted_alpha"] == pytest.approx(0.05)  # 1 treatment x 1 success metric
    for g in ("guard_up", "guard_down"):
        r = by[g]
        assert r["adjusted_alpha"] == pytest.approx(0.10) and r["alternative"] == "two-sided"
        q = st.norm.ppf(1 - 0.10 / 2)  # = one-sided z_{1-alpha}
        assert (r["ci_lower"], r["ci_upper"]) == pytest.approx((r["estimate"] - q * r["std_error"], r["estimate"] + q * r["std_error"]))
        assert r["p_value"] == pytest.approx(2 * st.norm.sf(abs(r["statistic"])), rel=1e-9)
        assert r["adjusted_power"] == pytest.approx(1 - 0.2 / 3)  # two guardrails
    assert by["guard_up"]["is_significant_preferred"] and by["guard_up"]["is_significant"]
    down = by["guard_down"]
    assert down["is_significant"] and down["is_significant_preferred"] is False and down["is_deteriorating"]


def _simulate(rng, k: int, n: int, delta: float, sd: float = 1.0, mu: float = 10.0, **hyp) -> pl.DataFrame:
    """k one-metric experiments with true effect `delta`, sufficient statistics drawn exactly (normal data)."""
    means = rng.normal([mu, mu + delta], sd / math.sqrt(n), size=(k, 2))
    variances = sd**2 * rng.chisquare(n - 1, size=(k, 2)) / (n - 1)
    sums = means * n
    sum_sq = variances * (n - 1) + sums**2 / n
    return pl.DataFrame(
        {
            "experiment_id": np.repeat(np.arange(k).astype(str), 2),
            "metric_id": "m",
            "as_of_date": DATE,
            "variant": np.tile(["control", "b"], k),
            "is_control": np.tile([True, False], k),
            "metric_type": "mean",
            "n": n,
            "sum": sums.ravel(),
            "sum_sq": sum_sq.ravel(),
            **{c: [v] * 2 * k for c, v in hyp.items()},
        }
    )


def _band(k: int, p: float) -> tuple[float, float]:
    return st.binom.ppf(0.0005, k, p) / k, st.binom.ppf(0.9995, k, p) / k


@pytest.mark.parametrize(
    ("hyp", "delta", "method"),
    [
        ({"preferred_direction": "increase"}, 0.0, "z"),
        ({"preferred_direction": "decrease"}, 0.0, "t"),
        # at the margin boundary delta = -m mu the non-inferiority null holds with equality
        ({"preferred_direction": "increase", "non_inferiority_margin": 0.01}, -0.1, "z"),
        ({"preferred_direction": "decrease", "non_inferiority_margin_absolute": 0.2}, 0.2, "z"),
    ],
)
def test_one_sided_and_nim_reject_at_nominal_rate(hyp: dict, delta: float, method: str) -> None:
    k = 4000
    out = compare(_simulate(np.random.default_rng(17), k, 30 if method == "t" else 400, delta, **hyp), alpha=0.05, method=method)
    assert (out["status"] == "ok").all()
    lo, hi = _band(k, 0.05)
    assert lo <= out["is_significant"].mean() <= hi
    # the one-sided interval excludes the null value exactly when significant: the relative (Fieller) interval
    # for a relative margin (tested as a ratio), the absolute interval otherwise
    if "non_inferiority_margin" in hyp:
        null, lower, upper = -hyp["non_inferiority_margin"], out["relative_ci_lower"], out["relative_ci_upper"]
    else:
        null, lower, upper = out["null_hypothesis"], out["ci_lower"], out["ci_upper"]
    excludes = (lower > null) if hyp["preferred_direction"] == "increase" else (upper < null)
    assert (excludes == out["is_significant"]).all()


def test_deterioration_rejects_at_nominal_rate_under_aa() -> None:
    k = 4000
    out = compare(_simulate(np.random.default_rng(23), k, 300, 0.0, preferred_direction="increase"), alpha=0.05)
    lo, hi = _band(k, 0.05)
    assert lo <= out["is_deteriorating"].mean() <= hi
    # a real drop is detected far more often
    bad = compare(_simulate(np.random.default_rng(24), 500, 300, -0.25, preferred_direction="increase"), alpha=0.05)
    assert bad["is_deteriorating"].mean() > 0.8


def test_deterioration_alpha_is_bonferroni_over_directional_rows() -> None:
    rows = frame(pair("a"), pair("b", preferred_direction="increase"), pair("c", preferred_direction="decrease"))
    out = compare(rows, alpha=0.1, deterioration_alpha=0.02)
    got = dict(zip(out["metric_id"], out["deterioration_adjusted_alpha"], strict=True))
    assert got == {"a": None, "b": pytest.approx(0.01), "c": pytest.approx(0.01)}
    assert compare(rows, alpha=0.1, correction="none")["deterioration_adjusted_alpha"].drop_nulls().to_list() == [0.1, 0.1]
    with pytest.raises(ValueError):
        compare(rows, deterioration_alpha=1.5)


@pytest.mark.parametrize("direction", ["increase", "decrease"])
@pytest.mark.parametrize("margin", [0.05, 0.10, 0.20])
def test_relative_margin_holds_its_size_at_the_margin(direction: str, margin: float) -> None:
    """A proportion guardrail exactly on its relative margin (treatment rate (1 -/+ m) x control's): the ratio test
    (the default) rejects at alpha within the binomial band, for both directions and margins 5%-20%; the plug-in
    test, which takes the estimated control mean as known, is off in the direction the control's noise pushes it."""
    reps, n, p_c, alpha = 40_000, 2_000, 0.2, 0.05
    p_t = p_c * (1 - margin if direction == "increase" else 1 + margin)
    rng = np.random.default_rng(17 + int(margin * 100) + (direction == "decrease"))
    hits = np.column_stack([rng.binomial(n, p_c, reps), rng.binomial(n, p_t, reps)]).ravel()
    stats = pl.DataFrame({
        "experiment_id": np.repeat(np.arange(reps).astype(str), 2), "metric_id": "g", "as_of_date": DATE,
        "variant": np.tile(["control", "b"], reps), "is_control": np.tile([True, False], reps),
        "metric_type": "proportion", "n": n, "sum": hits, "sum_sq": hits,
        "preferred_direction": direction, "non_inferiority_margin": margin,
    })  # fmt: skip
    ratio = compare(stats, correction="none")["is_significant"].mean()
    plug_in = compare(stats, correction="none", non_inferiority="plug_in")["is_significant"].mean()
    lower, upper = st.binom.ppf([0.0005, 0.9995], reps, alpha) / reps
    assert lower <= ratio <= upper, (ratio, plug_in)
    if direction == "decrease" and margin == 0.20:  # the case measured at 0.072 under the plug-in
        assert plug_in > upper, plug_in

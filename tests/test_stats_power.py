"""Power and sample size: the planning function `required_sample_size`, the per-comparison `required_sample_size`
and `powered_effect` columns of `compare`, checked by hand formulas and by simulation at the designed power."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

from pipelines.stats import compare
from pipelines.stats.power import SampleSizePlan, required_sample_size

DATE = dt.date(2024, 1, 1)
Z = st.norm.ppf


def test_continuous_two_sided_matches_hand_formula() -> None:
    plan = required_sample_size(10.0, 4.0, 0.02, alpha=0.05, power=0.8, correction="none")
    n = math.ceil((Z(0.975) + Z(0.8)) ** 2 * (4.0 + 4.0) / 0.2**2)
    assert isinstance(plan, SampleSizePlan)
    assert plan.n_treatment == n and plan.n_control == n and plan.total == 2 * n and plan.comparison_total == 2 * n
    assert plan.effect == pytest.approx(0.2) and plan.alternative == "two-sided"
    absolute = required_sample_size(10.0, 4.0, 0.2, relative=False, alpha=0.05, power=0.8, correction="none")
    assert absolute.total == plan.total


def test_proportion_uses_treatment_variance_and_direction() -> None:
    p, mde = 0.1, 0.1  # +1 percentage point
    up = required_sample_size(p, mde=mde, alpha=0.05, power=0.8, alternative="increase", correction="none")
    n = math.ceil((Z(0.95) + Z(0.8)) ** 2 * (p * (1 - p) + 0.11 * 0.89) / 0.01**2)
    assert up.n_treatment == n
    down = required_sample_size(p, mde=mde, alpha=0.05, power=0.8, alternative="decrease", correction="none")
    assert down.n_treatment == math.ceil((Z(0.95) + Z(0.8)) ** 2 * (p * (1 - p) + 0.09 * 0.91) / 0.01**2)
    two = required_sample_size(p, mde=mde, alpha=0.05, power=0.8, correction="none")
    assert two.n_treatment > up.n_treatment  # two-sided needs more
    # non-inferiority keeps the control variance (means assumed equal)
    nim = required_sample_size(p, mde=mde, alternative="increase", non_inferiority=True, correction="none")
    assert nim.n_treatment == math.ceil((Z(0.95) + Z(0.8)) ** 2 * 2 * p * (1 - p) / 0.01**2)


def test_corrections_for_treatments_and_metrics() -> None:
    kw = dict(baseline_mean=5.0, baseline_variance=9.0, mde=0.05, alpha=0.05, power=0.8, treatments=3)
    spot = required_sample_size(**kw, success_metrics=2, guardrail_metrics=4)
    assert spot.adjusted_alpha == pytest.approx(0.05 / 6)  # guardrails not counted
    assert spot.adjusted_power == pytest.approx(1 - 0.2 / 5)
    n = math.ceil((Z(1 - 0.05 / 12) + Z(1 - 0.2 / 5)) ** 2 * 18 / 0.25**2)
    assert spot.n_treatment == n and spot.total == 4 * n
    bonf = required_sample_size(**kw, success_metrics=2, guardrail_metrics=4, correction="bonferroni")
    assert bonf.adjusted_alpha == pytest.approx(0.05 / 18) and bonf.adjusted_power == 0.8
    guard = required_sample_size(**kw, success_metrics=2, guardrail_metrics=4, alternative="decrease", non_inferiority=True)
    assert guard.n_treatment == math.ceil((Z(1 - 0.05 / 6) + Z(1 - 0.2 / 5)) ** 2 * 18 / 0.25**2)
    no_success = required_sample_size(**kw, success_metrics=0, guardrail_metrics=2, alternative="increase", non_inferiority=True)
    assert no_success.adjusted_power == pytest.approx(0.9) and no_success.adjusted_alpha == pytest.approx(0.05 / 3)


def test_arrays_and_allocation() -> None:
    plan = required_sample_size(np.array([0.05, 0.1, 0.2]), mde=np.array([0.1, 0.05, 0.02]), correction="none")
    assert plan.n_treatment.shape == (3,)
    for i, (p, m) in enumerate([(0.05, 0.1), (0.1, 0.05), (0.2, 0.02)]):
        assert plan.n_treatment[i] == required_sample_size(p, mde=m, correction="none").n_treatment
    unequal = required_sample_size(10.0, 4.0, 0.02, kappa=2.0, correction="none")
    n = math.ceil((Z(0.975) + Z(0.8)) ** 2 * (4.0 / 2.0 + 4.0) / 0.2**2)
    assert unequal.n_treatment == n and unequal.n_control == math.ceil(2 * n)
    assert unequal.comparison_total == math.ceil(n * 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baseline_mean": 1.2, "mde": 0.1},  # proportion outside (0, 1)
        {"baseline_mean": 0.5, "mde": -0.1},
        {"baseline_mean": 0.5, "mde": 0.1, "alpha": 1.0},
        {"baseline_mean": 0.5, "mde": 0.1, "power": 0.0},
        {"baseline_mean": 0.5, "mde": 0.1, "alternative": "sideways"},
        {"baseline_mean": 0.5, "mde": 0.1, "non_inferiority": True},  # needs a direction
        {"baseline_mean": 0.5, "mde": 0.1, "treatments": 0},
        {"baseline_mean": 0.5, "mde": 0.1, "correction": "magic"},
        {"baseline_mean": 0.0, "baseline_variance": 1.0, "mde": 0.1},  # relative MDE on a zero mean
        {"baseline_mean": 1.0, "baseline_variance": 0.0, "mde": 0.1},
        {"baseline_mean": 0.95, "mde": 0.1, "alternative": "increase", "relative": False},  # p + mde > 1
    ],
)
def test_invalid_planning_inputs_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        required_sample_size(**kwargs)


def _group(variant: str, n: int, mean: float, sd: float | None, **extra) -> dict:
    total = n * mean
    sum_sq = total if sd is None else sd**2 * (n - 1) + total**2 / n
    metric_type = "proportion" if sd is None else "mean"
    return {"experiment_id": "e", "metric_id": "m", "as_of_date": DATE, "variant": variant,
            "is_control": variant == "control", "metric_type": metric_type, "n": n, "sum": total, "sum_sq": sum_sq, **extra}  # fmt: skip


def test_comparison_required_sample_size_equals_planning() -> None:
    hyp = {"minimum_detectable_effect": 0.03, "preferred_direction": "increase"}
    rows = pl.DataFrame([_group("control", 5000, 10.0, 3.0, **hyp), _group("b", 5000, 10.2, 3.5, **hyp)])
    r = compare(rows, alpha=0.05, power=0.8).row(0, named=True)
    plan = required_sample_size(10.0, 9.0, 0.03, alternative="increase", correction="none")
    assert r["required_sample_size"] == plan.comparison_total
    # absolute MDE, proportion, two-sided
    hyp = {"minimum_detectable_effect_absolute": 0.01}
    rows = pl.DataFrame([_group("control", 5000, 0.2, None, **hyp), _group("b", 5000, 0.21, None, **hyp)])
    r = compare(rows, alpha=0.05, power=0.8).row(0, named=True)
    assert r["required_sample_size"] == required_sample_size(0.2, mde=0.01, relative=False, correction="none").comparison_total


def test_one_sided_powered_effect_uses_one_sided_quantile() -> None:
    rows = pl.DataFrame([_group("control", 800, 10.0, 2.0, preferred_direction="decrease"), _group("b", 900, 10.0, 2.5, preferred_direction="decrease")])
    r = compare(rows, alpha=0.05, power=0.8).row(0, named=True)
    assert r["powered_effect"] == pytest.approx((Z(0.95) + Z(0.8)) * math.sqrt(4 / 800 + 4 / 900), rel=1e-12)
    # binary, decrease preferred: the closed form solves the power equation with treatment variance at p - x
    rows = pl.DataFrame([_group("control", 4000, 0.3, None, preferred_direction="decrease"), _group("b", 4000, 0.3, None, preferred_direction="decrease")])
    x = compare(rows, alpha=0.05, power=0.8)["powered_effect"][0]
    z = Z(0.95) + Z(0.8)
    assert x**2 * 4000 == pytest.approx(z**2 * (0.21 + (0.3 - x) * (0.7 + x)), rel=1e-9)


def _simulate(rng, k: int, n: int, mean_c: float, effect: float, sd: float | None, **hyp) -> pl.DataFrame:
    if sd is None:
        sums = np.column_stack([rng.binomial(n, mean_c, k), rng.binomial(n, mean_c + effect, k)]).astype(float)
        sum_sq = sums
    else:
        means = rng.normal([mean_c, mean_c + effect], sd / math.sqrt(n), size=(k, 2))
        sums = means * n
        sum_sq = sd**2 * rng.chisquare(n - 1, size=(k, 2)) + sums**2 / n
    return pl.DataFrame(
        {
            "experiment_id": np.repeat(np.arange(k).astype(str), 2),
            "metric_id": "m",
            "as_of_date": DATE,
            "variant": np.tile(["control", "b"], k),
            "is_control": np.tile([True, False], k),
            "metric_type": "proportion" if sd is None else "mean",
            "n": n,
            "sum": sums.ravel(),
            "sum_sq": sum_sq.ravel(),
            **{c: [v] * 2 * k for c, v in hyp.items()},
        }
    )


@pytest.mark.parametrize(
    ("case", "plan_kwargs", "hyp", "effect_sign"),
    [
        ("continuous two-sided", {"baseline_mean": 10.0, "baseline_variance": 4.0, "mde": 0.02}, {}, 1),
        ("proportion one-sided", {"baseline_mean": 0.2, "mde": 0.1, "alternative": "increase"}, {"preferred_direction": "increase"}, 1),
        ("continuous decrease", {"baseline_mean": 10.0, "baseline_variance": 4.0, "mde": 0.02, "alternative": "decrease"}, {"preferred_direction": "decrease"}, -1),
    ],
)
def test_required_sample_size_gives_designed_power(case: str, plan_kwargs: dict, hyp: dict, effect_sign: int) -> None:
    """2,000 simulated experiments at the planned n reject at ~80% (99.9% binomial band, + the ceil's slack)."""
    plan = required_sample_size(**plan_kwargs, alpha=0.05, power=0.8, correction="none")
    n = int(plan.n_treatment)
    sd = math.sqrt(plan_kwargs["baseline_variance"]) if "baseline_variance" in plan_kwargs else None
    k = 2000
    out = compare(_simulate(np.random.default_rng(31), k, n, plan_kwargs["baseline_mean"], float(plan.effect), sd, **hyp), alpha=0.05)
    assert (out["status"] == "ok").all()
    lo, hi = st.binom.ppf(0.0005, k, 0.8) / k, st.binom.ppf(0.9995, k, 0.8) / k
    rate = out["is_significant"].mean()
    assert lo <= rate <= hi + 0.01, (case, rate, lo, hi)
    assert effect_sign * plan.effect > 0


def test_non_inferiority_plan_gives_designed_power_when_means_equal() -> None:
    """A guardrail planned for margin m: with equal means, the NIM test rejects its null at ~80%."""
    plan = required_sample_size(10.0, 4.0, 0.02, alternative="increase", non_inferiority=True, alpha=0.05, power=0.8, correction="none")
    k = 2000
    hyp = {"preferred_direction": "increase", "non_inferiority_margin": 0.02}
    out = compare(_simulate(np.random.default_rng(41), k, int(plan.n_treatment), 10.0, 0.0, 2.0, **hyp), alpha=0.05)
    lo, hi = st.binom.ppf(0.0005, k, 0.8) / k, st.binom.ppf(0.9995, k, 0.8) / k
    assert lo <= out["is_significant"].mean() <= hi + 0.01
    assert out["required_sample_size"].median() == pytest.approx(plan.comparison_total, rel=0.01)


def test_group_sequential_inflation_gives_the_design_power_by_simulation() -> None:
    """The inflated sample size of a Lan-DeMets design reaches its power: Brownian motion with the drift the
    fixed-horizon size gives, times sqrt(inflation), crosses the bounds with probability `power`."""
    from pipelines.stats.power import group_sequential_inflation
    from pipelines.stats.sequential import boundaries

    alpha, power, looks = 0.05, 0.8, 10
    for spending, rho in (("obf", 2.0), ("power", 2.0), ("pocock", 2.0)):
        factor = group_sequential_inflation(alpha, power, spending, rho, looks)
        assert 1.0 < factor < 1.35
        fractions = np.arange(1, looks + 1) / looks
        bounds = boundaries(fractions, alpha, (spending, rho) if spending == "power" else spending)
        drift = (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * np.sqrt(factor)
        rng = np.random.default_rng(8)
        steps = rng.normal(drift / looks, np.sqrt(1 / looks), size=(40_000, looks)).cumsum(axis=1)
        crossed = (steps / np.sqrt(fractions) >= bounds).any(axis=1).mean()
        assert abs(crossed - power) < 0.012, (spending, crossed)
    # the same design without inflation falls short: the factor is needed
    assert group_sequential_inflation(alpha, power, "pocock", 2.0, looks) > 1.15


def test_confidence_sequence_sample_size_reaches_power_at_that_n() -> None:
    from pipelines.stats.power import confidence_sequence_sample_size
    from pipelines.stats.sequential import confidence_sequence_bound

    fixed, alpha, power, tuning = 10_000.0, 0.1, 0.8, 10_000.0
    n = float(confidence_sequence_sample_size(np.array([fixed]), np.array([alpha]), np.array([power]), np.array([tuning]))[0])
    assert n > 1.5 * fixed  # always-valid intervals are wider
    # at n the expected statistic (z_a + z_b) sqrt(n / fixed) clears the sequence's bound by z_power
    expected_z = (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * np.sqrt(n / fixed)
    assert expected_z - float(confidence_sequence_bound(n, alpha, tuning)) == pytest.approx(st.norm.ppf(power), abs=1e-3)

"""Group-sequential boundaries and confidence sequences (pipelines.stats.sequential)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import special, stats

from pipelines.stats import sequential as sq
from pipelines.stats.sequential import (
    Spending,
    boundaries,
    bounds_for_schedules,
    confidence_sequence,
    confidence_sequence_from_moments,
    group_sequential_bounds,
)

FIVE = np.arange(1, 6) / 5

# Published two-sided boundaries for five equally spaced looks at two-sided alpha = 0.05 (symmetric, alpha/2 per
# side): DeMets & Lan (1994), "Interim analysis: the alpha spending function approach", Stat. Med. 13:1341-1352,
# table of Lan-DeMets O'Brien-Fleming-type and Pocock-type boundaries; the same values are given by R's ldbounds
# (ldBounds(t, iuse = 1 / 2)), gsDesign (sfLDOF / sfLDPocock, test.type = 2) and rpact (asOF / asP, sided = 2).
PUBLISHED = {
    "obf": [4.877, 3.357, 2.680, 2.290, 2.031],
    "pocock": [2.438, 2.427, 2.410, 2.397, 2.386],
}


def _box_probability(fractions, bounds) -> float:
    """P(|Z_k| < c_k for all k) for the Brownian z statistics at `fractions` (exact: scipy's Genz integration)."""
    t = np.asarray(fractions, float)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    c = np.asarray(bounds, float)
    mvn = stats.multivariate_normal(mean=np.zeros(t.size), cov=cov, maxpts=2_000_000, abseps=1e-10, releps=1e-10)
    return float(mvn.cdf(c, lower_limit=-c))


@pytest.mark.parametrize("kind", ["obf", "pocock"])
def test_published_lan_demets_tables(kind: str) -> None:
    got = boundaries(FIVE, 0.05, kind)
    np.testing.assert_allclose(got, PUBLISHED[kind], atol=6e-4)  # published to 3 decimals


def test_power_family_first_look_and_default_rho() -> None:
    got = boundaries(FIVE, 0.05, "power")
    assert got[0] == pytest.approx(-special.ndtri(0.05 * 0.2**2 / 2), rel=1e-12)
    np.testing.assert_array_equal(got, boundaries(FIVE, 0.05, ("power", 2)))
    np.testing.assert_array_equal(got, boundaries(FIVE, 0.05, Spending("power", 2.0)))
    assert boundaries(FIVE, 0.05, ("power", 3))[0] > got[0]


@pytest.mark.parametrize("t", [1.0, 1.3])
def test_single_look_at_full_information_is_fixed_sample(t: float) -> None:
    for kind in ("obf", "pocock", "power"):
        assert boundaries([t], 0.05, kind)[0] == pytest.approx(special.ndtri(0.975), abs=1e-12)


@pytest.mark.parametrize(
    ("fractions", "kind"),
    [
        ([0.3, 1.0], "power"),
        ([0.05, 0.9], "obf"),
        ([0.5, 0.55], "pocock"),
        ([0.2, 0.45, 1.0], "obf"),  # unevenly spaced
        ([0.1, 0.7, 1.0], ("power", 3)),  # "missing" looks are just another fraction vector
    ],
)
def test_bounds_spend_exactly_the_intended_alpha(fractions, kind) -> None:
    """Exact multivariate-normal probability: 1 - P(no crossing up to look k) = alpha(t_k) at every look."""
    spending = sq.as_spending(kind)
    bounds = boundaries(fractions, 0.05, kind)
    for k in range(1, len(fractions) + 1):
        spent = 1.0 - _box_probability(fractions[:k], bounds[:k])
        assert spent == pytest.approx(float(spending.spent(fractions[k - 1], 0.05)), rel=1e-6, abs=1e-9)


def test_monte_carlo_brownian_paths_reject_at_alpha() -> None:
    """200k correlated Brownian paths at five looks: cumulative rejection follows the spending function."""
    rng = np.random.default_rng(20240601)
    t = FIVE
    score = np.cumsum(rng.standard_normal((200_000, t.size)) * np.sqrt(np.diff(t, prepend=0.0)), axis=1)
    z = np.abs(score / np.sqrt(t))
    for kind in ("obf", "pocock", "power"):
        crossed = np.maximum.accumulate(z >= boundaries(t, 0.05, kind), axis=1)
        want = sq.as_spending(kind).spent(t, 0.05)
        band = 4.0 * np.sqrt(want * (1 - want) / z.shape[0])
        assert np.all(np.abs(crossed.mean(axis=0) - want) <= band), (kind, crossed.mean(axis=0), want)


def test_bounds_agree_with_a_much_finer_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    inc = rng.uniform(0.3, 1.7, (40, 14))
    schedules = list(np.cumsum(inc, axis=1) / inc.sum(axis=1, keepdims=True))
    for kind in ("obf", "pocock", "power"):
        got = bounds_for_schedules(schedules, 0.01, kind)
        monkeypatch.setattr(sq, "GRID_MIN", 192)
        fine = bounds_for_schedules(schedules, 0.01, kind)
        monkeypatch.undo()
        assert max(np.max(np.abs(a - b)) for a, b in zip(got, fine, strict=True)) < 1e-7


def test_vectorised_equals_one_at_a_time() -> None:
    schedules = [[0.2, 0.5, 1.0], [0.1, 0.2, 0.3, 0.4], [0.5], [0.25, 0.5, 0.75, 1.0, 1.1]]
    together = bounds_for_schedules(schedules, [0.05, 0.01, 0.05, 0.1], "obf")
    for s, a, got in zip(schedules, [0.05, 0.01, 0.05, 0.1], together, strict=True):
        np.testing.assert_allclose(got, boundaries(s, a, "obf"), rtol=1e-12)


def test_edge_cases_of_a_schedule() -> None:
    # a look beyond full information spends what is left; after that nothing is left to spend
    over = boundaries([0.5, 1.2, 1.4], 0.05, "power")
    assert np.isfinite(over[1]) and over[2] == np.inf
    assert 1 - _box_probability([0.5, 1.2], over[:2]) == pytest.approx(0.05, rel=1e-6)
    # a repeated fraction (no new units) repeats the bound; the next look is unaffected
    rep = boundaries([0.4, 0.4, 0.8], 0.05, "obf")
    ref = boundaries([0.4, 0.8], 0.05, "obf")
    assert rep[1] == rep[0] and rep[2] == pytest.approx(ref[1], abs=1e-10)
    # an increment too small to resolve is not a look of its own: infinite bound, alpha rolls over
    tiny = boundaries([0.4, 0.4 + 1e-7, 0.8], 0.05, "obf")
    assert tiny[1] == np.inf and tiny[2] == pytest.approx(ref[1], abs=1e-10)
    # a bound depends on earlier looks only
    np.testing.assert_allclose(boundaries(FIVE[:3], 0.05, "obf"), boundaries(FIVE, 0.05, "obf")[:3], rtol=1e-12)
    with pytest.raises(ValueError):
        boundaries([0.5, 0.4], 0.05)
    with pytest.raises(ValueError):
        boundaries([0.0, 0.4], 0.05)
    with pytest.raises(ValueError):
        boundaries([0.5], 1.5)
    with pytest.raises(ValueError):
        Spending("haybittle")
    with pytest.raises(ValueError):
        Spending("power", -1)


# ---------------------------------------------------------------------------------------------------------------
# group_sequential_bounds


def _looks(schedules: dict[tuple[str, str], list[float]], alpha: float = 0.05) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"experiment_id": e, "metric_id": m, "as_of_date": dt.date(2024, 1, 1) + dt.timedelta(days=k),
             "information_fraction": t, "alpha": alpha}
            for (e, m), ts in schedules.items()
            for k, t in enumerate(ts)
        ]
    )  # fmt: skip


def test_group_sequential_bounds_per_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    schedules = {
        ("a", "m1"): [0.2, 0.4, 0.6],
        ("a", "m2"): [0.2, 0.4, 0.6],  # same schedule as a/m1: solved once
        ("b", "m1"): [0.1, 0.5, 1.0, 1.2],  # over-runs at the last look: re-solved on fractions / 1.2
        ("c", "m1"): [0.3, 0.2, 0.6],  # decreasing at the second look: null from there
    }
    looks = _looks(schedules).sample(fraction=1.0, shuffle=True, seed=3)
    solved: list[int] = []
    real = sq.bounds_for_schedules
    monkeypatch.setattr(sq, "bounds_for_schedules", lambda s, a, sp: solved.append(len(s)) or real(s, a, sp))
    out = group_sequential_bounds(looks, by=["experiment_id", "metric_id"], alpha="alpha", spending="obf")
    assert solved == [4]  # three schedules, and b's rescaled one
    assert out.select(looks.columns).equals(looks)  # rows and their order kept
    for (e, m), ts in schedules.items():
        got = out.filter((pl.col("experiment_id") == e) & (pl.col("metric_id") == m)).sort("as_of_date")
        crit = got["critical_value"].to_list()
        if e == "c":
            assert crit[0] == pytest.approx(boundaries([0.3], 0.05, "obf")[0]) and crit[1:] == [None, None]
            continue
        if e == "b":
            np.testing.assert_allclose(crit[:3], boundaries(ts, 0.05, "obf")[:3], rtol=1e-12)
            rescaled = boundaries(np.array(ts) / 1.2, 0.05, "obf")
            assert crit[3] == pytest.approx(rescaled[-1], rel=1e-12) and np.isfinite(crit[3])
            assert got["spent_fraction"].to_list() == pytest.approx([0.1, 0.5, 1.0, 1.0])
            continue
        np.testing.assert_allclose(crit, boundaries(ts, 0.05, "obf"), rtol=1e-12)
        np.testing.assert_allclose(got["sequential_alpha"].to_numpy(), 2 * special.ndtr(-np.array(crit)), rtol=1e-12)


def test_group_sequential_bounds_options_and_errors() -> None:
    looks = _looks({("a", "m"): [0.5, 1.0]}).drop("alpha")
    out = group_sequential_bounds(looks, by=["experiment_id", "metric_id"], alpha=0.01, spending=("power", 3))
    np.testing.assert_allclose(out["critical_value"].to_numpy(), boundaries([0.5, 1.0], 0.01, ("power", 3)))
    with pytest.raises(ValueError, match="missing"):
        group_sequential_bounds(looks, by=["experiment_id"], alpha="alpha")
    with pytest.raises(ValueError, match="repeated"):
        group_sequential_bounds(pl.concat([looks, looks]), by=["experiment_id"], alpha=0.05)
    varying = _looks({("a", "m"): [0.5, 1.0]}).with_columns(alpha=pl.Series([0.05, 0.01]))
    assert group_sequential_bounds(varying, by=["experiment_id"])["critical_value"].null_count() == 2
    empty = group_sequential_bounds(looks.clear(), by=["experiment_id"], alpha=0.05)
    assert empty.height == 0 and "critical_value" in empty.columns


# ---------------------------------------------------------------------------------------------------------------
# confidence sequences


def test_confidence_sequence_interval_and_p_value_agree() -> None:
    rng = np.random.default_rng(1)
    est = rng.normal(0, 0.05, 500)
    se = rng.uniform(0.01, 0.05, 500)
    n = rng.integers(100, 100_000, 500)
    out = confidence_sequence(est, se, n, alpha=0.05, tuning=5000)
    outside = (out["ci_lower"] > 0) | (out["ci_upper"] < 0)
    np.testing.assert_array_equal(outside, out["p_value"] < 0.05)
    assert np.all(out["tuning_parameter"] == 5000) and np.all(out["p_value"] <= 1)
    # wider than the fixed-horizon interval
    assert np.all(out["ci_upper"] - est > special.ndtri(0.975) * se)


def test_confidence_sequence_from_moments() -> None:
    out = confidence_sequence_from_moments(1.0, 4.0, 1000, 1.1, 5.0, 1200, alpha=0.1, tuning=2000)
    se = math.sqrt(4 / 1000 + 5 / 1200)
    ref = confidence_sequence(0.1, se, 2200, alpha=0.1, tuning=2000)
    assert out["estimate"] == pytest.approx(0.1) and out["std_error"] == pytest.approx(se)
    for k in ("ci_lower", "ci_upper", "p_value"):
        assert out[k] == pytest.approx(ref[k], rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# calibration: A/A experiments peeked at daily


def test_peeking_calibration_on_aa_data() -> None:
    """2,000 A/A experiments (conversion 10%), 14 daily looks with random traffic and their own schedules:
    the group-sequential test and the confidence sequence keep the type-I error at alpha, naive daily
    fixed-horizon testing does not."""
    rng = np.random.default_rng(7)
    n_exp, days, alpha, p = 2000, 14, 0.05, 0.1
    traffic = rng.integers(200, 800, (n_exp, 1)) * rng.uniform(0.6, 1.4, (n_exp, days))
    n = np.cumsum(rng.poisson(np.repeat(traffic[:, None, :], 2, axis=1)), axis=2).astype(float)  # (exp, group, day)
    x = np.cumsum(rng.binomial(np.diff(n, axis=2, prepend=0.0).astype(int), p), axis=2).astype(float)
    mean = x / n
    var = mean * (1 - mean)
    diff = mean[:, 1] - mean[:, 0]
    se = np.sqrt(var[:, 0] / n[:, 0] + var[:, 1] / n[:, 1])
    z = diff / se
    total = n.sum(axis=1)
    planned = traffic.sum(axis=1, keepdims=True) * 2  # expected 14-day total of both groups

    looks = pl.DataFrame({
        "experiment_id": np.repeat(np.arange(n_exp), days),
        "as_of_date": np.tile(np.arange(days), n_exp),
        "information_fraction": (total / planned).ravel(),
    })  # fmt: skip
    bounds = group_sequential_bounds(looks, by=["experiment_id"], alpha=alpha, spending="obf")
    crit = bounds["critical_value"].to_numpy().reshape(n_exp, days)
    gst = np.mean(np.any(np.abs(z) >= crit, axis=1))
    naive = np.mean(np.any(np.abs(z) >= special.ndtri(1 - alpha / 2), axis=1))
    cs = confidence_sequence(diff, se, total, alpha=alpha, tuning=float(np.median(planned)))
    always_valid = np.mean(np.any(cs["p_value"] < alpha, axis=1))

    band = 3 * math.sqrt(alpha * (1 - alpha) / n_exp)
    print(f"type-I error: group-sequential {gst:.4f}, naive daily {naive:.4f}, confidence sequence {always_valid:.4f}")
    assert gst <= alpha + band, gst
    assert gst >= alpha - 2 * band, gst  # not grossly conservative either
    assert naive > alpha + 4 * band, naive
    assert always_valid <= alpha + band, always_valid

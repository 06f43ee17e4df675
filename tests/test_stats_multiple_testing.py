"""Multiple-testing corrections within a family (experiment_id, as_of_date[, segment]): Bonferroni, Holm,
Benjamini-Hochberg (against straightforward per-family reference implementations and scipy) and spot-1."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

from pipelines.stats import compare
from pipelines.stats.multiple_testing import family_index, family_size

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


def stats_frame(experiments: dict[str, int], metrics: int, dates=(D1,), segments=None, seed: int = 3) -> pl.DataFrame:
    """Random sufficient statistics: experiment -> number of treatments, `metrics` metrics per experiment."""
    rng = np.random.default_rng(seed)
    rows = []
    for (exp, n_treat), m, date, seg in itertools.product(experiments.items(), range(metrics), dates, segments or [None]):
        for v in ["control", *[f"t{i}" for i in range(1, n_treat + 1)]]:
            n = int(rng.integers(200, 400))
            x = rng.normal(rng.normal(0, 0.1), 1.0, size=n)
            row = {"experiment_id": exp, "metric_id": f"m{m}", "as_of_date": date, "variant": v,
                   "is_control": v == "control", "metric_type": "mean", "n": n,
                   "sum": float(x.sum()), "sum_sq": float((x**2).sum())}  # fmt: skip
            if seg is not None:
                row["segment"] = seg
            rows.append(row)
    return pl.DataFrame(rows)


def test_m_is_metrics_times_treatments_per_family() -> None:
    out = compare(stats_frame({"a": 3, "b": 1}, metrics=2, dates=(D1, D2)), alpha=0.1)
    m = out.group_by("experiment_id").agg(pl.col("adjusted_alpha").unique())
    got = {r["experiment_id"]: r["adjusted_alpha"] for r in m.to_dicts()}
    assert got["a"] == pytest.approx([0.1 / 6]) and got["b"] == pytest.approx([0.1 / 2])
    assert out.height == 2 * (6 + 2)


def test_segments_form_their_own_family() -> None:
    out = compare(stats_frame({"a": 2}, metrics=3, segments=["ios", "web"]), alpha=0.05)
    assert out["adjusted_alpha"].unique().to_list() == pytest.approx([0.05 / 6])


def test_custom_family_pools_dates() -> None:
    out = compare(stats_frame({"a": 1}, metrics=2, dates=(D1, D2)), alpha=0.05, family=("experiment_id",))
    assert out["adjusted_alpha"].unique().to_list() == pytest.approx([0.05 / 4])


def test_adjusted_p_value_ci_and_significance_are_consistent() -> None:
    out = compare(stats_frame({"a": 4, "b": 2, "c": 1}, metrics=3, seed=9), alpha=0.05)
    m = out["alpha"] / out["adjusted_alpha"]
    np.testing.assert_allclose(out["adjusted_p_value"], np.minimum(1.0, out["p_value"] * m), rtol=1e-12)
    assert ((out["adjusted_p_value"] < out["alpha"]) == (out["p_value"] < out["adjusted_alpha"])).all()
    assert (out["is_significant"] == (out["p_value"] < out["adjusted_alpha"])).all()
    q = st.norm.ppf(1 - out["adjusted_alpha"].to_numpy() / 2)
    np.testing.assert_allclose(out["adjusted_ci_lower"], out["estimate"] - q * out["std_error"], rtol=1e-12)
    np.testing.assert_allclose(out["adjusted_ci_upper"], out["estimate"] + q * out["std_error"], rtol=1e-12)
    # an adjusted CI excludes 0 exactly when the comparison is significant
    excludes = (out["adjusted_ci_lower"] > 0) | (out["adjusted_ci_upper"] < 0)
    assert (excludes == out["is_significant"]).all()
    assert (out["adjusted_ci_upper"] - out["adjusted_ci_lower"] >= out["ci_upper"] - out["ci_lower"]).all()


def test_t_test_adjusted_ci_uses_welch_quantile() -> None:
    out = compare(stats_frame({"a": 2}, metrics=1), method="t", alpha=0.05)
    half = (out["adjusted_ci_upper"] - out["adjusted_ci_lower"]) / 2 / out["std_error"]
    assert (half > st.norm.ppf(1 - 0.05 / 4)).all()  # t quantile > z quantile


def test_no_correction() -> None:
    out = compare(stats_frame({"a": 3}, metrics=2), alpha=0.05, correction="none")
    assert (out["adjusted_alpha"] == 0.05).all()
    np.testing.assert_allclose(out["adjusted_p_value"], out["p_value"])
    with pytest.raises(ValueError):
        compare(stats_frame({"a": 1}, metrics=1), correction="hochberg")


def test_family_size_counts_comparisons_per_family() -> None:
    frame = pl.DataFrame({"family": ["f", "f", "g"], "metric_id": ["m", "n", "m"], "treatment": ["a", "a", "a"]})
    assert family_size(frame, ["family"]).to_list() == [2, 2, 1]
    assert family_size(frame, ["family"], "none").to_list() == [1, 1, 1]
    assert family_size(frame, []).to_list() == [3, 3, 3]


# ------------------------------------------------------------------------------------- Holm and Benjamini-Hochberg


def holm_reference(p: list[float]) -> list[float]:
    """Holm (1979) adjusted p-values, straightforwardly: sort, multiply by (m - i), running max, cap at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * p[i]))
        out[i] = running
    return out


def bh_reference(p: list[float]) -> list[float]:
    """Benjamini-Hochberg (1995) adjusted p-values: from the largest p down, running min of m p / rank."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 1.0
    for step in range(m - 1, -1, -1):
        i = order[step]
        running = min(running, m * p[i] / (step + 1))
        out[i] = min(1.0, running)
    return out


def reject_reference(p: list[float], alpha: float, method: str) -> list[bool]:
    """Holm step-down / BH step-up decisions straight from the definitions."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    reject = [False] * m
    if method == "holm":
        for step, i in enumerate(order):
            if p[i] > alpha / (m - step):
                break
            reject[i] = True
    else:
        k = max((s + 1 for s, i in enumerate(order) if p[i] <= alpha * (s + 1) / m), default=0)
        for i in order[:k]:
            reject[i] = True
    return reject


@pytest.mark.parametrize("method", ["holm", "benjamini-hochberg"])
def test_stepwise_matches_per_family_reference(method: str) -> None:
    stats = stats_frame({"a": 4, "b": 2, "c": 1, "d": 3}, metrics=5, dates=(D1, D2), seed=21)
    # plant effects so that some families reject several hypotheses
    boost = (pl.col("variant") != "control") & pl.col("metric_id").is_in(["m0", "m1"])
    stats = stats.with_columns(pl.when(boost).then(pl.col("sum") + 0.3 * pl.col("n")).otherwise(pl.col("sum")).alias("sum"),
                               pl.when(boost).then(pl.col("sum_sq") + 0.6 * pl.col("sum") + 0.09 * pl.col("n")).otherwise(pl.col("sum_sq")).alias("sum_sq"))  # fmt: skip
    out = compare(stats, alpha=0.05, correction=method)
    ref = holm_reference if method == "holm" else bh_reference
    checked = 0
    for (exp, date), grp in out.group_by(["experiment_id", "as_of_date"]):
        p = grp["p_value"].to_list()
        np.testing.assert_allclose(grp["adjusted_p_value"], ref(p), rtol=1e-12)
        assert grp["is_significant"].to_list() == reject_reference(p, 0.05, "holm" if method == "holm" else "bh")
        # the data-dependent threshold separates rejected from accepted raw p-values
        thr = grp["adjusted_alpha"].to_numpy()
        assert ((grp["p_value"].to_numpy() <= thr) == grp["is_significant"].to_numpy()).all()
        checked += grp["is_significant"].sum()
    assert checked > 5  # the planted effects were found


def test_bh_matches_scipy_false_discovery_control() -> None:
    out = compare(stats_frame({"a": 6}, metrics=8, seed=4), alpha=0.1, correction="bh")
    np.testing.assert_allclose(out["adjusted_p_value"], st.false_discovery_control(out["p_value"].to_numpy()), rtol=1e-12)


def test_stepwise_adjusted_intervals() -> None:
    stats = stats_frame({"a": 3}, metrics=4, seed=8)
    holm = compare(stats, alpha=0.05, correction="holm")
    m = holm.height
    q = st.norm.ppf(1 - 0.05 / m / 2)  # Holm: Bonferroni intervals at alpha/m
    np.testing.assert_allclose(holm["adjusted_ci_lower"], holm["estimate"] - q * holm["std_error"], rtol=1e-12)
    bh = compare(stats, alpha=0.05, correction="bh")
    r = max(int(bh["is_significant"].sum()), 1)
    q = st.norm.ppf(1 - 0.05 * r / m / 2)  # BH: FCR intervals (Benjamini-Yekutieli 2005) at level 1 - alpha R/m
    np.testing.assert_allclose(bh["adjusted_ci_upper"], bh["estimate"] + q * bh["std_error"], rtol=1e-12)
    excludes = (bh["adjusted_ci_lower"] > 0) | (bh["adjusted_ci_upper"] < 0)
    assert (excludes == bh["is_significant"]).all()


def test_stepwise_counts_degenerate_rows_and_never_rejects_them() -> None:
    stats = stats_frame({"a": 2}, metrics=3, seed=5)
    broken = stats.with_columns(pl.when((pl.col("metric_id") == "m2") & (pl.col("variant") == "t1")).then(1).otherwise(pl.col("n")).alias("n"))
    for method in ("holm", "bh"):
        out = compare(broken, correction=method)
        bad = out.filter(pl.col("status") != "ok")
        assert bad.height == 1 and bad["is_significant"].to_list() == [None] and bad["adjusted_p_value"].to_list() == [None]
        ok = out.filter(pl.col("status") == "ok")
        p = ok["p_value"].to_list() + [1.0]  # the degenerate row counts in m with p = 1
        ref = (holm_reference if method == "holm" else bh_reference)(p)[:-1]
        np.testing.assert_allclose(ok["adjusted_p_value"], ref, rtol=1e-12)


def test_bh_controls_fdr_in_simulation() -> None:
    """1,000 families of 20 one-metric comparisons, 25% real effects: mean false-discovery proportion <= alpha,
    while Holm (FWER) makes fewer discoveries."""
    rng = np.random.default_rng(99)
    families, per, n, alpha = 1000, 20, 200, 0.1
    k = families * per
    effect = np.where(rng.random(k) < 0.25, 0.3, 0.0)
    means = rng.normal(0.0, 1 / math.sqrt(n), size=(k, 2)) + np.column_stack([np.zeros(k), effect])
    var = rng.chisquare(n - 1, size=(k, 2)) / (n - 1)
    sums = means * n
    stats = pl.DataFrame(
        {
            "experiment_id": np.repeat(np.arange(families), 2 * per).astype(str),
            "metric_id": np.repeat(np.arange(k) % per, 2).astype(str),
            "as_of_date": D1,
            "variant": np.tile(["control", "t1"], k),
            "is_control": np.tile([True, False], k),
            "metric_type": "mean",
            "n": n,
            "sum": sums.ravel(),
            "sum_sq": (var * (n - 1) + sums**2 / n).ravel(),
        }
    )
    truth = pl.DataFrame({"experiment_id": np.repeat(np.arange(families), per).astype(str),
                          "metric_id": (np.arange(k) % per).astype(str), "null": effect == 0})  # fmt: skip
    bh = compare(stats, alpha=alpha, correction="bh").join(truth, on=["experiment_id", "metric_id"])
    fdp = bh.group_by("experiment_id").agg(
        (pl.col("is_significant") & pl.col("null")).sum() / pl.max_horizontal(pl.col("is_significant").sum(), 1)
    )
    fdr = fdp.to_series(1).mean()
    assert fdr <= alpha * 0.75 + 3 * math.sqrt(alpha / families)  # BH: FDR <= pi0 alpha = 0.075 (+ MC error)
    holm = compare(stats, alpha=alpha, correction="holm")
    assert bh["is_significant"].sum() > holm["is_significant"].sum()


def test_stepwise_is_vectorised_over_many_families() -> None:
    import time

    stats = stats_frame({f"e{i}": 3 for i in range(2000)}, metrics=5, seed=1)
    start = time.perf_counter()
    out = compare(stats, correction="holm")
    assert out.height == 2000 * 15 and time.perf_counter() - start < 5.0


# ------------------------------------------------------------------------------------------------ spot-1 counting


def test_spot1_family_size_ignores_guardrails_and_segments_split() -> None:
    stats = stats_frame({"a": 3, "b": 1}, metrics=4, segments=["ios", "web"]).with_columns(
        non_inferiority_margin=pl.when(pl.col("metric_id").is_in(["m2", "m3"])).then(0.05),
        preferred_direction=pl.when(pl.col("metric_id").is_in(["m2", "m3"])).then(pl.lit("increase")),
    )
    out = compare(stats, alpha=0.1, correction="spot-1-bonferroni")
    success = out.filter(pl.col("metric_id").is_in(["m0", "m1"]))
    got = success.group_by("experiment_id").agg(pl.col("adjusted_alpha").unique())
    assert dict(zip(got["experiment_id"], got["adjusted_alpha"].to_list(), strict=True)) == {
        "a": pytest.approx([0.1 / 6]), "b": pytest.approx([0.1 / 2])
    }  # fmt: skip
    guard = out.filter(pl.col("metric_id").is_in(["m2", "m3"]))
    assert guard.filter(pl.col("experiment_id") == "a")["adjusted_alpha"].unique().to_list() == pytest.approx([0.2 / 6])
    assert out["adjusted_power"].unique().to_list() == pytest.approx([1 - 0.2 / 3])


def test_spot1_without_success_metrics() -> None:
    stats = stats_frame({"a": 2}, metrics=2).with_columns(
        non_inferiority_margin=pl.lit(0.05), preferred_direction=pl.lit("decrease")
    )
    out = compare(stats, alpha=0.05, correction="spot-1-bonferroni")
    # m = 2 treatments x max(1, 0 success); G = 2 guardrails and no success metric: power split over G
    assert out["adjusted_alpha"].unique().to_list() == pytest.approx([0.1 / 2])
    assert out["adjusted_power"].unique().to_list() == pytest.approx([1 - 0.2 / 2])


def test_family_index_handles_interleaved_families() -> None:
    frame = pl.DataFrame({"f": ["x", "y", "x", "y", "z", "x"], "g": [1, 1, 1, 1, 1, 2]})
    ids = family_index(frame, ["f", "g"])
    assert len({ids[0], ids[2]}) == 1 and ids[0] != ids[1] and ids[1] == ids[3] and len(set(ids.tolist())) == 4
    contiguous = pl.DataFrame({"f": ["x", "x", "y", "z", "z"]})
    assert family_index(contiguous, ["f"]).tolist() == [0, 0, 1, 2, 2]
    assert family_size(frame, ["f", "g"]).to_list() == [2, 2, 2, 2, 1, 1]


def test_stepwise_powered_effect_uses_bonferroni_alpha() -> None:
    stats = stats_frame({"a": 3}, metrics=2, seed=12)
    bonf = compare(stats, correction="bonferroni")
    for method in ("holm", "bh"):
        np.testing.assert_allclose(compare(stats, correction=method)["powered_effect"], bonf["powered_effect"], rtol=1e-12)


def test_risk_aware_rule_does_not_count_deterioration_only_metrics() -> None:
    """Alpha is split over success metrics only; a metric tested for harm only neither takes alpha nor power."""
    frame = stats_frame({"a": 1}, metrics=3).with_columns(
        role=pl.col("metric_id").replace_strict({"m0": "success", "m1": "guardrail", "m2": "deterioration"}),
        non_inferiority_margin=pl.when(pl.col("metric_id") == "m1").then(0.05),
        preferred_direction=pl.lit("increase"),
    )
    out = compare(frame, alpha=0.05, correction="spot-1-bonferroni", power=0.8)
    by_metric = {r["metric_id"]: r for r in out.to_dicts()}
    # One success metric and one treatment: the whole alpha (spot-1 reports a directional test two-sided at 2 alpha).
    assert by_metric["m0"]["adjusted_alpha"] == pytest.approx(2 * 0.05)
    assert by_metric["m0"]["adjusted_power"] == pytest.approx(1 - 0.2 / 2)  # one guardrail
    without_role = compare(frame.drop("role"), alpha=0.05, correction="spot-1-bonferroni", power=0.8)
    assert {r["metric_id"]: r for r in without_role.to_dicts()}["m0"]["adjusted_alpha"] == pytest.approx(2 * 0.05 / 2)

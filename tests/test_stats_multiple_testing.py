"""Bonferroni correction over metrics x treatments within a family (experiment_id, as_of_date[, segment])."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

from pipelines.stats import compare
from pipelines.stats.multiple_testing import family_size

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
        compare(stats_frame({"a": 1}, metrics=1), correction="holm")


def test_family_size_counts_comparisons_per_family() -> None:
    frame = pl.DataFrame({"family": ["f", "f", "g"], "metric_id": ["m", "n", "m"], "treatment": ["a", "a", "a"]})
    assert family_size(frame, ["family"]).to_list() == [2, 2, 1]
    assert family_size(frame, ["family"], "none").to_list() == [1, 1, 1]
    assert family_size(frame, []).to_list() == [3, 3, 3]

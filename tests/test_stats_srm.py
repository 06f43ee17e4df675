"""Sample ratio mismatch chi-square test versus scipy.stats.chisquare."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

from pipelines.stats import sample_ratio_mismatch

DATE = dt.date(2024, 1, 1)


def test_matches_scipy_chisquare_over_many_experiments() -> None:
    rng = np.random.default_rng(2)
    rows, expected = [], {}
    for i in range(300):
        k = int(rng.integers(2, 6))
        w = rng.uniform(0.5, 3.0, size=k)  # not normalised
        n = rng.multinomial(int(rng.integers(50, 50_000)), w / w.sum())
        if i % 7 == 0:  # planted mismatch
            n[0] += int(0.05 * n.sum())
        exp_id = f"e{i:03d}"
        rows += [{"experiment_id": exp_id, "as_of_date": DATE, "variant": f"v{j}", "n": int(n[j]),
                  "planned_weight": float(w[j])} for j in range(k)]  # fmt: skip
        res = st.chisquare(n, f_exp=n.sum() * w / w.sum())
        expected[exp_id] = (res.statistic, res.pvalue, k - 1, int(n.sum()))
    out = sample_ratio_mismatch(pl.DataFrame(rows))
    assert out.height == 300 and (out["status"] == "ok").all()
    for r in out.to_dicts():
        chi, p, dof, total = expected[r["experiment_id"]]
        assert r["chi_square"] == pytest.approx(chi, rel=1e-9)
        assert r["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-300)
        assert r["dof"] == dof and r["n_total"] == total


def test_by_keys_are_respected() -> None:
    rows = [
        {"experiment_id": "a", "as_of_date": d, "variant": v, "n": n, "planned_weight": 1}
        for d, counts in ((DATE, (100, 100)), (dt.date(2024, 1, 2), (100, 150)))
        for v, n in zip(("c", "t"), counts, strict=True)
    ]
    out = sample_ratio_mismatch(pl.DataFrame(rows)).sort("as_of_date")
    assert out["p_value"][0] == pytest.approx(1.0)
    assert out["p_value"][1] == pytest.approx(st.chisquare([100, 150]).pvalue)
    pooled = sample_ratio_mismatch(pl.DataFrame(rows), by=("experiment_id", "variant"))
    assert pooled.height == 2


def test_extreme_mismatch_gives_tiny_p_not_nan() -> None:
    out = sample_ratio_mismatch(
        pl.DataFrame({"experiment_id": "a", "as_of_date": DATE, "variant": ["c", "t"], "n": [100_000, 150_000],
                      "planned_weight": [0.5, 0.5]})  # fmt: skip
    )
    assert out["status"][0] == "ok"
    assert 0.0 <= out["p_value"][0] < 1e-100


@pytest.mark.parametrize(
    ("variants", "counts", "weights", "status"),
    [
        (["c", "t"], [0, 0], [0.5, 0.5], "no_units"),
        (["c"], [100], [1.0], "single_variant"),
        (["c", "t"], [100, 100], [0.5, 0.0], "invalid_weights"),
        (["c", "t"], [100, 100], [0.5, None], "invalid_weights"),
        (["c", "t"], [100, -1], [0.5, 0.5], "invalid_counts"),
        (["c", "c"], [100, 100], [0.5, 0.5], "duplicate_variant"),
    ],
)
def test_degenerate_input_gives_status(variants, counts, weights, status) -> None:
    good = [{"experiment_id": "ok", "as_of_date": DATE, "variant": v, "n": 10, "planned_weight": 1.0} for v in "ab"]
    bad = [
        {"experiment_id": "x", "as_of_date": DATE, "variant": v, "n": n, "planned_weight": w}
        for v, n, w in zip(variants, counts, weights, strict=True)
    ]
    out = sample_ratio_mismatch(pl.DataFrame(good + bad, schema_overrides={"planned_weight": pl.Float64})).sort("experiment_id")
    assert out["status"].to_list() == ["ok", status]
    assert out["status_reason"][0] is None and out["status_reason"][1]
    assert out["p_value"][1] is None and out["chi_square"][1] is None
    assert out["p_value"].is_nan().sum() == 0

"""Ratio metrics: delta-method moments against brute force on simulated units, Monte Carlo, A/A and degenerate input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.stats import compare
from pipelines.stats.ratio import metric_group_moments, ratio_group_moments


def _units(rng: np.random.Generator, shape: tuple[int, ...], lift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: d purchases (Poisson, >= 0) and m revenue correlated with d (Gamma per purchase)."""
    d = rng.poisson(2.0, size=shape).astype(float)
    m = rng.gamma(2.0, 5.0 * (1.0 + lift), size=shape) * d + rng.normal(0.0, 1.0, size=shape)
    return m, d


def _sums(m: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    """Sufficient statistics over the last axis."""
    return {
        "n": np.full(m.shape[:-1], m.shape[-1]),
        "sum": m.sum(-1),
        "sum_sq": (m * m).sum(-1),
        "den_sum": d.sum(-1),
        "den_sum_sq": (d * d).sum(-1),
        "cross_sum": (m * d).sum(-1),
    }


def _frame(control: dict, treatment: dict) -> pl.DataFrame:
    """Group rows for R experiments from sums arrays of shape (R,)."""
    reps = len(control["n"])
    rows = []
    for variant, sums in (("control", control), ("treatment", treatment)):
        rows.append(
            pl.DataFrame(
                {"experiment_id": np.arange(reps), "metric_id": "rpp", "as_of_date": 0, "variant": variant,
                 "is_control": variant == "control", "metric_type": "ratio", **sums}
            )
        )  # fmt: skip
    return pl.concat(rows)


def test_ratio_moments_equal_brute_force_linearisation() -> None:
    rng = np.random.default_rng(1)
    m, d = _units(rng, (5, 400))
    out = ratio_group_moments(
        pl.DataFrame({"g": np.arange(5), **_sums(m, d)})
    )
    ratio = m.sum(1) / d.sum(1)
    # per-unit linearised value L = (m - R d) / mean(d); its sample variance is the delta-method variance
    lin = (m - ratio[:, None] * d) / d.mean(1, keepdims=True)
    np.testing.assert_allclose(out["mean"].to_numpy(), ratio, rtol=1e-12)
    np.testing.assert_allclose(out["variance"].to_numpy(), lin.var(1, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(out["denominator_mean"].to_numpy(), d.mean(1), rtol=1e-12)
    assert out["input_problem"].is_null().all()


def test_delta_variance_matches_monte_carlo_spread() -> None:
    rng = np.random.default_rng(2)
    n, reps = 500, 4000
    m, d = _units(rng, (reps, n))
    out = ratio_group_moments(pl.DataFrame(_sums(m, d)))
    predicted = (out["variance"].to_numpy() / n).mean()
    empirical = out["mean"].to_numpy().var(ddof=1)
    assert empirical == pytest.approx(predicted, rel=0.08)


def test_metric_group_moments_for_every_kind() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(3.0, 2.0, 300)
    b = (rng.random(300) < 0.3).astype(float)
    m, d = _units(rng, (300,))
    frame = pl.DataFrame(
        [
            {"metric_type": "mean", "n": 300, "sum": y.sum(), "sum_sq": (y * y).sum()},
            {"metric_type": "proportion", "n": 300, "sum": b.sum(), "sum_sq": b.sum()},
            {"metric_type": "ratio", **{k: float(v) for k, v in _sums(m, d).items()}},
        ]
    )
    out = metric_group_moments(frame)
    p = b.mean()
    r = m.sum() / d.sum()
    lin = (m - r * d) / d.mean()
    np.testing.assert_allclose(out["mean"].to_numpy(), [y.mean(), p, r], rtol=1e-12)
    np.testing.assert_allclose(out["variance"].to_numpy(), [y.var(ddof=1), p * (1 - p), lin.var(ddof=1)], rtol=1e-9)


def test_aa_ratio_rejection_rate_is_nominal() -> None:
    rng = np.random.default_rng(4)
    reps, n, alpha = 3000, 300, 0.05
    c = _sums(*_units(rng, (reps, n)))
    t = _sums(*_units(rng, (reps, n)))
    out = compare(_frame(c, t).with_columns(pl.col("n").cast(pl.Int64)), alpha=alpha, method="t", correction="none",
                  relative_method="delta")  # fmt: skip
    assert (out["status"] == "ok").all()
    band = 3.5 * np.sqrt(alpha * (1 - alpha) / reps)
    for column in ("p_value", "relative_p_value"):
        rate = (out[column].to_numpy() < alpha).mean()
        assert abs(rate - alpha) < band, (column, rate)


def test_ratio_detects_a_real_lift() -> None:
    rng = np.random.default_rng(5)
    c = _sums(*_units(rng, (1, 5000)))
    t = _sums(*_units(rng, (1, 5000), lift=0.1))
    out = compare(_frame(c, t), method="t", relative_method="delta").row(0, named=True)
    assert out["p_value"] < 1e-3
    assert out["relative_ci_lower"] < 0.1 < out["relative_ci_upper"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"n": 10, "sum": 5.0, "sum_sq": 9.0, "den_sum": 0.0, "den_sum_sq": 0.0, "cross_sum": 0.0}, "denominator sum is 0"),
        ({"n": 1, "sum": 5.0, "sum_sq": 25.0, "den_sum": 1.0, "den_sum_sq": 1.0, "cross_sum": 5.0}, "need n >= 2"),
        ({"n": 0, "sum": 0.0, "sum_sq": 0.0, "den_sum": 0.0, "den_sum_sq": 0.0, "cross_sum": 0.0}, "need n >= 2"),
        ({"n": 10, "sum": None, "sum_sq": 9.0, "den_sum": 2.0, "den_sum_sq": 4.0, "cross_sum": 1.0}, "missing"),
        ({"n": 10, "sum": float("inf"), "sum_sq": 9.0, "den_sum": 2.0, "den_sum_sq": 4.0, "cross_sum": 1.0}, "non-finite"),
        ({"n": 10, "sum": 10.0, "sum_sq": 0.0, "den_sum": 10.0, "den_sum_sq": 10.0, "cross_sum": 10.0}, "negative"),
    ],
)
def test_degenerate_ratio_gives_null_and_reason(row: dict, reason: str) -> None:
    frame = pl.DataFrame([row], schema={k: pl.Float64 if k != "n" else pl.Int64 for k in row})
    out = ratio_group_moments(frame).row(0, named=True)
    assert out["mean"] is None and out["variance"] is None
    assert reason in out["input_problem"]
    generic = metric_group_moments(frame.with_columns(metric_type=pl.lit("ratio"))).row(0, named=True)
    assert generic["mean"] is None and generic["variance"] is None and generic["input_problem"]


def test_constant_ratio_has_zero_variance_not_nan() -> None:
    # every unit buys 2 items for 10: R = 5 exactly, variance 0 (no NaN, no rounding residue)
    n = 50
    frame = pl.DataFrame({"n": [n], "sum": [10.0 * n], "sum_sq": [100.0 * n], "den_sum": [2.0 * n],
                          "den_sum_sq": [4.0 * n], "cross_sum": [20.0 * n]})  # fmt: skip
    out = ratio_group_moments(frame).row(0, named=True)
    assert out["mean"] == 5.0 and out["variance"] == 0.0 and out["input_problem"] is None


def test_missing_ratio_columns_raise_a_clear_error() -> None:
    with pytest.raises(ValueError, match="den_sum"):
        ratio_group_moments(pl.DataFrame({"n": [3], "sum": [1.0], "sum_sq": [1.0]}))

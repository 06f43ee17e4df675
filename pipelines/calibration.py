"""`verdict validate aa`: the engine's error rates, measured by simulation rather than assumed.

Simulates many experiments with daily looks: every day new units arrive in each arm and their values are
drawn per unit (skewed continuous values and conversions), so every look holds the cumulative sufficient
statistics of the units seen so far. A/A experiments give the false-positive rate of each method (fixed
horizon at the last look; group-sequential and confidence sequences peeked at every look); experiments with
a planted effect, sized so the fixed-horizon test has its designed power, give the observed power.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special, stats

from pipelines.stats.comparison import analyse

LOOKS = 14
UNITS_PER_ARM_PER_DAY = 200
DESIGNED_POWER = 0.8


@dataclass(frozen=True)
class Rate:
    """A proportion of simulated experiments with its exact (Clopper-Pearson) 95% interval."""

    hits: int
    runs: int

    @property
    def value(self) -> float:
        return self.hits / self.runs

    @property
    def interval(self) -> tuple[float, float]:
        lower = stats.beta.ppf(0.025, self.hits, self.runs - self.hits + 1) if self.hits else 0.0
        upper = stats.beta.ppf(0.975, self.hits + 1, self.runs - self.hits) if self.hits < self.runs else 1.0
        return float(lower), float(upper)

    def as_dict(self) -> dict[str, float | list[float]]:
        return {"rate": self.value, "ci95": list(self.interval), "hits": self.hits}


def simulate_looks(runs: int, *, relative_effect: float, seed: int, binary: bool) -> pl.DataFrame:
    """Cumulative sufficient statistics per run x look for a control and a treatment arm, one row per look.

    Per-unit values: lognormal (skewed, mean 10) or Bernoulli(0.2) conversions; the treatment's mean is
    multiplied by 1 + relative_effect.
    """
    rng = np.random.default_rng(seed)
    shape = (runs, LOOKS, UNITS_PER_ARM_PER_DAY)
    columns: dict[str, np.ndarray] = {}
    for arm, lift in (("control", 1.0), ("treatment", 1.0 + relative_effect)):
        if binary:
            values = (rng.random(shape) < 0.2 * lift).astype(float)
        else:
            values = lift * rng.lognormal(mean=np.log(10.0) - 0.5, sigma=1.0, size=shape)
        columns[f"n_{arm}"] = np.broadcast_to(UNITS_PER_ARM_PER_DAY * np.arange(1, LOOKS + 1), (runs, LOOKS)).ravel()
        columns[f"sum_{arm}"] = values.sum(axis=2).cumsum(axis=1).ravel()
        columns[f"sum_sq_{arm}"] = (values * values).sum(axis=2).cumsum(axis=1).ravel()
    start = dt.date(2026, 1, 1)
    return pl.DataFrame(
        {
            "experiment_id": np.repeat(np.arange(runs), LOOKS),
            "metric_id": pl.repeat("metric", runs * LOOKS, eager=True),
            "as_of_date": [start + dt.timedelta(days=d) for d in range(LOOKS)] * runs,
            "look": np.tile(np.arange(1, LOOKS + 1), runs),
            "control": pl.repeat("control", runs * LOOKS, eager=True),
            "treatment": pl.repeat("treatment", runs * LOOKS, eager=True),
            "metric_type": pl.repeat("proportion" if binary else "mean", runs * LOOKS, eager=True),
            **columns,
        }
    )


def designed_effect(alpha: float, power: float, binary: bool) -> float:
    """Relative effect e that a two-sided fixed-horizon z-test detects with `power` at the last look:
    e mean = (z_{1-alpha/2} + z_power) sqrt((var_c + var_t(e)) / n), solved by fixed-point iteration."""
    n = UNITS_PER_ARM_PER_DAY * LOOKS
    z = special.ndtri(1 - alpha / 2) + special.ndtri(power)
    if binary:
        mean = 0.2
        variance = lambda e: mean * (1 + e) * (1 - mean * (1 + e))  # noqa: E731
    else:
        mean = 10.0  # lognormal(log 10 - 1/2, 1): mean 10, variance 10^2 (e - 1), scaled by (1 + e)^2
        variance = lambda e: (1 + e) ** 2 * 100.0 * (np.e - 1.0)  # noqa: E731
    effect = 0.0
    for _ in range(50):
        effect = z * np.sqrt((variance(0.0) + variance(effect)) / n) / mean
    return float(effect)


def fixed_horizon_rejections(looks: pl.DataFrame, alpha: float) -> np.ndarray:
    """Per run: does the fixed-horizon z-test reject at the last look."""
    last = looks.filter(pl.col("look") == LOOKS)
    result = analyse(last, alpha=alpha, family=("experiment_id",))
    return result.get_column("is_significant").fill_null(False).to_numpy()


def naive_peeking_rejections(looks: pl.DataFrame, alpha: float) -> np.ndarray:
    """Per run: does the fixed-horizon test reject at any of the daily looks (peeking without correction)."""
    result = analyse(looks, alpha=alpha, family=("experiment_id", "as_of_date"))
    return (
        result.group_by("experiment_id").agg(pl.col("is_significant").fill_null(False).any())
        .sort("experiment_id").get_column("is_significant").to_numpy()
    )  # fmt: skip


def validate_aa(runs: int, seed: int, alpha: float = 0.05) -> dict:
    """False-positive rates of A/A experiments and observed vs designed power of planted effects."""
    false_positive: dict[str, dict] = {}
    power: dict[str, dict] = {}
    for binary, label in ((False, "mean"), (True, "proportion")):
        aa = simulate_looks(runs, relative_effect=0.0, seed=seed + binary, binary=binary)
        effect = designed_effect(alpha, DESIGNED_POWER, binary)
        ab = simulate_looks(runs, relative_effect=effect, seed=seed + 100 + binary, binary=binary)
        false_positive[label] = {
            "fixed": Rate(int(fixed_horizon_rejections(aa, alpha).sum()), runs).as_dict(),
            "naive_daily_peeking": Rate(int(naive_peeking_rejections(aa, alpha).sum()), runs).as_dict(),
        }
        power[label] = {
            "relative_effect": effect,
            "designed": DESIGNED_POWER,
            "fixed": Rate(int(fixed_horizon_rejections(ab, alpha).sum()), runs).as_dict(),
        }
    return {
        "runs": runs,
        "alpha": alpha,
        "looks": LOOKS,
        "false_positive_rate": {
            method: max(false_positive[kind][method]["rate"] for kind in false_positive)
            for method in ("fixed", "naive_daily_peeking")
        },
        "by_metric_type": false_positive,
        "power": power,
    }

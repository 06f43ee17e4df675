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
from pipelines.stats.sequential import confidence_sequence, group_sequential_bounds

LOOKS = 14
UNITS_PER_ARM_PER_DAY = 200  # on average: each day's traffic is uniform between 100 and 300 units per arm
PLANNED_UNITS = 2 * LOOKS * UNITS_PER_ARM_PER_DAY  # the group-sequential design's total sample size
DESIGNED_POWER = 0.8
CS_TUNING = float(PLANNED_UNITS)  # the confidence sequence is tightest around the planned sample size


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

    Daily traffic per arm is uniform on [100, 300] units, so looks are unevenly spaced in information.
    Per-unit values: lognormal (skewed, mean 10) or Bernoulli(0.2) conversions; the treatment's mean is
    multiplied by 1 + relative_effect.
    """
    rng = np.random.default_rng(seed)
    most = 3 * UNITS_PER_ARM_PER_DAY // 2
    shape = (runs, LOOKS, most)
    columns: dict[str, np.ndarray] = {}
    for arm, lift in (("control", 1.0), ("treatment", 1.0 + relative_effect)):
        arrivals = rng.integers(UNITS_PER_ARM_PER_DAY // 2, most + 1, size=(runs, LOOKS))
        present = np.arange(most) < arrivals[:, :, None]
        if binary:
            values = (rng.random(shape) < 0.2 * lift) & present
        else:
            values = np.where(present, lift * rng.lognormal(mean=np.log(10.0) - 0.5, sigma=1.0, size=shape), 0.0)
        values = values.astype(float)
        columns[f"n_{arm}"] = arrivals.cumsum(axis=1).ravel().astype(float)
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
    n = PLANNED_UNITS / 2
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


def _any_look(result: pl.DataFrame, rejected: pl.Expr) -> np.ndarray:
    """Per run (sorted by experiment id): was H0 rejected at any look."""
    return (
        result.group_by("experiment_id").agg(rejected.fill_null(False).any().alias("rejected"))
        .sort("experiment_id").get_column("rejected").to_numpy()
    )  # fmt: skip


def rejections(looks: pl.DataFrame, alpha: float) -> dict[str, np.ndarray]:
    """Per run and method, whether H0 was rejected: fixed horizon at the last look; naive fixed-horizon tests,
    group-sequential bounds (Lan-DeMets, power family rho = 2) and confidence sequences at every look."""
    result = analyse(looks, alpha=alpha, family=("experiment_id", "as_of_date"), correction="none").with_columns(
        look=looks.get_column("look"), information_fraction=(looks["n_control"] + looks["n_treatment"]) / PLANNED_UNITS
    )
    z = (pl.col("estimate") / pl.col("std_error")).abs()
    bounds = group_sequential_bounds(result, by=["experiment_id"], alpha=alpha, spending="power", order="look")
    sequence = confidence_sequence(
        result.get_column("estimate").to_numpy(), result.get_column("std_error").to_numpy(),
        (result["n_control"] + result["n_treatment"]).to_numpy(), alpha, CS_TUNING,
    )  # fmt: skip
    result = result.with_columns(cs_p_value=pl.Series(sequence["p_value"], nan_to_null=True))
    return {
        "fixed": _any_look(result.filter(pl.col("look") == LOOKS), pl.col("is_significant")),
        "gst": _any_look(bounds, z >= pl.col("critical_value")),
        "cs": _any_look(result, pl.col("cs_p_value") < alpha),
        "naive_daily_peeking": _any_look(result, pl.col("is_significant")),
    }


def validate_aa(runs: int, seed: int, alpha: float = 0.05) -> dict:
    """False-positive rates of A/A experiments and observed vs designed power of planted effects, per method.

    The top-level figures are for a skewed continuous metric; `by_metric_type` adds a conversion metric.
    """
    false_positive: dict[str, dict] = {}
    power: dict[str, dict] = {}
    for binary, label in ((False, "mean"), (True, "proportion")):
        aa = rejections(simulate_looks(runs, relative_effect=0.0, seed=seed + binary, binary=binary), alpha)
        effect = designed_effect(alpha, DESIGNED_POWER, binary)
        ab = rejections(simulate_looks(runs, relative_effect=effect, seed=seed + 100 + binary, binary=binary), alpha)
        false_positive[label] = {method: Rate(int(hit.sum()), runs).as_dict() for method, hit in aa.items()}
        power[label] = {
            "relative_effect": effect,
            "designed": DESIGNED_POWER,
            **{method: Rate(int(hit.sum()), runs).as_dict() for method, hit in ab.items()},
        }
    return {
        "runs": runs,
        "alpha": alpha,
        "looks": LOOKS,
        "cs_tuning_parameter": CS_TUNING,
        "false_positive_rate": {method: rate["rate"] for method, rate in false_positive["mean"].items()},
        "power": {method: rate["rate"] for method, rate in power["mean"].items() if isinstance(rate, dict)}
        | {"designed": DESIGNED_POWER, "relative_effect": power["mean"]["relative_effect"]},
        "by_metric_type": {"false_positive_rate": false_positive, "power": power},
    }

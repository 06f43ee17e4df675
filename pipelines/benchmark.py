"""`verdict bench stats`: how long the engine takes on generated frames of comparisons (figures, not assertions)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from pipelines.stats.comparison import analyse, compare


def _side(rng: np.random.Generator, k: int, binary: np.ndarray) -> dict[str, np.ndarray]:
    """Sufficient statistics of k groups: proportions where `binary`, means elsewhere."""
    n = rng.integers(1_000, 50_000, size=k).astype(float)
    mean = np.where(binary, rng.uniform(0.05, 0.5, size=k), rng.normal(10.0, 2.0, size=k))
    variance = np.where(binary, mean * (1 - mean), rng.uniform(1.0, 25.0, size=k))
    total = np.where(binary, np.round(n * mean), n * mean)
    sum_sq = np.where(binary, total, (n - 1) * variance + n * mean**2)
    return {"n": n, "sum": total, "sum_sq": sum_sq}


def comparison_frame(comparisons: int, *, metrics_per_experiment: int = 10, seed: int = 1) -> pl.DataFrame:
    """A frame of treatment-vs-control comparisons (one row each), half proportions, half means."""
    rng = np.random.default_rng(seed)
    binary = np.arange(comparisons) % 2 == 0
    control, treatment = _side(rng, comparisons, binary), _side(rng, comparisons, binary)
    return pl.DataFrame(
        {
            "experiment_id": np.arange(comparisons) // metrics_per_experiment,
            "metric_id": np.arange(comparisons) % metrics_per_experiment,
            "as_of_date": pl.repeat(dt.date(2026, 11, 21), comparisons, eager=True),
            "control": pl.repeat("control", comparisons, eager=True),
            "treatment": pl.repeat("treatment", comparisons, eager=True),
            "metric_type": np.where(binary, "proportion", "mean"),
            **{f"{k}_control": v for k, v in control.items()},
            **{f"{k}_treatment": v for k, v in treatment.items()},
        }
    )


def variant_frame(pairs: pl.DataFrame) -> pl.DataFrame:
    """The same comparisons as variant rows (control and treatment rows), the nightly job's input shape."""
    key = ["experiment_id", "metric_id", "as_of_date", "metric_type"]
    sides = [
        pairs.select(*key, variant=pl.col(side), is_control=pl.lit(side == "control"),
                     n=pl.col(f"n_{side}"), sum=pl.col(f"sum_{side}"), sum_sq=pl.col(f"sum_sq_{side}"))  # fmt: skip
        for side in ("control", "treatment")
    ]
    return pl.concat(sides).with_columns(pl.col("experiment_id", "metric_id").cast(pl.String))


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Best wall-clock seconds of `repeats` runs (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_stats(repeats: int = 5) -> dict[str, float]:
    """Seconds for 10k and 1M z-test comparisons with Bonferroni (frame of comparisons in, results out),
    and for 1M from variant rows (pairing included)."""
    small, large = comparison_frame(10_000), comparison_frame(1_000_000)
    family = ("experiment_id", "as_of_date")
    analyse(small, family=family)  # warm up thread pools and imports
    variants = variant_frame(large)
    return {
        "z_10k_s": best_time(lambda: analyse(small, family=family), repeats),
        "z_1m_s": best_time(lambda: analyse(large, family=family), repeats),
        "z_1m_from_variant_rows_s": best_time(lambda: compare(variants, family=family), max(1, repeats // 2)),
    }

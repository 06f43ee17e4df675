"""Benchmarks that print figures, not assertions: `verdict bench stats` (the engine on generated frames of
comparisons) and `verdict bench build` (the dbt models on a simulated warehouse, full and incremental)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.stats.comparison import analyse, compare
from pipelines.stats.sequential import group_sequential_bounds


def _side(rng: np.random.Generator, binary: np.ndarray, mean: np.ndarray) -> dict[str, np.ndarray]:
    """Sufficient statistics of groups with the given means: proportions where `binary`, means elsewhere."""
    k = binary.size
    n = rng.integers(1_000, 50_000, size=k).astype(float)
    variance = np.where(binary, mean * (1 - mean), rng.uniform(1.0, 25.0, size=k))
    total = np.where(binary, np.round(n * mean), n * mean)
    sum_sq = np.where(binary, total, (n - 1) * variance + n * mean**2)
    return {"n": n, "sum": total, "sum_sq": sum_sq}


def comparison_frame(comparisons: int, *, metrics_per_experiment: int = 10, seed: int = 1) -> pl.DataFrame:
    """A frame of treatment-vs-control comparisons (one row each), half proportions, half means."""
    rng = np.random.default_rng(seed)
    binary = np.arange(comparisons) % 2 == 0
    mean = np.where(binary, rng.uniform(0.05, 0.5, size=comparisons), rng.normal(10.0, 2.0, size=comparisons))
    lift = 1 + rng.normal(0.0, 0.01, size=comparisons)  # treatments move their metric by about 1%
    control, treatment = _side(rng, binary, mean), _side(rng, binary, mean * lift)
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


def sequential_frame(experiments: int = 1_000, comparisons_per_experiment: int = 10, looks: int = 14,
                     seed: int = 2) -> pl.DataFrame:  # fmt: skip
    """Cumulative looks of many experiments, each with its own uneven schedule of daily looks: one row per
    comparison x look, with the look's information fraction (units so far / planned units)."""
    rng = np.random.default_rng(seed)
    rows = experiments * comparisons_per_experiment * looks
    daily = rng.uniform(0.5, 1.5, size=(experiments, looks))  # traffic varies by experiment and day
    fraction = daily.cumsum(axis=1) / daily.sum(axis=1, keepdims=True) * rng.uniform(0.6, 1.0, size=(experiments, 1))
    pairs = comparison_frame(rows, metrics_per_experiment=comparisons_per_experiment * looks, seed=seed)
    look = np.tile(np.arange(looks), experiments * comparisons_per_experiment)
    return pairs.with_columns(
        metric_id=pl.Series((np.arange(rows) // looks) % comparisons_per_experiment),
        look=pl.Series(look),
        information_fraction=pl.Series(np.repeat(fraction, comparisons_per_experiment, axis=0).ravel()),
    )


def sequential_analysis(looks: pl.DataFrame) -> pl.DataFrame:
    """Group-sequential z-tests of every look: estimates, Bonferroni-divided alpha spent by each experiment's
    schedule (power family, rho = 2), and the decision at each look."""
    result = analyse(looks, family=("experiment_id", "look")).with_columns(
        looks.select("look", "information_fraction")
    )
    bounds = group_sequential_bounds(
        result, by=["experiment_id", "metric_id"], alpha="adjusted_alpha", spending="power", order="look"
    )
    return bounds.with_columns(
        is_significant=(pl.col("estimate") / pl.col("std_error")).abs() >= pl.col("critical_value")
    )


def bench_stats(repeats: int = 5) -> dict[str, float]:
    """Seconds for 10k and 1M z-test comparisons with Bonferroni (frame of comparisons in, results out),
    for 1M from variant rows (pairing included), and for 10k comparisons in 1k experiments x 14 sequential looks."""
    small, large = comparison_frame(10_000), comparison_frame(1_000_000)
    family = ("experiment_id", "as_of_date")
    analyse(small, family=family)  # warm up thread pools and imports
    variants = variant_frame(large)
    looks = sequential_frame()
    return {
        "z_10k_s": best_time(lambda: analyse(small, family=family), repeats),
        "z_1m_s": best_time(lambda: analyse(large, family=family), repeats),
        "gst_10k_x14_s": best_time(lambda: sequential_analysis(looks), max(1, repeats // 2)),
        "z_1m_from_variant_rows_s": best_time(lambda: compare(variants, family=family), max(1, repeats // 2)),
    }


def timed_dbt_run(database: Path, target: Path, *args: str) -> dict[str, float]:
    """Run `dbt run` on `database`; seconds per model and in total (`(total)`)."""
    from pipelines.project import DBT_PROJECT_DIR, dbt_executable
    from pipelines.verdict_project import REPO_ROOT, current_project, export_project
    from pipelines.warehouse import WAREHOUSE_ENV

    export_project(current_project())
    subprocess.run(
        [dbt_executable(), "run", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(REPO_ROOT),
         "--target-path", str(target), *args],
        check=True, env={**os.environ, WAREHOUSE_ENV: str(database)},
    )  # fmt: skip
    results = json.loads((target / "run_results.json").read_text())
    models = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results["results"]}
    return {**models, "(total)": results["elapsed_time"]}


def bench_build(units: int, workdir: Path, new_days: int = 1) -> dict[str, dict[str, float]]:
    """Time the dbt models on a simulated warehouse of `units` users: a full build of the data logged before the
    last `new_days` days, then the nightly incremental run once those days arrive, then a full refresh of it all."""
    import dagster as dg
    import duckdb

    from pipelines.assets.registry import experiment_registry
    from pipelines.verdict_project import current_project
    from pipelines.registry.spec import load_specs
    from pipelines.resources import WarehouseResource
    from pipelines.simulation import simulate
    from pipelines.simulation.arrivals import arrive, hold_back

    database, target = workdir / "bench.duckdb", workdir / "target"
    end = dt.date(2026, 11, 21)
    experiments_dir = current_project().experiments_dir
    days = [end - dt.timedelta(days=n) for n in range(new_days - 1, -1, -1)]
    simulate(database, experiments=load_specs(experiments_dir), units=units, end_date=end)
    dg.materialize([experiment_registry], resources={"warehouse": WarehouseResource(path=str(database))},
                   run_config={"ops": {"experiment_registry": {"config": {"experiments_dir": str(experiments_dir)}}},
                               "loggers": {"console": {"config": {"log_level": "ERROR"}}}})  # fmt: skip
    with duckdb.connect(str(database)) as con:
        hold_back(con, days[0])
    first = timed_dbt_run(database, target, "--full-refresh")
    with duckdb.connect(str(database)) as con:
        arrive(con, days)
    return {
        "full build (history)": first,
        "incremental (new days)": timed_dbt_run(database, target),
        "full refresh (all)": timed_dbt_run(database, target, "--full-refresh"),
    }

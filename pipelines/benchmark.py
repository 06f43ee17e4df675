"""Benchmarks that print figures, not assertions: `verdict bench stats` (the engine on generated frames of
comparisons) and `verdict bench build` (the dbt models on a simulated warehouse, full and incremental)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
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


# `verdict bench nightly`: a generated Verdict project (experiments x metrics) on a simulated warehouse; the floor of
# one look computed from the raw tables by one DuckDB query, then the real nightly DAG: a full build of the history,
# the night that adds one new day, and the statistics engine on every comparison.
BENCH_END = dt.date(2026, 11, 21)  # the new day of the incremental night
BENCH_HISTORY_DAYS = 30  # days of history before it

# The bench's metrics, the demo's metric models: each as the floor query reads it from raw.events, (event types,
# value, denominator), mirroring the model's SQL (demo/metrics/<metric>.sql).
DAY_NUMBER = "datediff('day', date '2000-01-01', cast(events.occurred_at as date))"
BENCH_METRICS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "conversion": (("purchase",), "1.0", None),
    "minutes_played": (("stream",), "events.value", None),
    "purchases": (("purchase",), "1.0", None),
    "sessions_per_user": (("session",), "1.0", None),
    "active_days": (("session",), DAY_NUMBER, None),
    "revenue_per_user": (("purchase",), "events.value", None),
    "retention_d7": (("session",), "1.0", None),
    "revenue_per_purchase": (("purchase",), "events.value", "1.0"),
    "clicks_per_session": (("click", "session"), "case when events.event_type = 'click' then 1.0 else 0.0 end",
                           "case when events.event_type = 'session' then 1.0 else 0.0 end"),
    "crash_rate": (("crash", "session"), "case when events.event_type = 'crash' then 1.0 else 0.0 end",
                   "case when events.event_type = 'session' then 1.0 else 0.0 end"),
}  # fmt: skip
GUARDRAILS = ("minutes_played", "conversion", "sessions_per_user", "crash_rate")


def bench_specs(experiments: int, first_day: dt.date, metrics: Sequence[str]) -> list[dict]:
    """Spec documents of `experiments` generated experiments: staggered starts over the first ten days, every fourth
    ended early, every fifth with three arms, five of the metrics each (one success, one guardrail, three
    deterioration), the sequential methods in turn."""
    specs = []
    for k in range(experiments):
        arms = ["control", "treatment", "treatment_b"] if k % 5 == 4 else ["control", "treatment"]
        weights = [round(1 / len(arms), 4) for _ in arms]
        weights[0] = round(1 - sum(weights[1:]), 4)
        success, *others = [metrics[(k + j) % len(metrics)] for j in range(4)]
        guardrail = next(g for g in GUARDRAILS[k % len(GUARDRAILS):] + GUARDRAILS if g != success and g in metrics)
        sequential = ("none", "group_sequential", "confidence_sequence")[k % 3]
        specs.append({
            "id": f"bench_{k + 1:02d}", "name": f"Benchmark experiment {k + 1}", "unit_type": "user",
            "start_date": first_day + dt.timedelta(days=k % 10),
            **({"end_date": first_day + dt.timedelta(days=24)} if k % 4 == 3 else {}),
            "variants": [{"id": arm, "weight": weight} for arm, weight in zip(arms, weights)], "control": "control",
            "metrics": [{"metric": success, "role": "success"},
                        {"metric": guardrail, "role": "guardrail", "non_inferiority_margin": 0.05},
                        *({"metric": m, "role": "deterioration"} for m in others if m != guardrail)],
            "sequential": sequential,
            **({"planned_units": 200_000} if sequential == "group_sequential" else {}),
        })  # fmt: skip
    return specs


def bench_plants(experiments: Sequence[str], traffic: float) -> Callable[[str], object]:
    """The bench's planted story: each experiment takes `traffic` of the units; every fourth raises its treatments'
    listening time by 3%."""
    from pipelines.simulation.scenario import Plant

    plants = {
        experiment: Plant(traffic=traffic, minutes={"treatment": 0.03, "treatment_b": 0.03} if k % 4 == 0 else {})
        for k, experiment in enumerate(experiments)
    }  # fmt: skip
    return plants.__getitem__


def write_bench_project(root: Path, experiments: int, metrics: int) -> Path:
    """A Verdict project in `root`: the demo's verdict.yml and first `metrics` bench metric models, and generated
    experiment specs; its warehouse is `root/warehouse.duckdb`."""
    import shutil

    import yaml

    from pipelines.verdict_project import DEMO_PROJECT

    chosen = list(BENCH_METRICS)[:metrics]
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "metrics").mkdir(exist_ok=True)
    config = yaml.safe_load((DEMO_PROJECT / "verdict.yml").read_text())
    (root / "verdict.yml").write_text(yaml.safe_dump({**config, "name": "bench", "warehouse": "warehouse.duckdb"}))
    properties = yaml.safe_load((DEMO_PROJECT / "metrics" / "_metrics.yml").read_text())
    properties["models"] = [m for m in properties["models"] if m["name"] in chosen]
    (root / "metrics" / "_metrics.yml").write_text(yaml.safe_dump(properties, sort_keys=False))
    for metric in chosen:
        shutil.copy(DEMO_PROJECT / "metrics" / f"{metric}.sql", root / "metrics")
    first_day = BENCH_END - dt.timedelta(days=BENCH_HISTORY_DAYS)
    for spec in bench_specs(experiments, first_day, chosen):
        (root / "experiments" / f"{spec['id']}.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def metric_settings(project: Path) -> dict[str, dict]:
    """The `meta.metric` settings of a project's metric models."""
    import yaml

    properties = yaml.safe_load((project / "metrics" / "_metrics.yml").read_text())
    return {m["name"]: m["config"]["meta"]["metric"] for m in properties["models"]}


def _values(rows: Sequence[tuple], names: str) -> str:
    """A SQL VALUES list as a relation with column `names`."""
    def literal(value: object) -> str:
        return "null" if value is None else repr(value) if isinstance(value, float | int) else "'" + str(value) + "'"

    return f"(values {', '.join('(' + ', '.join(map(literal, row)) + ')' for row in rows)}) as t({names})"


def floor_sql(specs: Sequence, settings: dict[str, dict], as_of: dt.date, lookback_days: int = 14) -> str:
    """One DuckDB query from the raw tables to one look's sufficient statistics per experiment x metric x variant:
    first exposures (crossovers out), every metric's measurements from one scan of the events, each unit's windowed
    or cumulative value up to the as-of date and its pre-exposure covariate, winsorization caps, and the sums the
    statistics need, for the experiments running on the as-of date. The floor under the nightly DAG's cost: no data
    checks, one look, no history."""
    uses = []
    for spec in (s for s in specs if s.start_date <= as_of and (s.end_date is None or s.end_date >= as_of)):
        for use in spec.metrics:
            s = settings[use.metric]
            aggregation = s.get("aggregation", "max" if s["type"] in ("proportion", "retention") else "sum")
            uses.append((spec.id, use.metric, aggregation, float(s.get("window_offset_days", 0)),
                         None if s.get("window_days") is None else float(s["window_days"]),
                         s.get("winsorize", {}).get("upper"), s["type"] == "ratio"))  # fmt: skip
    events = [(metric, event_type) for metric, (types, _, _) in BENCH_METRICS.items() for event_type in types]
    value = "case metric_events.metric_id " + " ".join(
        f"when '{m}' then {v}" for m, (_, v, _) in BENCH_METRICS.items()) + " end"  # fmt: skip
    denominator = "case metric_events.metric_id " + " ".join(
        f"when '{m}' then {d}" for m, (_, _, d) in BENCH_METRICS.items() if d) + " end"  # fmt: skip
    look_end = f"timestamp '{as_of + dt.timedelta(days=1)}'"
    caps = " union all ".join(
        f"select experiment_id, metric_id, quantile_cont(value, {q!r}) as cap from analysed "
        f"where winsorize_upper = {q!r} group by experiment_id, metric_id"
        for q in sorted({use[5] for use in uses if use[5] is not None})
    ) or "select null as experiment_id, null as metric_id, null as cap"
    aggregate = (
        "case min(units.aggregation) when 'max' then max(m.value) filter (where {w}) "
        "when 'count' then count(*) filter (where {w}) "
        "when 'count_distinct' then count(distinct m.value) filter (where {w}) "
        "else sum(m.value) filter (where {w}) end"
    )
    in_window = "m.measured_at >= units.window_start and m.measured_at < units.window_end"
    before = "m.measured_at < units.exposed_at"
    return f"""
    with uses as (select * from {_values(uses, 'experiment_id, metric_id, aggregation, offset_days, window_days, '
                                                'winsorize_upper, is_ratio')}),
    metric_events as (select * from {_values(events, 'metric_id, event_type')}),
    exposures as (
        select experiment_id, unit_id, min(variant) as variant, min(assigned_at) as exposed_at
        from raw.assignments
        where assigned_at < {look_end} and unit_id is not null
        group by experiment_id, unit_id
        having count(distinct variant) = 1
    ),
    measurements as (
        select events.unit_id, events.occurred_at as measured_at, metric_events.metric_id,
               {value} as value, {denominator} as denominator
        from raw.events as events inner join metric_events on events.event_type = metric_events.event_type
        where events.occurred_at < {look_end}
    ),
    units as (
        select exposures.*, uses.metric_id, uses.aggregation, uses.winsorize_upper, uses.is_ratio,
               exposures.exposed_at + to_days(cast(uses.offset_days as integer)) as window_start,
               coalesce(exposures.exposed_at + to_days(cast(uses.offset_days + uses.window_days as integer)),
                        {look_end}) as window_end
        from exposures inner join uses on exposures.experiment_id = uses.experiment_id
    ),
    entered as (
        select * from units where window_end <= {look_end}
    ),
    unit_values as (
        select units.experiment_id, units.unit_id, units.metric_id,
               {aggregate.format(w=in_window)} as value,
               sum(m.denominator) filter (where {in_window}) as denominator,
               {aggregate.format(w=before)} as covariate
        from entered as units inner join measurements as m
            on units.unit_id = m.unit_id and units.metric_id = m.metric_id
           and m.measured_at >= units.exposed_at - to_days({lookback_days}) and m.measured_at < units.window_end
        group by units.experiment_id, units.unit_id, units.metric_id
    ),
    analysed as (
        select entered.experiment_id, entered.metric_id, entered.variant, entered.winsorize_upper, entered.is_ratio,
               coalesce(unit_values.value, 0) as value, coalesce(unit_values.denominator, 0) as denominator,
               coalesce(unit_values.covariate, 0) as covariate
        from entered left join unit_values
            on entered.experiment_id = unit_values.experiment_id and entered.unit_id = unit_values.unit_id
           and entered.metric_id = unit_values.metric_id
    ),
    caps as ({caps}),
    capped as (
        select analysed.* replace (least(analysed.value, coalesce(caps.cap, analysed.value)) as value)
        from analysed left join caps
            on analysed.experiment_id = caps.experiment_id and analysed.metric_id = caps.metric_id
    )
    select experiment_id, metric_id, variant, count(*) as n, sum(value) as sum, sum(value * value) as sum_sq,
           sum(covariate) as cov_sum, sum(covariate * covariate) as cov_sum_sq, sum(value * covariate) as cross_sum,
           sum(denominator) filter (where is_ratio) as den_sum,
           sum(denominator * denominator) filter (where is_ratio) as den_sum_sq,
           sum(value * denominator) filter (where is_ratio) as value_den_cross_sum
    from capped
    group by experiment_id, metric_id, variant
    order by experiment_id, metric_id, variant
    """


class PeakMemory:
    """The peak resident memory of this process and all its descendants, sampled every `interval` seconds in a
    background thread while in a `with` block."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak_bytes = interval, 0
        self._stop = None

    def sample(self) -> int:
        """Resident bytes of the process tree now."""
        import psutil

        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:  # a child that ended between the listing and the reading
                pass
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def __enter__(self) -> "PeakMemory":
        import threading

        self._stop = threading.Event()

        def watch() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=watch, daemon=True)
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def run_night(project: Path, as_of: dt.date, *, full_refresh: bool = False) -> float:
    """Seconds of one nightly run of `project` for `as_of` (`verdict run`, in its own process as the schedule's)."""
    import sys

    from pipelines.warehouse import WAREHOUSE_ENV

    env = {k: v for k, v in os.environ.items() if k not in (WAREHOUSE_ENV, "DAGSTER_HOME", "VERDICT_PROJECT")}
    command = [sys.executable, "-m", "pipelines.cli", "--project", str(project), "run", "--date", str(as_of),
               "--log-level", "error", *(["--full-refresh"] if full_refresh else [])]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"verdict run --date {as_of} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def latest_run_results(project: Path) -> dict:
    """The dbt results of the project's latest night: its dbt builds' run_results.json (target directories named
    `<asset>-<run id>-<invocation>`) merged, their wall times summed."""
    files = sorted((project / ".verdict").rglob("run_results.json"), key=lambda p: p.stat().st_mtime)
    run = files[-1].parent.name.split("-")[1] if files else None
    builds = [json.loads(f.read_text()) for f in files if f.parent.name.split("-")[1:2] == [run]]
    return {"results": [r for b in builds for r in b["results"]], "elapsed_time": sum(b["elapsed_time"] for b in builds)}


def slowest_models(run_results: dict, top: int = 8) -> dict[str, float]:
    """The slowest dbt nodes of a build, seconds each."""
    times = {r["unique_id"].split(".", 2)[-1]: round(r["execution_time"], 2) for r in run_results["results"]}
    return dict(sorted(times.items(), key=lambda item: -item[1])[:top])


def build_breakdown(run_results: dict) -> dict[str, float]:
    """Where a night's dbt time went: the wall time of its builds, and the summed seconds of its models and of its
    tests (two threads: the sums can exceed the wall time)."""
    def seconds(kind: str) -> float:
        return round(sum(r["execution_time"] for r in run_results["results"] if r["unique_id"].startswith(kind)), 2)

    return {"dbt_s": round(run_results["elapsed_time"], 2), "models_s": seconds("model."),
            "tests_s": seconds("test.") + seconds("unit_test.")}  # fmt: skip


def bench_nightly(
    workdir: Path, *, units: int, experiments: int = 20, metrics: int = 10, activity: float = 0.2,
    traffic: float = 0.1, memory_limit: str | None = None,
) -> dict[str, object]:  # fmt: skip
    """The nightly benchmark in `workdir`: simulate, the floor, the full DAG on the history, the night of one new day,
    the engine on all comparisons, and the process tree's peak memory (figures in seconds and GiB)."""
    import duckdb

    from pipelines.analysis.results import SUFFICIENT_STATS_QUERY, experiment_results
    from pipelines.registry.spec import load_specs
    from pipelines.simulation import simulate
    from pipelines.simulation.arrivals import arrive, hold_back
    from pipelines.warehouse import DUCKDB_MEMORY_ENV, connect, read_frame

    if memory_limit:
        os.environ[DUCKDB_MEMORY_ENV] = memory_limit
    project = write_bench_project(workdir / "project", experiments, metrics)
    database = project / "warehouse.duckdb"
    specs = load_specs(project / "experiments")
    figures: dict[str, object] = {"units": units, "experiments": experiments, "metrics": metrics}
    with PeakMemory() as memory:
        started = time.perf_counter()
        counts = simulate(database, experiments=specs, units=units, end_date=BENCH_END,
                          history_days=BENCH_HISTORY_DAYS, activity=activity,
                          plants=bench_plants([s.id for s in specs], traffic))  # fmt: skip
        figures.update(generate_s=time.perf_counter() - started, events=counts["events"],
                       assignments=counts["assignments"])  # fmt: skip
        history_end = BENCH_END - dt.timedelta(days=1)
        with connect(database) as con:
            hold_back(con, BENCH_END)
            started = time.perf_counter()
            floor = con.execute(floor_sql(specs, metric_settings(project), history_end)).fetchall()
            figures.update(bare_s=time.perf_counter() - started, floor_rows=len(floor))
        figures["full_s"] = run_night(project, history_end, full_refresh=True)
        built = latest_run_results(project)
        figures.update(full_models=slowest_models(built), full_build=build_breakdown(built))
        with connect(database) as con:
            arrive(con, [BENCH_END])
        figures["incremental_s"] = run_night(project, BENCH_END)
        built = latest_run_results(project)
        figures.update(incremental_models=slowest_models(built), incremental_build=build_breakdown(built))
        with connect(database, read_only=True) as con:
            stats = read_frame(con, SUFFICIENT_STATS_QUERY)
        started = time.perf_counter()
        results = experiment_results(stats)
        figures.update(stats_s=time.perf_counter() - started, comparisons=results.height)
    figures["peak_rss_gib"] = memory.peak_bytes / 2**30
    figures["full_over_bare"] = figures["full_s"] / figures["bare_s"]
    figures["incremental_over_full"] = figures["incremental_s"] / figures["full_s"]
    return figures

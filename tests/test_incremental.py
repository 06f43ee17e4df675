"""Incremental models: raw rows arriving day by day, built incrementally by dbt, give the tables a full refresh gives.

A simulated warehouse is split by the day each raw row was logged: the rows logged before 2026-11-18 are the
starting warehouse, and the later ones arrive in two batches (one day, then three days), each followed by an
incremental `dbt run`. A few planted rows test the edges: an event and an assignment logged late but within the
allowance (about moments before the previous build's last day), an assignment that turns an analysed unit into a
crossover, and an event logged after the allowance (quarantined as a late arrival).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.project import DBT_PROJECT_DIR, dbt_executable
from pipelines.registry.spec import load_specs
from pipelines.resources import WarehouseResource
from pipelines.simulation.arrivals import arrive, hold_back
from pipelines.verdict_project import DEMO_EXPERIMENTS, REPO_ROOT, current_project, project_environment
from pipelines.warehouse import read_frame

pytestmark = pytest.mark.e2e

FIRST_BUILD = dt.date(2026, 11, 18)  # rows logged before this day are there at the first build
ARRIVALS = [[dt.date(2026, 11, 18)], [dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)]]
SCHEMAS = ("staging", "intermediate", "marts")
WATERMARK = "logged_through_at"  # bookkeeping: when a row was computed, not what it says


def dbt_run(database: Path, target: Path, *args: str) -> None:
    """`dbt run` of the project on `database` (the models; their tests run in the nightly job's tests)."""
    result = subprocess.run(
        [dbt_executable(), "run", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(REPO_ROOT),
         "--target-path", str(target), *args],
        capture_output=True, text=True, env={"VERDICT_WAREHOUSE": str(database), "PATH": str(Path(sys.executable).parent),
             **project_environment(current_project())},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]


def plant_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Rows in `arrivals` for the edges: late within the allowance, a new crossover, late beyond the allowance."""
    first = "select unit_id from seen where experiment_id = 'checkout_redesign' and variant = 'control' order by unit_id"
    crossover, buyer = f"({first} limit 1)", f"({first} limit 1 offset 1)"
    con.execute(f"""
        create temp view seen as select * from raw.assignments where unit_id is not null;
        insert into arrivals.events values
            ('late_ok', {buyer}, 'purchase', timestamp '2026-11-16 12:00:00', 40.0, timestamp '2026-11-18 09:00:00'),
            ('late_ok', {buyer}, 'purchase', timestamp '2026-11-16 12:00:00', 40.0, timestamp '2026-11-19 09:00:00'),
            ('too_late', {buyer}, 'purchase', timestamp '2026-11-12 12:00:00', 40.0, timestamp '2026-11-19 09:00:00');
        insert into arrivals.assignments values
            ('checkout_redesign', {crossover}, 'upsell', timestamp '2026-11-17 08:00:00', timestamp '2026-11-19 08:00:00'),
            ('checkout_redesign', 'late_unit', 'compact', timestamp '2026-11-16 07:00:00', timestamp '2026-11-18 06:00:00');
        insert into raw.units select 'late_unit', 'SE', 'ios', date '2025-01-01';
    """)  # fmt: skip


def tables(database: Path) -> dict[str, pl.DataFrame]:
    """Every table dbt built, by name."""
    with duckdb.connect(str(database), read_only=True) as con:
        names = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() where schema_name in ? order by 1", [list(SCHEMAS)]
        ).fetchall()  # fmt: skip
        return {name: read_frame(con, f"select * from {name}") for (name,) in names}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, manifest: Path) -> tuple[dict, dict, dict]:
    """(tables after the incremental builds, tables after a full refresh of the same raw data, raw rows beyond the
    simulated ones)."""
    from pipelines.assets.registry import experiment_registry
    from pipelines.simulation import simulate

    root = tmp_path_factory.mktemp("incremental")
    database = root / "incremental.duckdb"
    simulated = simulate(database, experiments=load_specs(DEMO_EXPERIMENTS), units=3000, seed=11)
    dg.materialize([experiment_registry], resources={"warehouse": WarehouseResource(path=str(database))},
                   run_config={"ops": {"experiment_registry": {"config": {"experiments_dir": str(DEMO_EXPERIMENTS)}}}})  # fmt: skip
    with duckdb.connect(str(database)) as con:
        hold_back(con, FIRST_BUILD)
        plant_rows(con)
    dbt_run(database, root / "target")
    for days in ARRIVALS:
        with duckdb.connect(str(database)) as con:
            arrive(con, days)
        dbt_run(database, root / "target")
    refreshed = root / "refreshed.duckdb"
    shutil.copy(database, refreshed)
    dbt_run(refreshed, root / "target", "--full-refresh")
    with duckdb.connect(str(database), read_only=True) as con:
        arrived = {table: con.execute(f"select count(*) from raw.{table}").fetchone()[0] for table in simulated}
    return tables(database), tables(refreshed), {table: arrived[table] - simulated[table] for table in simulated}


def test_every_raw_row_arrived(builds):
    _, _, planted = builds
    assert planted == {"units": 1, "assignments": 2, "events": 3, "simulation_truth": 0}


def test_incremental_builds_equal_a_full_refresh(builds):
    """Every table, row for row; floats to 1e-9 (DuckDB's parallel sums of doubles do not add in a fixed order)."""
    incremental, refreshed, _ = builds
    assert incremental.keys() == refreshed.keys()
    assert {"staging.stg_events_checked", "intermediate.int_unit_metric_daily", "marts.metric_sufficient_stats"} <= incremental.keys()
    for name, frame in incremental.items():
        columns = [c for c in frame.columns if c != WATERMARK]
        key = [c for c in columns if frame.schema[c] != pl.Float64]
        mine, full = (f.select(columns).sort(key, nulls_last=True) for f in (frame, refreshed[name]))
        assert mine.height == full.height and mine.select(key).equals(full.select(key)), name
        for column in set(columns) - set(key):
            assert np.allclose(mine[column].to_numpy(), full[column].to_numpy(), rtol=1e-9, atol=0, equal_nan=True), (name, column)


def test_the_last_build_recomputed_only_its_scope(builds):
    """The rows the last build wrote are the ones from its scope start (its previous watermark's day less the
    late-arrival allowance) on; older rows are the earlier builds'."""
    incremental, _, _ = builds
    scoped = {"int_metric_measurements": "measured_at", "int_unit_metric_daily": "measured_date", "int_unit_metrics": "exposed_at",
              "int_unit_metric_changes": "change_date"}  # fmt: skip
    for name, date in ((f"intermediate.{model}", column) for model, column in scoped.items()):
        frame = incremental[name].with_columns(pl.col(date).cast(pl.Date).alias("day"))
        if "is_winsorized" in frame.columns:  # recomputed whole: their caps move with each day's data
            assert frame.filter(pl.col("is_winsorized"))[WATERMARK].n_unique() == 1
            frame = frame.filter(~pl.col("is_winsorized"))
        last = frame[WATERMARK].max()
        rewritten, kept = frame.filter(pl.col(WATERMARK) == last), frame.filter(pl.col(WATERMARK) < last)
        previous_day = kept[WATERMARK].max().date()
        assert kept.height > rewritten.height > 0, name
        assert rewritten["day"].min() >= previous_day - dt.timedelta(days=3), name
        assert kept["day"].max() < previous_day - dt.timedelta(days=3) + dt.timedelta(days=1), name


def test_planted_rows_land_where_a_full_refresh_puts_them(builds):
    incremental, _, _ = builds
    events = incremental["staging.stg_events_checked"]
    reasons = dict(events.filter(pl.col("event_id").is_in(["late_ok", "too_late"])).select("event_id", "quarantine_reason")
                   .group_by("event_id").agg(pl.col("quarantine_reason").sort(nulls_last=False)).iter_rows())  # fmt: skip
    assert reasons == {"late_ok": [None, "duplicate_event_id"], "too_late": ["late_arrival"]}
    units = incremental["intermediate.int_unit_assignments"].filter(pl.col("experiment_id") == "checkout_redesign")
    assert units.filter(pl.col("unit_id") == "late_unit")["first_exposed_at"].to_list() == [dt.datetime(2026, 11, 16, 7)]
    crossover = units.filter(pl.col("variant_count") == 2)["unit_id"].to_list()
    daily = incremental["intermediate.int_unit_metric_daily"]
    assert crossover and daily.filter(pl.col("unit_id").is_in(crossover), pl.col("experiment_id") == "checkout_redesign").is_empty()

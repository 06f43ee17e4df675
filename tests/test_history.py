"""The results history: each look is written with its run, code version and data watermark; rerunning a date
replaces its rows (the tables come out identical); rewriting an earlier look recomputes the later
group-sequential looks that depend on it, and only those; a run killed mid-way and started again gives the
results of a run that was never interrupted."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.cli import partition_range_tags
from pipelines.project import code_version
from pipelines.registry.spec import load_specs
from pipelines.verdict_project import DEMO_EXPERIMENTS, REPO_ROOT
from pipelines.warehouse import WAREHOUSE_ENV, read_frame

pytestmark = pytest.mark.e2e

TABLES = ("experiment_results", "experiment_health", "experiment_decisions")
RERUN = dt.date(2026, 11, 10)


def run_looks(start: dt.date, end: dt.date) -> str:
    """Run the nightly job for the looks from start to end; the run id."""
    from pipelines.definitions import build_defs

    result = build_defs().resolve_job_def("nightly_analysis").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=partition_range_tags(start, end)
    )
    assert result.success
    return result.run_id


def snapshot(database: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: read_frame(con, f"select * from main.{t}") for t in TABLES}


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory, manifest: Path):
    """The history after every look of a small warehouse, and after rerunning one date."""
    from pipelines.simulation import simulate

    database = tmp_path_factory.mktemp("history") / "verdict.duckdb"
    previous = os.environ.get(WAREHOUSE_ENV)
    os.environ[WAREHOUSE_ENV] = str(database)
    try:
        simulate(database, experiments=load_specs(DEMO_EXPERIMENTS), units=6000, seed=5)
        shutil.copy(database, database.with_name("unrun.duckdb"))  # for the restart test
        first = run_looks(dt.date(2026, 11, 1), dt.date(2026, 11, 21))
        before = snapshot(database)
        second = run_looks(RERUN, RERUN)
        after = snapshot(database)
    finally:
        if previous is None:
            os.environ.pop(WAREHOUSE_ENV, None)
        else:
            os.environ[WAREHOUSE_ENV] = previous
    return first, before, second, after, database.with_name("unrun.duckdb")


def test_every_look_carries_its_run_code_version_and_watermark(histories):
    first, before, _, _, _ = histories
    for table, frame in before.items():
        assert frame["as_of_date"].min() == dt.date(2026, 11, 1) and frame["as_of_date"].max() == dt.date(2026, 11, 21)
        assert frame["run_id"].unique().to_list() == [first], table
        assert frame["code_version"].unique().to_list() == [code_version()]
        assert frame["data_watermark"].unique().to_list() == [dt.date(2026, 11, 21)]


def test_rerunning_a_date_replaces_its_rows_and_changes_nothing_else(histories):
    """Equal but for the run id, and for the last bits of floats: dbt rebuilds the marts, and DuckDB's parallel
    sums of doubles do not add in a fixed order."""
    _, before, _, after, _ = histories
    for table in TABLES:
        columns = [c for c in before[table].columns if c != "run_id"]
        key = [c for c in columns if before[table].schema[c] != pl.Float64]
        old, new = (frame.select(columns).sort(key, nulls_last=True) for frame in (before[table], after[table]))
        assert new.height == old.height and new.select(key).equals(old.select(key)), table
        for column in set(columns) - set(key):
            assert new[column].to_numpy() == pytest.approx(old[column].to_numpy(), rel=1e-9, nan_ok=True), column


def test_the_rerun_rewrote_its_date_and_the_later_group_sequential_looks_only(histories):
    first, _, second, after, _ = histories
    results = after["experiment_results"]
    rewritten = results.filter(pl.col("run_id") == second)
    assert rewritten.filter(pl.col("as_of_date") == RERUN).height == results.filter(pl.col("as_of_date") == RERUN).height
    later = rewritten.filter(pl.col("as_of_date") > RERUN)
    assert later.height > 0 and set(later["sequential_method"]) == {"group_sequential"}
    untouched = results.filter(pl.col("as_of_date") != RERUN, pl.col("sequential_method") != "group_sequential")
    assert set(untouched["run_id"]) == {first}
    assert set(results.filter(pl.col("as_of_date") < RERUN)["run_id"]) == {first}
    decisions = after["experiment_decisions"].filter(pl.col("run_id") == second)
    assert set(decisions["experiment_id"].filter(decisions["as_of_date"] > RERUN)) == {"playlist_recs"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--start", "2026-11-10", "--end", "2026-11-05"], "is before --start"),
        (["run", "--date", "2025-06-01"], "as-of dates run from 2026-11-01"),  # the demo's first experiment start
        (["run", "--date", "2099-01-01"], "to yesterday"),
    ],
)
def test_cli_refuses_dates_outside_the_partitions(args, message):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output


def verdict(args: list[str], database: Path) -> subprocess.Popen:
    """The `verdict` CLI in its own process, on `database`."""
    env = {**os.environ, WAREHOUSE_ENV: str(database)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


@pytest.mark.slow
def test_a_killed_run_started_again_gives_the_uninterrupted_results(histories):
    """The same warehouse as the history's first run: killed as it starts writing the looks, then run again."""
    _, before, _, _, database = histories
    backfill = ["backfill", "--start", "2026-11-01", "--end", "2026-11-21", "--log-level", "debug"]
    killed = verdict(backfill, database)
    for line in killed.stdout:
        if "experiment_results - STEP_START" in line:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    again = verdict(backfill, database)
    output, _ = again.communicate(timeout=900)
    assert again.returncode == 0, output[-3000:]

    key = ["experiment_id", "metric_id", "treatment", "as_of_date"]
    with duckdb.connect(str(database), read_only=True) as con:
        results = read_frame(con, "select * from main.experiment_results").sort(key)
    expected = before["experiment_results"].sort(key)
    assert results.select(key).is_duplicated().sum() == 0
    assert results.select(key).equals(expected.select(key))
    for column in ("n_control", "n_treatment", "status", "is_significant", "role"):
        assert results[column].equals(expected[column]), column
    assert results["estimate"].to_numpy() == pytest.approx(expected["estimate"].to_numpy(), rel=1e-9, nan_ok=True)

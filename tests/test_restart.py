"""A run killed mid-way and started again gives the same results as a run that was never interrupted, with no
look written twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.project import EXPERIMENTS_DIR
from pipelines.registry.spec import load_specs
from pipelines.warehouse import REPO_ROOT, WAREHOUSE_ENV, read_frame

pytestmark = pytest.mark.e2e

BACKFILL = ["backfill", "--start", "2026-11-01", "--end", "2026-11-21", "--log-level", "debug"]
KEY = ["experiment_id", "metric_id", "treatment", "as_of_date"]


def verdict(args: list[str], database: Path) -> subprocess.Popen:
    env = {**os.environ, WAREHOUSE_ENV: str(database)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]


def results(database: Path) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        return read_frame(con, "select * exclude (run_id) from main.experiment_results").sort(KEY)


def test_a_killed_run_started_again_gives_the_uninterrupted_results(tmp_path: Path, manifest: Path):
    from pipelines.simulation import simulate

    database, reference = tmp_path / "verdict.duckdb", tmp_path / "reference.duckdb"
    simulate(database, experiments=load_specs(EXPERIMENTS_DIR), units=2000, seed=11)
    shutil.copy(database, reference)
    finish(verdict(BACKFILL, reference))
    finish(verdict(["run", "--date", "2026-11-05"], database))  # some history before the crash

    killed = verdict(BACKFILL, database)
    for line in killed.stdout:  # kill the run as it starts writing the looks
        if "experiment_results - STEP_START" in line:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    finish(verdict(BACKFILL, database))

    again, expected = results(database), results(reference)
    assert again.select(KEY).is_duplicated().sum() == 0
    assert again.select(KEY).equals(expected.select(KEY))
    for column in ("n_control", "n_treatment", "status", "is_significant"):
        assert again[column].equals(expected[column]), column
    assert again["estimate"].to_numpy() == pytest.approx(expected["estimate"].to_numpy(), rel=1e-9, nan_ok=True)

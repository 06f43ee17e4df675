"""The dbt models and the statistics on Apache Spark: `verdict spark` builds the demo warehouse on a local Spark from
the same raw rows as DuckDB's, and every mart (the sufficient statistics among them) and every result equals
DuckDB's to 1e-9 relative."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from conftest import E2E_SEED, run_nightly
from pipelines.analysis.results import RESULT_COLUMNS, SUFFICIENT_STATS_QUERY, experiment_results
from pipelines.registry.spec import load_specs
from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.warehouse import WAREHOUSE_ENV, connect, read_frame

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.spark]

UNITS = 2_000
LOOKS = (dt.date(2026, 11, 1), dt.date(2026, 11, 21))
MARTS = (
    "metric_sufficient_stats", "metric_segment_stats", "exposure_daily_counts", "exposure_summary", "raw_row_counts",
    "quarantined_rows", "metric_largest_units", "metric_catalogue", "metric_exposure_day_stats",
)  # fmt: skip
RTOL = 1e-9


@pytest.fixture(scope="module")
def duckdb_night(tmp_path_factory: pytest.TempPathFactory, manifest: Path) -> Path:
    """A simulated DuckDB warehouse after the nightly job's looks (and PySpark there: `make test-slow` installs it)."""
    from pipelines.simulation import simulate

    if importlib.util.find_spec("pyspark") is None:
        pytest.fail("PySpark is not installed: `make install-spark` installs the spark extra", pytrace=False)

    database = tmp_path_factory.mktemp("duckdb") / "verdict.duckdb"
    simulate(database, experiments=load_specs(DEMO_EXPERIMENTS), units=UNITS, seed=E2E_SEED)
    assert run_nightly(database, *LOOKS).success
    return database


@pytest.fixture(scope="module")
def spark_night(duckdb_night: Path, tmp_path_factory: pytest.TempPathFactory):
    """`verdict spark --raw-from-warehouse` on that warehouse, then its Spark session (still this process's)."""
    from pipelines.cli import app
    from pipelines.spark import SPARK_WAREHOUSE_ENV, spark_session

    warehouse = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WAREHOUSE_ENV, str(duckdb_night))
        patch.setenv(SPARK_WAREHOUSE_ENV, str(warehouse))
        result = CliRunner().invoke(app, ["spark", "--raw-from-warehouse"])
        assert result.exit_code == 0, result.output + repr(result.exception)
        session = spark_session(warehouse)
        yield result.output, session
        session.stop()


def assert_frames_close(duckdb_rows: pl.DataFrame, spark_rows: pl.DataFrame, what: str) -> None:
    """Same columns, same rows: floats equal to RTOL relative (nulls and NaNs where the other has them), every
    other column exactly (in DuckDB's type: Spark's timestamps are in ns, DuckDB's in us); rows matched by sorting on the non-float columns and then the floats."""
    assert sorted(spark_rows.columns) == sorted(duckdb_rows.columns), what
    assert spark_rows.height == duckdb_rows.height > 0, what
    spark_rows = spark_rows.select(duckdb_rows.columns)
    floats = [c for c, kind in duckdb_rows.schema.items() if kind.is_float()]
    order = [c for c in duckdb_rows.columns if c not in floats] + floats
    left, right = duckdb_rows.sort(order, nulls_last=True), spark_rows.sort(order, nulls_last=True)
    for column in duckdb_rows.columns:
        if column in floats:
            x, y = left[column].cast(pl.Float64).to_numpy(), right[column].cast(pl.Float64).to_numpy()
            same = (np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=RTOL, atol=0)
            assert same.all(), f"{what}.{column}: {x[~same][:3]} (DuckDB) vs {y[~same][:3]} (Spark)"
        else:
            assert left[column].to_list() == right[column].cast(left[column].dtype).to_list(), f"{what}.{column}"


def test_the_cli_says_what_it_built(spark_night) -> None:
    output, _ = spark_night
    assert "raw rows copied from DuckDB: raw.assignments" in output
    assert "registry written: 4 experiments" in output
    assert "main.experiment_results:" in output


@pytest.mark.parametrize("mart", MARTS)
def test_every_mart_equals_duckdbs(duckdb_night: Path, spark_night, mart: str) -> None:
    from pipelines.spark import read_sql

    with connect(duckdb_night, read_only=True) as con:
        expected = read_frame(con, f"select * from marts.{mart}")
    assert_frames_close(expected, read_sql(spark_night[1], f"select * from marts.{mart}"), mart)


def test_the_results_equal_the_nightly_jobs(duckdb_night: Path, spark_night) -> None:
    """Spark's results table against the looks the nightly job wrote on DuckDB, and the engine on both engines'
    sufficient statistics for every look."""
    from pipelines.spark import RESULTS_TABLE, read_sql

    on_spark = read_sql(spark_night[1], f"select * from {RESULTS_TABLE}")
    with connect(duckdb_night, read_only=True) as con:
        nightly = read_frame(con, "select * from main.experiment_results").select(RESULT_COLUMNS)
        every_look = experiment_results(read_frame(con, SUFFICIENT_STATS_QUERY)).select(RESULT_COLUMNS)
    assert nightly["as_of_date"].n_unique() == (LOOKS[1] - LOOKS[0]).days + 1
    assert (nightly["status"] == "ok").sum() > 100
    assert_frames_close(every_look, on_spark.select(RESULT_COLUMNS), "results (every look)")
    in_nightly = on_spark.join(nightly.select("experiment_id", "as_of_date").unique(), on=["experiment_id", "as_of_date"])
    assert_frames_close(nightly, in_nightly.select(RESULT_COLUMNS), "results (the nightly job's looks)")


def test_missing_raw_tables_are_named(duckdb_night: Path, spark_night) -> None:
    """Without the raw tables in Spark, the command names them and the fix, and builds nothing."""
    from pipelines.cli import app

    _, session = spark_night
    session.sql("alter table raw.units rename to raw.units_kept")
    try:
        result = CliRunner().invoke(app, ["spark"], env={WAREHOUSE_ENV: str(duckdb_night)})
    finally:
        session.sql("alter table raw.units_kept rename to raw.units")
    assert result.exit_code == 2, result.output
    assert "Spark has no table raw.units" in result.output and "--raw-from-warehouse" in result.output
    assert shutil.which("java") is not None

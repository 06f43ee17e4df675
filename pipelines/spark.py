"""Verdict's models on Apache Spark: the registry written from the specs, the dbt models built by dbt-spark in
the same Spark session, and the results computed from Spark's sufficient statistics by the nightly job's engine.

Spark runs in this process (dbt-spark's `session` method, profiles.yml target `spark`): a local Spark by default,
or a cluster's when VERDICT_SPARK_MASTER names one (`spark://host:7077`, `yarn`; Spark's own SPARK_CONF_DIR gives
its metastore and the rest). The raw tables live in Spark's `raw` database under Verdict's column names; for the
demo and the tests they are copied from a DuckDB warehouse, so that both engines read the same raw rows. Python
reads only sufficient statistics from Spark, as it does from DuckDB.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb
import jinja2
import polars as pl
import yaml

from pipelines.analysis.results import SUFFICIENT_STATS_QUERY, experiment_results
from pipelines.verdict_project import REPO_ROOT, VerdictProject, dbt_project_dir, export_project
from pipelines.warehouse import warehouse_path

SPARK_WAREHOUSE_ENV = "VERDICT_SPARK_WAREHOUSE"  # where a local Spark keeps its tables and metastore
SPARK_MASTER_ENV = "VERDICT_SPARK_MASTER"
SPARK_TARGET = "spark"  # the profiles.yml target
RAW_SCHEMA = "raw"
RESULTS_TABLE = "main.experiment_results"
# dbt's artifacts of a Spark build, apart from the DuckDB build's manifest that the Dagster definitions load
SPARK_TARGET_PATH = "target/spark"


def spark_warehouse() -> Path:
    """Where a local Spark keeps the project's tables and metastore: $VERDICT_SPARK_WAREHOUSE, or `spark/` beside the
    DuckDB warehouse."""
    return Path(os.environ.get(SPARK_WAREHOUSE_ENV) or warehouse_path().parent / "spark").resolve()


def session_settings() -> dict[str, str]:
    """The Spark settings of profiles.yml's `spark` target (its server_side_parameters), rendered from the
    environment as dbt renders them."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.globals["env_var"] = lambda name, default=None: os.environ.get(name, default)
    profile = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text())["verdict"]["outputs"][SPARK_TARGET]
    return {key: environment.from_string(str(value)).render() for key, value in profile["server_side_parameters"].items()}


def spark_session(warehouse: Path):
    """The Spark session of the `spark` dbt target, with its Hive metastore and tables under `warehouse`."""
    from pyspark.sql import SparkSession

    os.environ[SPARK_WAREHOUSE_ENV] = str(warehouse)
    builder = SparkSession.builder.appName("verdict").enableHiveSupport()
    for key, value in session_settings().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _name(table: str) -> str:
    """A database.table name quoted for Spark SQL."""
    return ".".join(f"`{part}`" for part in table.split("."))


def write_table(spark, frame: pl.DataFrame, table: str) -> int:
    """Replace the Spark table `database.table` with a Polars frame's rows (through Parquet); return the row count."""
    spark.sql(f"create database if not exists `{table.split('.')[0]}`")
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/frame.parquet"
        frame.write_parquet(path)
        spark.read.parquet(path).write.mode("overwrite").format("parquet").saveAsTable(_name(table))
    return frame.height


def read_sql(spark, query: str) -> pl.DataFrame:
    """A Spark query's rows as a Polars frame, through Parquet (types kept, nulls in integer columns too)."""
    with tempfile.TemporaryDirectory() as folder:
        spark.sql(query).write.mode("overwrite").parquet(f"{folder}/rows")
        return pl.read_parquet(f"{folder}/rows/*.parquet")


def duckdb_tables(con: duckdb.DuckDBPyConnection, schemas: Iterable[str]) -> list[tuple[str, str]]:
    """(schema, table) of every base table in `schemas`."""
    return con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and list_contains(?, table_schema) order by all",
        [list(schemas)],
    ).fetchall()


def copy_from_duckdb(database: Path, spark, schemas: Iterable[str] = (RAW_SCHEMA,)) -> dict[str, int]:
    """Copy every table of `schemas` in the DuckDB `database` to the same database.table in Spark, through Parquet
    (timestamps as the same UTC instants, doubles bit for bit); return the rows copied per table."""
    copied: dict[str, int] = {}
    with duckdb.connect(str(database), read_only=True) as con, tempfile.TemporaryDirectory() as folder:
        con.execute("set TimeZone = 'UTC'")
        for schema, table in duckdb_tables(con, schemas):
            path = Path(folder) / f"{schema}.{table}.parquet"
            con.execute(f"copy \"{schema}\".\"{table}\" to '{path}' (format parquet)")
            spark.sql(f"create database if not exists `{schema}`")
            spark.read.parquet(str(path)).write.mode("overwrite").format("parquet").saveAsTable(_name(f"{schema}.{table}"))
            copied[f"{schema}.{table}"] = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
    return copied


def write_registry(spark, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace Spark's registry tables (the dbt `registry` source) with the registry frames."""
    from pipelines.registry.tables import SCHEMA

    return {f"{SCHEMA}.{name}": write_table(spark, frame, f"{SCHEMA}.{name}") for name, frame in frames.items()}


def build_models(project: VerdictProject) -> list[dict]:
    """`dbt build` of the project's models on Spark, in this process (dbt-spark's session is this one), without the
    unit tests and the invariant tests (as the nightly build); return the failed nodes (name, status, message)."""
    from dbt.cli.main import dbtRunner

    export_project(project)
    folder = dbt_project_dir(project)
    args = [
        "build", "--project-dir", str(folder), "--profiles-dir", str(REPO_ROOT), "--target", SPARK_TARGET,
        "--target-path", str(folder / SPARK_TARGET_PATH), "--exclude", "resource_type:unit_test", "tag:invariant",
    ]  # fmt: skip
    outcome = dbtRunner().invoke(args)
    if outcome.exception is not None:
        raise RuntimeError(f"dbt build on Spark failed: {outcome.exception}")
    return [
        {"name": r.node.name, "status": str(r.status), "message": r.message}
        for r in outcome.result.results if str(r.status) in ("error", "fail")
    ]  # fmt: skip


def spark_results(spark) -> pl.DataFrame:
    """Every look's results from Spark's sufficient statistics, by the nightly job's query and engine."""
    return experiment_results(read_sql(spark, SUFFICIENT_STATS_QUERY))

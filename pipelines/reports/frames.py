"""The warehouse tables a report reads, as Polars frames: the results, decisions and health histories the nightly
job writes, the exploratory segment results, the exposure counts and the experiments' specs."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from pipelines.warehouse import read_frame, table_exists

RESULTS_SCHEMA = "main"
HISTORY_TABLES = ("experiment_results", "experiment_decisions", "experiment_health")


class NoResultsError(Exception):
    """The warehouse holds no results yet (the nightly job has not run on it)."""


@dataclass(frozen=True)
class ReportFrames:
    """Everything a report shows, for every experiment and look."""

    results: pl.DataFrame
    decisions: pl.DataFrame
    health: pl.DataFrame
    segments: pl.DataFrame
    exposure_days: pl.DataFrame
    exposures: pl.DataFrame
    experiments: pl.DataFrame
    spec_metrics: pl.DataFrame

    @property
    def experiment_ids(self) -> list[str]:
        """The experiments with results, sorted."""
        return sorted(self.results.get_column("experiment_id").unique().to_list())

    def of(self, experiment_id: str) -> ReportFrames:
        """The frames of one experiment."""
        only = pl.col("experiment_id") == experiment_id
        return ReportFrames(**{name: getattr(self, name).filter(only) for name in self.__dataclass_fields__})


EXPERIMENTS_QUERY = """
select experiment_id, experiment_name, owner, unit_type, start_date, end_date, control_variant, alpha, power,
    correction, sequential_method, planned_units
from staging.stg_experiments
"""
SPEC_METRICS_QUERY = """
select experiment_id, metric_id, role, minimum_detectable_effect, non_inferiority_margin, preferred_direction
from staging.stg_experiment_metrics
"""
EXPOSURES_QUERY = """
select experiment_id, variant, is_control, planned_weight, as_of_date, exposed_units from marts.exposure_daily_counts
"""


def _history(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return read_frame(con, f"select * from {RESULTS_SCHEMA}.{table}")


def _optional(con: duckdb.DuckDBPyConnection, schema: str, table: str, query: str) -> pl.DataFrame | None:
    """A table that a warehouse may lack (a view counts): None when it is not there."""
    found = con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?"
        " union all select count(*) from duckdb_views() where schema_name = ? and view_name = ?",
        [schema, table, schema, table],
    ).fetchall()
    return read_frame(con, query) if sum(row[0] for row in found) else None


def read_report_frames(con: duckdb.DuckDBPyConnection) -> ReportFrames:
    """Read the report's tables; NoResultsError when the results history is missing or empty."""
    missing = [t for t in HISTORY_TABLES if not table_exists(con, RESULTS_SCHEMA, t)]
    if missing:
        raise NoResultsError(f"the warehouse has no {', '.join(missing)} yet")
    results = _history(con, "experiment_results")
    if results.is_empty():
        raise NoResultsError("the warehouse's experiment_results table has no rows yet")
    segments = _optional(con, RESULTS_SCHEMA, "experiment_segment_results", "select * from main.experiment_segment_results")
    exposure_days = _optional(
        con, RESULTS_SCHEMA, "experiment_exposure_day_results", "select * from main.experiment_exposure_day_results"
    )
    exposures = _optional(con, "marts", "exposure_daily_counts", EXPOSURES_QUERY)
    experiments = _optional(con, "staging", "stg_experiments", EXPERIMENTS_QUERY)
    spec_metrics = _optional(con, "staging", "stg_experiment_metrics", SPEC_METRICS_QUERY)
    return ReportFrames(
        results=results,
        decisions=_history(con, "experiment_decisions"),
        health=_history(con, "experiment_health"),
        segments=segments if segments is not None else _no_segments(results),
        exposure_days=exposure_days if exposure_days is not None else _no_segments(results),
        exposures=exposures if exposures is not None else pl.DataFrame(schema=EXPOSURE_SCHEMA),
        experiments=experiments if experiments is not None else _experiments_from(results),
        spec_metrics=spec_metrics if spec_metrics is not None else pl.DataFrame(schema=SPEC_METRIC_SCHEMA),
    )


EXPOSURE_SCHEMA = {
    "experiment_id": pl.String, "variant": pl.String, "is_control": pl.Boolean, "planned_weight": pl.Float64,
    "as_of_date": pl.Date, "exposed_units": pl.Int64,
}  # fmt: skip
SPEC_METRIC_SCHEMA = {
    "experiment_id": pl.String, "metric_id": pl.String, "role": pl.String, "minimum_detectable_effect": pl.Float64,
    "non_inferiority_margin": pl.Float64, "preferred_direction": pl.String,
}  # fmt: skip


def _experiments_from(results: pl.DataFrame) -> pl.DataFrame:
    """The experiments as far as the results tell (a warehouse without the registry's views)."""
    return results.group_by("experiment_id").agg(
        experiment_name=pl.col("experiment_id").first(), owner=pl.lit(None, pl.String),
        unit_type=pl.lit(None, pl.String), start_date=pl.col("as_of_date").min(), end_date=pl.lit(None, pl.Date),
        control_variant=pl.col("control").first(), alpha=pl.col("alpha").first(), power=pl.lit(None, pl.Float64),
        correction=pl.col("correction").first(), sequential_method=pl.col("sequential_method").first(),
        planned_units=pl.lit(None, pl.Int64),
    )  # fmt: skip


def _no_segments(results: pl.DataFrame) -> pl.DataFrame:
    """An empty segment table (a warehouse from before segment results)."""
    return results.clear().with_columns(
        dimension=pl.lit(None, pl.String), segment=pl.lit(None, pl.String), exploratory=pl.lit(None, pl.Boolean)
    )

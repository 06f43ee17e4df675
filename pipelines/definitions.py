"""Dagster definitions for Verdict: the nightly analysis DAG, its checks and schedule."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.analysis import (
    experiment_decisions_asset,
    experiment_health_asset,
    experiment_results_asset,
    experiment_exposure_day_results_asset,
    experiment_segment_results_asset,
    experiment_health_checks,
)
from pipelines.assets.dbt import verdict_dbt_models
from pipelines.assets.partitions import AS_OF_DATES
from pipelines.assets.raw import raw_tables
from pipelines.assets.registry import experiment_registry
from pipelines.assets.reports import experiment_reports_asset
from pipelines.progress import progress_logger
from pipelines.project import dbt_resource, verdict_dbt_project
from pipelines.registry.spec import IDENTIFIER
from pipelines.resources import WarehouseResource
from pipelines.verdict_project import current_project
from pipelines.warehouse import export_warehouse_path

verdict_dbt_project.prepare_if_dev()

nightly_analysis = dg.define_asset_job(
    "nightly_analysis",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("raw"),
    partitions_def=AS_OF_DATES,
    description=(
        "Load the registry, build the dbt models and tests, compute the looks of the as-of date (or range) into the "
        "results history, run the health checks, and write the HTML reports."
    ),
)

# Every night at 02:00 UTC: yesterday's look.
nightly_schedule = dg.build_schedule_from_partitioned_job(
    nightly_analysis,
    name="nightly_analysis_schedule",
    hour_of_day=2,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def experiment_ids() -> list[str]:
    """The experiments whose health checks the definitions show: the spec files' names (valid identifiers)."""
    return sorted({p.stem for p in current_project().experiments_dir.glob("*.y*ml") if IDENTIFIER.fullmatch(p.stem)})


def build_defs() -> dg.Definitions:
    """The definitions, bound to the warehouse file that $VERDICT_WAREHOUSE names (or the default)."""
    warehouse = export_warehouse_path()
    return dg.Definitions(
        assets=[
            *raw_tables, experiment_registry, verdict_dbt_models,
            experiment_results_asset, experiment_segment_results_asset, experiment_exposure_day_results_asset,
            experiment_health_asset,
            experiment_decisions_asset, experiment_reports_asset,
        ],  # fmt: skip
        asset_checks=[experiment_health_checks(experiment_ids())],
        jobs=[nightly_analysis],
        schedules=[nightly_schedule],
        resources={"dbt": dbt_resource(), "warehouse": WarehouseResource(path=str(warehouse))},
        loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    )


defs = build_defs()

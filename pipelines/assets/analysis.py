"""Statistics assets: results and health per experiment, computed from the marts' sufficient statistics."""

import dagster as dg
import polars as pl
from dagster_dbt import get_asset_key_for_model

from pipelines.analysis.decisions import experiment_decisions
from pipelines.analysis.health import SRM_FAIL_P_VALUE, experiment_health
from pipelines.analysis.results import SEGMENT_STATS_QUERY, SUFFICIENT_STATS_QUERY, experiment_results, segment_results
from pipelines.assets.dbt import verdict_dbt_models
from pipelines.resources import WarehouseResource
from pipelines.warehouse import read_frame, replace_table

RESULTS_SCHEMA = "main"


def _model(name: str) -> dg.AssetKey:
    return get_asset_key_for_model([verdict_dbt_models], name)


@dg.asset(
    name="experiment_results",
    deps=[_model("metric_sufficient_stats")],
    group_name="analysis",
    kinds={"polars", "duckdb"},
    pool="duckdb",
)
def experiment_results_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Treatment-vs-control estimates, intervals and p-values per metric and as-of date (`main.experiment_results`)."""
    with warehouse.connect() as con:
        stats = read_frame(con, SUFFICIENT_STATS_QUERY)
        results = experiment_results(stats).with_columns(run_id=pl.lit(context.run.run_id))
        replace_table(con, RESULTS_SCHEMA, "experiment_results", results)
    latest = results.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))
    return dg.MaterializeResult(
        metadata={
            "rows": len(results),
            "experiments": results["experiment_id"].n_unique(),
            "significant_at_latest_look": int(latest["is_significant"].sum()),
            "latest_look": dg.MetadataValue.md(_markdown(latest)),
        }
    )


@dg.asset(
    name="experiment_segment_results",
    deps=[_model("metric_segment_stats")],
    group_name="analysis",
    kinds={"polars", "duckdb"},
    pool="duckdb",
)
def experiment_segment_results_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Exploratory results per unit dimension and segment at each experiment's latest look
    (`main.experiment_segment_results`); never part of a decision."""
    with warehouse.connect() as con:
        stats = read_frame(con, SEGMENT_STATS_QUERY)
        results = segment_results(stats).with_columns(run_id=pl.lit(context.run.run_id))
        replace_table(con, RESULTS_SCHEMA, "experiment_segment_results", results)
    return dg.MaterializeResult(
        metadata={
            "rows": len(results),
            "segments": results.select("experiment_id", "dimension", "segment").n_unique(),
            "significant_exploratory_comparisons": int(results["is_significant"].fill_null(False).sum()),
        }
    )


def _markdown(frame: pl.DataFrame) -> str:
    """A small Markdown table of the latest look for the Dagster UI."""
    rows = ["| experiment | metric | treatment | relative effect | p-value | significant |", "|---|---|---|---|---|---|"]
    for r in frame.iter_rows(named=True):
        rel = "n/a" if r["relative_estimate"] is None else f"{r['relative_estimate']:+.2%}"
        p = "n/a" if r["p_value"] is None else f"{r['p_value']:.3g}"
        rows.append(f"| {r['experiment_id']} | {r['metric_id']} | {r['treatment']} | {rel} | {p} | {r['is_significant']} |")
    return "\n".join(rows)


@dg.asset(
    name="experiment_health",
    deps=[_model("exposure_daily_counts"), _model("exposure_summary")],
    group_name="analysis",
    kinds={"polars", "duckdb"},
    pool="duckdb",
)
def experiment_health_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Health checks per experiment and as-of date (`main.experiment_health`): sample ratio, crossovers."""
    with warehouse.connect() as con:
        counts = read_frame(con, "select * from marts.exposure_daily_counts")
        summary = read_frame(con, "select * from marts.exposure_summary")
        health = experiment_health(counts, summary).with_columns(run_id=pl.lit(context.run.run_id))
        replace_table(con, RESULTS_SCHEMA, "experiment_health", health)
    return dg.MaterializeResult(
        metadata={f"{status}_checks": int((health["status"] == status).sum()) for status in ("pass", "warn", "fail")}
    )


@dg.asset(
    name="experiment_decisions",
    deps=["experiment_results", "experiment_health"],
    group_name="analysis",
    kinds={"polars", "duckdb"},
    pool="duckdb",
)
def experiment_decisions_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Ship / abort / end / continue per experiment, treatment and as-of date, with the reason (`main.experiment_decisions`)."""
    with warehouse.connect() as con:
        results = read_frame(con, "select * from main.experiment_results")
        health = read_frame(con, "select * from main.experiment_health")
        decisions = experiment_decisions(results, health).with_columns(run_id=pl.lit(context.run.run_id))
        replace_table(con, RESULTS_SCHEMA, "experiment_decisions", decisions)
    latest = decisions.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))
    return dg.MaterializeResult(
        metadata={
            "rows": len(decisions),
            **{f"{r['experiment_id']}/{r['treatment']}": f"{r['decision']}: {r['reason']}" for r in latest.iter_rows(named=True)},
        }
    )


@dg.asset_check(asset="experiment_health", name="sample_ratio_mismatch", blocking=False)
def sample_ratio_mismatch_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Fails when an experiment's latest look shows a sample ratio mismatch (chi-square p < 0.001)."""
    with warehouse.connect() as con:
        latest = read_frame(
            con,
            """
            select experiment_id, value as p_value, status, detail
            from main.experiment_health
            where check_name = 'sample_ratio_mismatch'
            qualify as_of_date = max(as_of_date) over (partition by experiment_id)
            order by experiment_id
            """,
        )
    failing = latest.filter(pl.col("status") == "fail")["experiment_id"].to_list()
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"Sample ratio mismatch (p < {SRM_FAIL_P_VALUE}) in: {', '.join(failing)}" if failing
            else "Every experiment's split matches its planned weights"
        ),
        metadata={
            "failing_experiments": failing,
            **{f"p_value[{r['experiment_id']}]": r["p_value"] for r in latest.iter_rows(named=True)},
        },
    )

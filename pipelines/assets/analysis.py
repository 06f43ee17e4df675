"""Statistics assets: results and health per experiment, computed from the marts' sufficient statistics."""

import dagster as dg
import polars as pl
from dagster_dbt import get_asset_key_for_model

from pipelines.analysis.decisions import experiment_decisions
from pipelines.analysis.health import CHECKS, experiment_health
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


HEALTH_STATS_QUERY = """
select experiment_id, metric_id, variant, is_control, as_of_date, analysis_type as metric_type, n, sum, sum_sq,
       cov_sum, cov_sum_sq
from marts.metric_sufficient_stats
"""


@dg.asset(
    name="experiment_health",
    deps=[_model(m) for m in ("exposure_daily_counts", "exposure_summary", "metric_sufficient_stats", "raw_row_counts")],
    group_name="analysis",
    kinds={"polars", "duckdb"},
    pool="duckdb",
)
def experiment_health_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Health checks per experiment and as-of date (`main.experiment_health`): sample ratio (overall and per day),
    crossovers, pre-exposure imbalance, metric data, exposure traffic, quarantined raw rows."""
    with warehouse.connect() as con:
        raw_counts = read_frame(con, "select * from marts.raw_row_counts")
        health = experiment_health(
            read_frame(con, "select * from marts.exposure_daily_counts"),
            read_frame(con, "select * from marts.exposure_summary"),
            read_frame(con, HEALTH_STATS_QUERY),
            raw_counts,
        ).with_columns(run_id=pl.lit(context.run.run_id))
        replace_table(con, RESULTS_SCHEMA, "experiment_health", health)
    return dg.MaterializeResult(
        metadata={
            **{f"{status}_checks": int((health["status"] == status).sum()) for status in ("pass", "warn", "fail")},
            **{
                f"raw_rows[{r['source_table']}]": f"{r['raw_rows']} = {r['clean_rows']} clean + {r['quarantined_rows']} quarantined"
                for r in raw_counts.iter_rows(named=True)
            },
        }
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


LATEST_HEALTH_QUERY = """
select experiment_id, as_of_date, check_name, status, value, detail
from main.experiment_health
qualify as_of_date = max(as_of_date) over (partition by experiment_id)
"""


def health_check_name(experiment_id: str, check: str) -> str:
    """The Dagster asset check of one health check of one experiment."""
    return f"{experiment_id}__{check}"


def experiment_health_checks(experiment_ids: list[str]) -> dg.AssetChecksDefinition:
    """One asset check on `experiment_health` per experiment and health check, from its latest look: a `fail`
    fails with severity error, a `warn` with severity warn."""

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(health_check_name(e, c), asset="experiment_health", description=f"{c} of {e}")
            for e in experiment_ids
            for c in CHECKS
        ],
        name="experiment_health_checks",
    )
    def _checks(warehouse: WarehouseResource):
        with warehouse.connect() as con:
            latest = read_frame(con, LATEST_HEALTH_QUERY)
        rows = {health_check_name(r["experiment_id"], r["check_name"]): r for r in latest.iter_rows(named=True)}
        for e in experiment_ids:
            for c in CHECKS:
                row = rows.get(health_check_name(e, c))
                if row is None:
                    yield dg.AssetCheckResult(
                        check_name=health_check_name(e, c), passed=True, description="no look yet"
                    )
                    continue
                yield dg.AssetCheckResult(
                    check_name=health_check_name(e, c),
                    passed=row["status"] == "pass",
                    severity=dg.AssetCheckSeverity.ERROR if row["status"] == "fail" else dg.AssetCheckSeverity.WARN,
                    description=row["detail"],
                    metadata={"experiment_id": e, "as_of_date": str(row["as_of_date"]), "status": row["status"],
                              "value": row["value"]},
                )  # fmt: skip

    return _checks

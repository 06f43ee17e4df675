"""Statistics assets: results and health per experiment, computed from the marts' sufficient statistics.

Results, health and decisions are partitioned by as-of date: a run writes the looks of its partition (or of its
range: a backfill is one run, its looks computed together in date order) into history tables, replacing the looks
it computed, with the run id, the code version and the data watermark. A look the run cannot compute (its spec is
invalid, it uses a broken metric model, or its date is past the data watermark) is never deleted: it keeps the
version an earlier run wrote, and the run's `skipped_looks` says which and why. A group-sequential test spends alpha on
the looks the history holds, and rewriting an earlier look recomputes the later group-sequential looks that the
history already has, as they depend on it.

An experiment that uses a broken metric model (one that failed to build or failed its data tests, see
pipelines/assets/dbt.py) is held back: its rows at the run's dates stay as they were (none, for a new date), but for
a failed `metric_models` health check naming the model; an experiment whose spec is invalid likewise keeps its
rows and gets a failed `experiment_spec` check. The other experiments get their looks as usual.
"""

import datetime as dt

import dagster as dg
import polars as pl
from dagster_dbt import get_asset_key_for_model

from pipelines.analysis.decisions import experiment_decisions
from pipelines.analysis.health import CHECKS, NOT_APPLICABLE, experiment_health, invalid_spec_health
from pipelines.analysis.results import (
    EXPOSURE_DAY_STATS_QUERY, SEGMENT_STATS_QUERY, SUFFICIENT_STATS_QUERY, experiment_results, segment_results,
)  # fmt: skip
from pipelines.assets.dbt import verdict_dbt_models
from pipelines.assets.partitions import AS_OF_DATES
from pipelines.project import code_version
from pipelines.resources import WarehouseResource
from pipelines.assets.registry import INVALID_SPECS
from pipelines.registry.tables import SCHEMA as REGISTRY_SCHEMA
from pipelines.verdict_project import current_project
from pipelines.warehouse import LOOK, read_frame, replace_looks, table_exists

RESULTS_SCHEMA = "main"
# Every statistics asset: in the analysis group, written with Polars into DuckDB, inside the one-writer pool.
ANALYSIS = {"group_name": "analysis", "kinds": {"polars", "duckdb"}, "pool": "duckdb"}
HISTORY = {**ANALYSIS, "partitions_def": AS_OF_DATES, "backfill_policy": dg.BackfillPolicy.single_run()}


def _model(name: str) -> dg.AssetKey:
    return get_asset_key_for_model([verdict_dbt_models], name)


def look_dates(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The as-of dates of the run's partition or partition range, in order."""
    window = context.partition_time_window
    days = (window.end.date() - window.start.date()).days
    return [window.start.date() + dt.timedelta(days=i) for i in range(days)]


def provenance(context: dg.AssetExecutionContext, watermark: dt.date | None) -> list[pl.Expr]:
    """The columns every look carries: the run that wrote it, the code version and the data watermark."""
    return [
        pl.lit(context.run.run_id).alias("run_id"),
        pl.lit(code_version()).alias("code_version"),
        pl.lit(watermark, pl.Date).alias("data_watermark"),
    ]


def data_watermark(con) -> dt.date | None:
    """The last day with data (dbt's int_data_watermark)."""
    return con.sql("select watermark_date from intermediate.int_data_watermark").fetchall()[0][0]


def history(con, table: str, query: str, params: list | None = None) -> pl.DataFrame | None:
    """Rows of a history table (None before its first look)."""
    return read_frame(con, query, params) if table_exists(con, RESULTS_SCHEMA, table) else None


BROKEN_METRICS_QUERY = """
select experiment_metrics.experiment_id, catalogue.metric_id
from marts.metric_catalogue as catalogue
inner join staging.stg_experiment_metrics as experiment_metrics on catalogue.metric_id = experiment_metrics.metric_id
where catalogue.is_broken
"""


def broken_metrics(con) -> pl.DataFrame:
    """The broken metric models of the last dbt build, with each experiment that uses one (which is held back)."""
    return read_frame(con, BROKEN_METRICS_QUERY)


def not_held(frame: pl.DataFrame, broken: pl.DataFrame) -> pl.DataFrame:
    """The frame's rows of the experiments that use no broken metric model."""
    return frame.join(broken.select("experiment_id").unique(), on="experiment_id", how="anti")


def invalid_specs(con) -> pl.DataFrame:
    """The invalid spec files of the run's registry: experiment_id (the file's name) and problem."""
    if not table_exists(con, REGISTRY_SCHEMA, INVALID_SPECS):
        return pl.DataFrame(schema={"experiment_id": pl.String, "problem": pl.String})
    return read_frame(con, f"select experiment_id, problem from {REGISTRY_SCHEMA}.{INVALID_SPECS}")


SPEC_WINDOWS_QUERY = """
select experiment_id, start_date, end_date from staging.stg_experiments
"""


def skipped_looks(
    con, looks: list[dt.date], written: pl.DataFrame, broken: pl.DataFrame, watermark: dt.date | None
) -> pl.DataFrame:
    """The looks of the run's range that it did not write, per experiment and reason (experiment_id, first, last,
    reason): an invalid spec, a broken metric model, a date past the data watermark, or no exposed units yet.
    Each keeps what an earlier run wrote."""
    dates = pl.DataFrame({"as_of_date": looks}, schema={"as_of_date": pl.Date})
    windows = read_frame(con, SPEC_WINDOWS_QUERY)
    expected = windows.join(dates, how="cross").filter(
        (pl.col("as_of_date") >= pl.col("start_date"))
        & (pl.col("end_date").is_null() | (pl.col("as_of_date") <= pl.col("end_date")))
    ).select("experiment_id", "as_of_date")
    invalid = invalid_specs(con).filter(pl.col("experiment_id").is_not_null())
    expected = pl.concat([expected, invalid.select("experiment_id").join(dates, how="cross")])
    missing = expected.join(written.select("experiment_id", "as_of_date").unique(), on=["experiment_id", "as_of_date"], how="anti")
    models = broken.group_by("experiment_id").agg(pl.col("metric_id").unique().sort().str.join(", ").alias("models"))
    reason = (
        pl.when(pl.col("experiment_id").is_in(invalid["experiment_id"].implode()))
        .then(pl.lit("the spec is invalid (see the experiment_spec check)"))
        .when(pl.col("models").is_not_null())
        .then(pl.format("broken metric model: {}", "models"))
        .when(pl.lit(watermark is None) | (pl.col("as_of_date") > pl.lit(watermark, pl.Date)))
        .then(pl.lit(f"past the data watermark ({watermark or 'no data'})"))
        .otherwise(pl.lit("no exposed units yet"))
    )
    return (
        missing.join(models, on="experiment_id", how="left")
        .with_columns(reason=reason)
        .group_by("experiment_id", "reason")
        .agg(first=pl.col("as_of_date").min(), last=pl.col("as_of_date").max(), looks=pl.len())
        .sort("experiment_id", "first")
    )


def skipped_summary(skipped: pl.DataFrame) -> str:
    """The skipped looks in one line per experiment and reason, for the UI and the CLI."""
    lines = [
        f"{r['experiment_id']} {r['first']}" + (f" to {r['last']}" if r["last"] != r["first"] else "")
        + f": {r['reason']}"
        for r in skipped.iter_rows(named=True)
    ]  # fmt: skip
    return "\n".join(lines) or "none"


def held_back(broken: pl.DataFrame) -> str:
    """The held-back experiments and the broken metric models they use, for the UI."""
    models = broken.group_by("experiment_id").agg(pl.col("metric_id").sort().str.join(", ")).sort("experiment_id")
    return "; ".join(f"{r['experiment_id']} ({r['metric_id']})" for r in models.iter_rows(named=True)) or "none"


@dg.asset(
    name="experiment_results",
    deps=[_model("metric_sufficient_stats")],
    **HISTORY,
)
def experiment_results_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Treatment-vs-control estimates, intervals and p-values per metric and as-of date (`main.experiment_results`)."""
    looks = look_dates(context)
    with warehouse.connect() as con:
        broken = broken_metrics(con)
        recorded = history(
            con, "experiment_results",
            "select experiment_id, metric_id, treatment, as_of_date, n_control + n_treatment as recorded_units"
            " from main.experiment_results where information_fraction is not null and as_of_date < ?", [looks[0]],
        )  # fmt: skip
        later = history(con, "experiment_results", "select distinct experiment_id, as_of_date from main.experiment_results"
                        " where sequential_method = 'group_sequential' and as_of_date > ?", [looks[-1]])  # fmt: skip
        later = None if later is None else not_held(later, broken)
        stats = not_held(read_frame(con, SUFFICIENT_STATS_QUERY), broken)
        watermark = data_watermark(con)
        written = pl.DataFrame(schema={"experiment_id": pl.String, "as_of_date": pl.Date})
        if stats.height:  # else nothing to analyse: no experiment with data, or every one held back
            results = experiment_results(stats, recorded)
            in_range = pl.col("as_of_date").is_between(looks[0], looks[-1])
            recomputed = results.join(later, on=LOOK) if later is not None else results.clear()
            written = pl.concat([results.filter(in_range), recomputed]).with_columns(provenance(context, watermark))
            replace_looks(con, RESULTS_SCHEMA, "experiment_results", written)
        skipped = skipped_looks(con, looks, written, broken, watermark)
    if skipped.height:
        context.log.warning(f"looks not recomputed:\n{skipped_summary(skipped)}")
    metadata = {
        "rows": len(written),
        "looks": f"{looks[0]} to {looks[-1]}",
        "skipped_looks": skipped_summary(skipped),
        "later_looks_recomputed": 0 if later is None else len(later),
        "experiments": written["experiment_id"].n_unique(),
        "held_back_experiments": held_back(broken),
    }
    if written.height:
        latest = written.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))
        metadata["significant_at_latest_look"] = int(latest["is_significant"].fill_null(False).sum())
        metadata["latest_look"] = dg.MetadataValue.md(_markdown(latest))
    return dg.MaterializeResult(metadata=metadata)


def exploratory_results(context: dg.AssetExecutionContext, warehouse: WarehouseResource, query: str, table: str) -> dg.MaterializeResult:
    """Test a mart of exploratory breakdowns (segment-keyed sufficient statistics) at each experiment's latest look
    into `main.<table>`; never part of a decision."""
    with warehouse.connect() as con:
        broken = broken_metrics(con)
        stats = not_held(read_frame(con, query), broken)
        if not stats.height:
            return dg.MaterializeResult(metadata={"rows": 0, "held_back_experiments": held_back(broken)})
        results = segment_results(stats).with_columns(run_id=pl.lit(context.run.run_id))
        # the latest look of each experiment analysed; the others keep theirs
        replace_looks(con, RESULTS_SCHEMA, table, results, key=["experiment_id"])
    return dg.MaterializeResult(
        metadata={
            "rows": len(results),
            "held_back_experiments": held_back(broken),
            "segments": results.select("experiment_id", "dimension", "segment").n_unique(),
            "significant_exploratory_comparisons": int(results["is_significant"].fill_null(False).sum()),
        }
    )


@dg.asset(
    name="experiment_segment_results",
    deps=[_model("metric_segment_stats")],
    **ANALYSIS,
)
def experiment_segment_results_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Exploratory results per unit dimension and segment at each experiment's latest look
    (`main.experiment_segment_results`); never part of a decision."""
    return exploratory_results(context, warehouse, SEGMENT_STATS_QUERY, "experiment_segment_results")


@dg.asset(
    name="experiment_exposure_day_results",
    deps=[_model("metric_exposure_day_stats")],
    **ANALYSIS,
)
def experiment_exposure_day_results_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Exploratory results by days since exposure (novelty and learning effects) at each experiment's latest look:
    each day's comparison of the units' values on that day (`main.experiment_exposure_day_results`, the day in
    `segment`); never part of a decision."""
    return exploratory_results(context, warehouse, EXPOSURE_DAY_STATS_QUERY, "experiment_exposure_day_results")


def _markdown(frame: pl.DataFrame) -> str:
    """The latest look for the Dagster UI, as a Markdown table: each comparison's relative effect with its interval
    and level, and its outcome in words in the metric's preferred direction (a guardrail's non-inferiority too)."""
    from pipelines.reports.outcomes import outcome
    from pipelines.reports.pages import level, percent

    rows = ["| experiment | metric (role) | treatment | relative effect [interval] | level | outcome |", "|---|---|---|---|---|---|"]
    for r in frame.with_columns(outcome=outcome()).sort("experiment_id", "metric_id", "treatment").iter_rows(named=True):
        effect = f"{percent(r['relative_estimate'])} [{percent(r['relative_ci_lower'])}, {percent(r['relative_ci_upper'])}]"
        rows.append(f"| {r['experiment_id']} | {r['metric_id']} ({r['role']}) | {r['treatment']} | {effect} | "
                    f"{level(r['ci_level'])} | {r['outcome']} |")  # fmt: skip
    return "\n".join(rows)


def _failed_checks_markdown(health: pl.DataFrame) -> str:
    """The failed and warning checks of each experiment's latest look, failed first, as a Markdown table."""
    latest = health.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))
    shown = latest.filter(pl.col("status").is_in(["fail", "warn"])).sort("status", "experiment_id", "check_name")
    rows = ["| experiment | check | status | figures |", "|---|---|---|---|"]
    rows += [f"| {r['experiment_id']} | {r['check_name']} | {r['status']} | {(r['detail'] or '').replace('|', '/')} |"
             for r in shown.iter_rows(named=True)]  # fmt: skip
    return "\n".join(rows) if shown.height else "every check passed"


HEALTH_STATS_QUERY = """
select experiment_id, metric_id, variant, is_control, as_of_date, analysis_type as metric_type, n, sum, sum_sq,
       cov_sum, cov_sum_sq
from marts.metric_sufficient_stats
"""


@dg.asset(
    name="experiment_health",
    deps=[
        _model(m)
        for m in ("exposure_daily_counts", "exposure_summary", "metric_sufficient_stats", "raw_row_counts", "metric_largest_units")
    ],
    **HISTORY,
)
def experiment_health_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Health checks per experiment and as-of date (`main.experiment_health`): sample ratio (overall and per day),
    crossovers, pre-exposure imbalance, metric models, metric data, exposure traffic, quarantined raw rows."""
    looks = look_dates(context)
    with warehouse.connect() as con:
        broken = broken_metrics(con)
        raw_counts = read_frame(con, "select * from marts.raw_row_counts")
        health = experiment_health(
            read_frame(con, "select * from marts.exposure_daily_counts"),
            read_frame(con, "select * from marts.exposure_summary"),
            read_frame(con, HEALTH_STATS_QUERY),
            raw_counts,
            broken,
            read_frame(con, "select * from marts.metric_largest_units"),
            timed_assignments=current_project().config.sources.assignments.is_timed,
        ).filter(pl.col("as_of_date").is_between(looks[0], looks[-1]))
        # a held-back experiment gets only its failed metric_models check, one with an invalid spec only its failed
        # experiment_spec check; their other checks stay as they were
        failed = health.filter(pl.col("check_name") == "metric_models").join(broken, on="experiment_id", how="semi")
        health = pl.concat([not_held(health, broken), failed, invalid_spec_health(invalid_specs(con), looks)])
        health = health.with_columns(provenance(context, data_watermark(con)))
        replace_looks(con, RESULTS_SCHEMA, "experiment_health", health, key=[*LOOK, "check_name"])
    return dg.MaterializeResult(
        metadata={
            "rows": len(health),
            "held_back_experiments": held_back(broken),
            "failed_and_warning_checks": dg.MetadataValue.md(_failed_checks_markdown(health)),
            **{f"{status}_checks": int((health["status"] == status).sum()) for status in ("pass", "warn", "fail", NOT_APPLICABLE)},
            **{
                f"raw_rows[{r['source_table']}]": f"{r['raw_rows']} = {r['clean_rows']} clean + {r['quarantined_rows']} quarantined"
                for r in raw_counts.iter_rows(named=True)
            },
        }
    )


@dg.asset(
    name="experiment_decisions",
    deps=["experiment_results", "experiment_health"],
    **HISTORY,
)
def experiment_decisions_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Ship / abort / end / continue per experiment, treatment and as-of date, with the reason
    (`main.experiment_decisions`), for the looks of the partition and every later look whose results changed."""
    looks = look_dates(context)
    with warehouse.connect() as con:
        if not table_exists(con, RESULTS_SCHEMA, "experiment_results"):
            return dg.MaterializeResult(metadata={"rows": 0})
        broken = broken_metrics(con)
        results = read_frame(con, "select * from main.experiment_results where as_of_date >= ?", [looks[0]])
        health = read_frame(con, "select * from main.experiment_health where as_of_date >= ?", [looks[0]])
        changed = results.filter(pl.col("run_id") == context.run.run_id).select("experiment_id", "as_of_date").unique()
        spec_metrics = read_frame(con, "select experiment_id, metric_id, role from staging.stg_experiment_metrics")
        decisions = experiment_decisions(results.join(changed, on=["experiment_id", "as_of_date"]), health, spec_metrics)
        decisions = decisions.with_columns(provenance(context, data_watermark(con)))
        replace_looks(con, RESULTS_SCHEMA, "experiment_decisions", decisions)
    latest = decisions.filter(pl.col("as_of_date") == pl.col("as_of_date").max().over("experiment_id"))
    return dg.MaterializeResult(
        metadata={
            "rows": len(decisions),
            "held_back_experiments": held_back(broken),
            **{f"{r['experiment_id']}/{r['treatment']}": f"{r['decision']}: {r['reason']}" for r in latest.iter_rows(named=True)},
        }
    )


# Each check's latest look: a held-back look has its metric_models check only, and the others show the look before.
LATEST_HEALTH_QUERY = """
select experiment_id, as_of_date, check_name, status, value, detail
from main.experiment_health
qualify as_of_date = max(as_of_date) over (partition by experiment_id, check_name)
"""


def health_check_name(experiment_id: str, check: str) -> str:
    """The Dagster asset check of one health check of one experiment."""
    return f"{experiment_id}__{check}"


def experiment_health_checks(experiment_ids: list[str]) -> dg.AssetChecksDefinition:
    """One asset check on `experiment_health` per experiment and health check, from the check's latest look: a
    `fail` fails with severity error, a `warn` with severity warn."""

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(health_check_name(e, c), asset="experiment_health", description=f"{c} of {e}")
            for e in experiment_ids
            for c in CHECKS
        ],
        name="experiment_health_checks",
        pool="duckdb",  # it reads the warehouse file, which a writer in another run holds exclusively
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
                    passed=row["status"] in ("pass", NOT_APPLICABLE),
                    severity=dg.AssetCheckSeverity.ERROR if row["status"] == "fail" else dg.AssetCheckSeverity.WARN,
                    description=row["detail"],
                    metadata={"experiment_id": e, "as_of_date": str(row["as_of_date"]), "status": row["status"],
                              "value": row["value"]},
                )  # fmt: skip

    return _checks

"""The `verdict` command line: simulate a warehouse, run the nightly analysis, read the results."""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from pipelines.registry.catalogue import metric_catalogue, resolve_specs
from pipelines.registry.spec import SequentialMethod, SpecError, load_specs, read_specs
from pipelines.verdict_project import CONFIG_FILE, PROJECT_ENV, ProjectError, current_project, export_project
from pipelines.warehouse import connect, export_warehouse_path, read_frame, warehouse_path

# an unexpected error prints its traceback without local variables: rendering a run's frames took minutes
app = typer.Typer(
    help="Verdict: nightly A/B test analysis in the data warehouse.", no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 150)


@app.callback()
def use_project(
    context: typer.Context,
    project: Annotated[Path | None, typer.Option(
        "--project", envvar="VERDICT_PROJECT", file_okay=False,
        help="The Verdict project folder (verdict.yml, experiments/, metrics/); default: the demo shipped with Verdict.",
    )] = None,
) -> None:
    """Every command works on one Verdict project: --project, else $VERDICT_PROJECT, else the demo."""
    if project is not None:
        os.environ[PROJECT_ENV] = str(project.expanduser().resolve())
    if context.invoked_subcommand == "init":
        return
    try:
        export_project(current_project())
    except ProjectError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _specs(resolved: bool = False):
    """The experiment specs; `resolved`: with their metrics resolved against the dbt metric catalogue."""
    try:
        directory = current_project().experiments_dir
        specs = load_specs(directory)
        return resolve_specs(specs, metric_catalogue(_manifest()), directory) if resolved else specs
    except SpecError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _manifest() -> dict:
    """The dbt manifest, parsed fresh."""
    import json

    from pipelines.project import prepare_manifest

    return json.loads(prepare_manifest().read_text())


@app.command()
def init(directory: Annotated[Path, typer.Argument(file_okay=False, help="The new project folder.")]) -> None:
    """Create a Verdict project: verdict.yml (the sources to map), one example experiment and one example metric."""
    from pipelines.verdict_project import init_project

    try:
        project = init_project(directory.expanduser())
    except ProjectError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"Verdict project created in {project.root}:\n"
        f"  {CONFIG_FILE}: map your assignment log and fact tables (sources)\n"
        f"  experiments/example_experiment.yml: one spec per experiment\n"
        f"  metrics/orders_per_user.sql and metrics/_metrics.yml: one model and one YAML entry per metric\n"
        f"Then: verdict --project {directory} run"
    )


@app.command()
def simulate(
    units: Annotated[int, typer.Option(help="Number of simulated users.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same warehouse.")] = 7,
    end_date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day of data.")] = dt.datetime(2026, 11, 21),
    history_days: Annotated[int, typer.Option(help="Days of data before the last day.")] = 28,
) -> None:
    """Write a synthetic warehouse (raw.units, raw.assignments, raw.events, raw.simulation_truth)."""
    from pipelines.simulation import simulate as run_simulation

    path = export_warehouse_path()
    started = time.perf_counter()
    counts = run_simulation(
        path, experiments=_specs(), units=units, seed=seed, end_date=end_date.date(), history_days=history_days
    )
    table = Table(title=f"Simulated warehouse {path} in {time.perf_counter() - started:.1f} s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@app.command()
def prepare() -> None:
    """Parse the dbt project so its manifest exists before the Dagster definitions load."""
    from pipelines.project import prepare_manifest

    console.print(f"dbt manifest ready: {prepare_manifest()}")


FULL_REFRESH_HELP = "Rebuild the incremental dbt models from all raw rows (otherwise only when the project or the registry changed)."


@app.command()
def run(
    date: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The as-of date of one look (default: every look from the first experiment's start to yesterday, or to the last end date when every experiment has ended).")] = None,
    log_level: Annotated[str, typer.Option(help="Dagster console log level (debug, info, warning, error).")] = "warning",
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help=FULL_REFRESH_HELP)] = False,
) -> None:
    """Run the nightly analysis job in process (registry, dbt build, the looks into the results history, health)."""
    _warn_invalid_specs(current_project().experiments_dir)
    if date is not None:
        _run_job(date.date(), date.date(), log_level, full_refresh)
    else:
        last = _last_look(current_project().experiments_dir)
        _run_job(min(_first_as_of_date(), last), last, log_level, full_refresh)


def _last_look(directory: Path) -> dt.date:
    """The last look worth running: yesterday, or the last end date when every valid experiment has ended."""
    specs, _ = read_specs(directory)
    ends = [s.end_date for s in specs]
    if not ends or None in ends:
        return _last_as_of_date()
    return min(max(ends), _last_as_of_date())


def _has_tables(path: Path, schema: str, *tables: str) -> bool:
    """Whether the warehouse file exists and holds schema.table for each of `tables`."""
    from pipelines.warehouse import table_exists

    if not path.exists():
        return False
    with connect(path, read_only=True) as con:
        return all(table_exists(con, schema, table) for table in tables)


def _refuse_missing_sources(path: Path, project) -> None:
    """Before any run: every mapped source and column is there (the dbt asset checks again, for the UI's runs)."""
    from pipelines.sources import source_problems

    import duckdb

    # a warehouse file that is not there yet is not created here: in memory, only the project's files can be read
    with connect(path, read_only=True) if path.exists() else duckdb.connect() as con:
        problems = source_problems(con, project)
    if problems:
        console.print("[red]the project's sources are not all there[/red]:\n" + "\n".join(problems))
        raise typer.Exit(2)


def _warn_invalid_specs(directory: Path) -> None:
    """Name each invalid spec: the run leaves its experiment out."""
    for error in read_specs(directory)[1]:
        console.print(f"[yellow]left out of the run:[/yellow] {error}")


@app.command()
def backfill(
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="First as-of date.")],
    end: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last as-of date.")],
    log_level: Annotated[str, typer.Option(help="Dagster console log level.")] = "warning",
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help=FULL_REFRESH_HELP)] = False,
) -> None:
    """Recompute the looks of a range of as-of dates, in date order, in one run."""
    if end < start:
        console.print(f"[red]--end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}[/red]")
        raise typer.Exit(2)
    _run_job(start.date(), end.date(), log_level, full_refresh)


def _first_as_of_date() -> dt.date:
    from pipelines.assets.partitions import AS_OF_DATES

    return AS_OF_DATES.start.date()


def _last_as_of_date() -> dt.date:
    """Yesterday (UTC): the last complete day, the nightly schedule's look."""
    from pipelines.assets.partitions import yesterday

    return yesterday()


def _run_job(start: dt.date, end: dt.date, log_level: str, full_refresh: bool = False) -> None:
    """Run nightly_analysis for the looks from `start` to `end` (one run; a single date is one partition), with a
    full refresh of the incremental dbt models if asked."""
    import dagster as dg

    from pipelines.project import prepare_manifest

    project = current_project()
    specs, invalid = read_specs(project.experiments_dir)
    if not specs and invalid:
        console.print(f"[red]no valid experiment spec in {project.experiments_dir}[/red]: fix the spec above")
        raise typer.Exit(2)
    if not _first_as_of_date() <= start <= end <= _last_as_of_date():
        console.print(f"[red]as-of dates run from {_first_as_of_date()} to yesterday, {_last_as_of_date()}[/red]")
        raise typer.Exit(2)
    path = export_warehouse_path()
    if not os.environ.get("DAGSTER_HOME"):  # one instance queues its runs (the duckdb pool); separate ones cannot
        _refuse_if_locked(path)
    _refuse_missing_sources(path, project)
    console.print("preparing the dbt manifest ...")
    prepare_manifest()
    from pipelines.definitions import build_defs

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    looks = str(start) if start == end else f"{start} to {end}"
    console.print(f"running nightly_analysis for {looks} (registry, dbt build, statistics, health checks) ...")
    started = time.perf_counter()
    result, log_path = _execute(
        build_defs().resolve_job_def("nightly_analysis"),
        log_level,
        instance=instance,
        raise_on_error=False,
        run_config={
            "loggers": {"console": {"config": {"log_level": log_level.upper()}}, "progress": {}},
            "ops": {"verdict_dbt_models": {"config": {"full_refresh": full_refresh}}},
        },
        tags=partition_range_tags(start, end),
    )
    elapsed = time.perf_counter() - started
    if log_path is not None:
        console.print(f"dbt's and the job's log: {log_path}")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.event_specific_data.error
                while error.cause is not None:  # the user's error, not Dagster's wrapper
                    error = error.cause
                console.print(f"[red]{event.step_key} failed:[/red] {error.message}")
        console.print(f"[red]nightly_analysis failed[/red] (run {result.run_id})")
        raise typer.Exit(1)
    console.print(_run_summary(result, elapsed))
    console.print(_looks_line(start, end))
    _print_index()
    skipped = _skipped_looks(result)
    if skipped:
        console.print(f"[yellow]looks not recomputed[/yellow] (what earlier runs wrote is kept):\n{skipped}")
    for check in _failed_checks(result):
        if check.severity.value == "ERROR" and check.description:
            console.print(f"[red]{check.check_name}:[/red] {check.description}")


def _execute(job, log_level: str, **kwargs):
    """Run the job in process; return its result and the log file. At log level info or debug every log line is
    printed as it comes (no file); otherwise dbt's log and the job's go to a file beside the warehouse, and the
    terminal shows a progress bar of the job's steps."""
    import contextlib
    import logging
    import uuid

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.progress import PROGRESS_LOGGER, StepProgress

    if log_level.lower() in ("debug", "info"):
        return job.execute_in_process(**kwargs), None
    run_id = str(uuid.uuid4())
    log_path = export_warehouse_path().parent / "logs" / f"nightly_analysis-{run_id[:8]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    terminal = Console(file=sys.stdout, width=console.width)  # the terminal, before stdout goes to the log
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("[dim]{task.fields[step]}"))  # fmt: skip
    logger = logging.getLogger(PROGRESS_LOGGER)
    with Progress(*columns, console=terminal, transient=True) as progress, log_path.open("w") as log:
        handler = StepProgress(progress, progress.add_task("nightly_analysis steps", total=len(job.graph.nodes), step=""))
        logger.addHandler(handler)
        try:
            with contextlib.redirect_stdout(log):
                result = job.execute_in_process(run_id=run_id, **kwargs)
        finally:
            logger.removeHandler(handler)
    return result, log_path


def _print_index() -> None:
    """Every experiment's status, recommendation and health after a run (nothing before the first results)."""
    from pipelines.reports import NoResultsError, read_report_frames
    from pipelines.reports.terminal import index_table

    try:
        with connect(export_warehouse_path(), read_only=True) as con:
            console.print(index_table(read_report_frames(con)))
    except NoResultsError:
        return


def _looks_line(start: dt.date, end: dt.date) -> str:
    """Which looks the run computed, and why the last one is where the data end (not the last date asked for)."""
    from pipelines.assets.analysis import data_watermark
    from pipelines.warehouse import table_exists

    with connect(export_warehouse_path(), read_only=True) as con:
        if not table_exists(con, "main", "experiment_results"):
            return f"no look from {start} to {end} has results yet"
        [(looks, first, last)] = con.execute(
            "select count(distinct as_of_date), min(as_of_date), max(as_of_date) from main.experiment_results"
            " where as_of_date between ? and ?", [start, end],
        ).fetchall()  # fmt: skip
        watermark = data_watermark(con)
    if not looks:
        return f"no look from {start} to {end} has data yet (the data run to {watermark})"
    line = f"looks computed: {looks}, {first} to {last}"
    if last < end:
        line += (
            f"; the data run to {watermark} (the latest measurement or assignment), so the looks after it, to {end}, "
            "wait for their data and the results are as of " + str(last)
        )
    return line


def _skipped_looks(result) -> str | None:
    """The experiment_results asset's account of the looks the run could not recompute (None: every look was)."""
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.path[-1] == "experiment_results":
            text = materialization.metadata.get("skipped_looks")
            value = getattr(text, "value", text)
            return None if value in (None, "none") else str(value)
    return None


def _refuse_if_locked(path: Path) -> None:
    """Stop with a clear message when another process holds the warehouse file (DuckDB has one writer)."""
    import duckdb

    if not path.exists():  # nobody holds a file that is not there
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        holder = str(exc).split("(PID", 1)[1].split(")", 1)[0].strip() if "(PID" in str(exc) else "unknown"
        console.print(
            f"[red]another process (PID {holder}) holds the warehouse {path}[/red]: wait for it to finish and run "
            "again, or set DAGSTER_HOME (as `make` does) so that runs share one Dagster instance, whose duckdb pool "
            "queues them one after another"
        )
        raise typer.Exit(2) from None


def partition_range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """The run tags that make a run of the partitioned job cover the as-of dates from start to end."""
    return {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}


def _failed_checks(result) -> list:
    """The asset check evaluations of a finished run that did not pass."""
    import dagster as dg

    return [
        e.event_specific_data for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not e.event_specific_data.passed
    ]  # fmt: skip


def _run_summary(result, elapsed: float) -> str:
    """Assets materialised and asset checks passed or failed in a finished run."""
    import dagster as dg

    checks = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = sorted({c.check_name for c in _failed_checks(result)})
    line = (
        f"nightly_analysis succeeded in {elapsed:.1f} s (run {result.run_id}): "
        f"{len(result.get_asset_materialization_events())} assets materialised, "
        f"{len(checks) - len(failed)} of {len(checks)} asset checks passed"
    )
    return line + (f"; [red]failed checks: {', '.join(failed)}[/red]" if failed else "")


def _report_frames():
    """The results, decisions and health histories with what the reports show beside them; a clear error without."""
    from pipelines.reports import NoResultsError, read_report_frames

    path = export_warehouse_path()
    if not path.exists():
        console.print(f"[red]no warehouse at {path}[/red]: run `verdict simulate` and `verdict run` first")
        raise typer.Exit(1)
    try:
        with connect(path, read_only=True) as con:
            return read_report_frames(con)
    except NoResultsError as exc:
        console.print(f"[red]no results to report in {path}[/red] ({exc}): run `verdict run` first")
        raise typer.Exit(1) from None


@app.command("list")
def list_experiments() -> None:
    """List every experiment with results (status, days running, latest look, recommendation, health) and the
    program view across them."""
    from pipelines.reports.terminal import index_table, program_table

    frames = _report_frames()
    console.print(index_table(frames))
    console.print(program_table(frames))


@app.command()
def results(
    experiment_id: Annotated[str | None, typer.Argument(metavar="[EXPERIMENT]", help="Show this experiment only.")] = None,
    experiment: Annotated[str | None, typer.Option(help="Show one experiment only (as the argument).")] = None,
) -> None:
    """Print the latest look of every experiment (or one): the recommendation and why, the health checks, and each
    metric's absolute and relative effect with its interval, level, p-value and outcome in words."""
    from pipelines.reports.terminal import experiment_view

    frames = _report_frames()
    wanted = experiment_id or experiment
    if wanted is not None and wanted not in frames.experiment_ids:
        known = ", ".join(frames.experiment_ids) or "none yet"
        console.print(f"[red]no results for experiment {wanted!r}[/red]: the experiments with results are {known}")
        raise typer.Exit(1)
    for shown in [wanted] if wanted is not None else frames.experiment_ids:
        console.print(experiment_view(frames, shown))
        console.print()


@app.command()
def report(
    experiment: Annotated[str | None, typer.Argument(help="Write this experiment's report only (and the index).")] = None,
) -> None:
    """Write the HTML reports: one page per experiment and the index with the program view, into reports/ (or
    $VERDICT_REPORTS_DIR), with the plotly.js they share; they open with no network."""
    from pipelines.reports import UnknownExperimentError, reports_dir, write_reports

    frames = _report_frames()
    try:
        written = write_reports(frames, reports_dir(), experiment)
    except UnknownExperimentError as exc:
        known = ", ".join(exc.known) or "none yet"
        console.print(f"[red]no results for experiment {exc.experiment_id!r}[/red]; the experiments with results are: {known}")
        raise typer.Exit(2) from None
    for page in written:
        print(page)


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="Number of simulated users.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Simulate a warehouse, run the nightly analysis and print the results."""
    simulate(units=units, seed=seed, end_date=dt.datetime(2026, 11, 21), history_days=28)
    run(date=None, log_level="warning")
    results(experiment=None)


BASELINES_QUERY = """
-- A ratio's baseline is sum / den_sum, and its per-unit variance the delta method's var(value - R x den) / mean(den)^2;
-- a mean's sums are of value - value_shift.
select
    metric_id,
    case when analysis_type = 'ratio' then sum / den_sum else value_shift + sum / n end as baseline_mean,
    case analysis_type
        when 'proportion' then null
        when 'ratio' then (sum_sq - 2 * (sum / den_sum) * value_den_cross_sum + (sum / den_sum) ^ 2 * den_sum_sq)
            / (n - 1) / (den_sum / n) ^ 2
        else (sum_sq - sum * sum / n) / (n - 1)
    end as baseline_variance
from marts.metric_sufficient_stats
where experiment_id = ? and is_control and n > 1
qualify as_of_date = max(as_of_date) over ()
"""

DAILY_TRAFFIC_QUERY = """
select sum(exposed_units) filter (where as_of_date = latest) / count(distinct as_of_date) as units_per_day
from (select *, max(as_of_date) over () as latest from marts.exposure_daily_counts where experiment_id = ?)
"""


@app.command()
def plan(
    experiment: Annotated[str | None, typer.Option(help="Plan an experiment from its spec and the warehouse's baselines.")] = None,
    baseline: Annotated[float | None, typer.Option(help="Control mean (a proportion unless --sd is given).")] = None,
    sd: Annotated[float | None, typer.Option(help="Per-unit standard deviation of a mean metric.")] = None,
    mde: Annotated[float, typer.Option(help="Minimum detectable effect, relative (0.02 = 2%).")] = 0.02,
    alpha: Annotated[float, typer.Option(help="Family-wise significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Wanted power.")] = 0.8,
    treatments: Annotated[int, typer.Option(help="Treatment groups besides the control.")] = 1,
    success_metrics: Annotated[int, typer.Option(help="Success metrics of the experiment (alpha is split over them).")] = 1,
    guardrails: Annotated[int, typer.Option(help="Guardrail metrics (raise the power each test needs).")] = 0,
    daily_units: Annotated[float | None, typer.Option(help="Units entering per day, all groups together.")] = None,
    sequential: Annotated[SequentialMethod, typer.Option(help="The design's sequential method.")] = SequentialMethod.NONE,
    looks: Annotated[int | None, typer.Option(min=1, help="Daily looks of a group-sequential design (default 28).")] = None,
) -> None:
    """How many units and days an experiment needs under its design: per metric, and for the whole decision (the
    largest)."""
    from pipelines.planning import SequentialDesign, experiment_metrics_frame, plan_metrics

    if experiment is not None:
        specs = _specs(resolved=True)
        spec = next((s for s in specs if s.id == experiment), None)
        if spec is None:
            known = ", ".join(sorted(s.id for s in specs)) or "none"
            console.print(f"[red]no experiment {experiment!r} in {current_project().experiments_dir}[/red] (its experiments: {known})")
            raise typer.Exit(2)
        path = export_warehouse_path()
        if not _has_tables(path, "marts", "metric_sufficient_stats", "exposure_daily_counts"):
            console.print(f"[red]no data for {experiment!r} in {path} yet[/red]: run `verdict run` first, or plan with --baseline (and --sd)")
            raise typer.Exit(1)
        with connect(path, read_only=True) as con:
            baselines = read_frame(con, BASELINES_QUERY, [experiment])
            [(observed_daily_units,)] = con.sql(DAILY_TRAFFIC_QUERY, params=[experiment]).fetchall()
        if baselines.is_empty():
            console.print(f"[red]no control data for {experiment!r} in the warehouse yet[/red]: give --baseline instead")
            raise typer.Exit(1)
        metrics = experiment_metrics_frame(spec, baselines)
        daily_units = daily_units or observed_daily_units
        alpha, power, treatments, correction = spec.alpha, spec.power, len(spec.treatments), spec.correction.value
        design = SequentialDesign.of(spec)
    else:
        if baseline is None:
            console.print("[red]give --experiment, or --baseline (and --sd for a mean metric)[/red]")
            raise typer.Exit(2)
        roles = [role for role, count in (("success", success_metrics), ("guardrail", guardrails)) if count]
        metrics = pl.DataFrame(
            {"metric_id": [f"a {role} metric" for role in roles], "role": roles, "mde": [mde] * len(roles),
             "preferred_direction": ["increase"] * len(roles), "baseline_mean": [baseline] * len(roles),
             "baseline_variance": [None if sd is None else sd * sd] * len(roles)},
            schema_overrides={"baseline_variance": pl.Float64},
        )  # fmt: skip
        correction = "risk_aware"
        design = SequentialDesign(sequential.value, **({"looks": looks} if looks else {}))
    counts = {} if experiment else {"success_metrics": success_metrics, "guardrail_metrics": guardrails}
    table = plan_metrics(metrics, alpha=alpha, power=power, treatments=treatments, correction=correction,
                         daily_units=daily_units, design=design, **counts)  # fmt: skip
    method = {"none": "fixed horizon", "group_sequential": f"group-sequential, {design.looks} looks",
              "confidence_sequence": "confidence sequence"}[design.method]  # fmt: skip
    _print_plan(table, f"{experiment or 'planned metric'} ({method})", daily_units)


def _print_plan(plan: pl.DataFrame, title: str, daily_units: float | None) -> None:
    from pipelines.reports.pages import number

    table = Table(title=f"Sample size for {title}", title_justify="left")
    for column in ("metric", "role", "baseline", "sd", "MDE / margin", "units per group", "units in total", "days"):
        table.add_column(column, justify="left" if column in ("metric", "role") else "right")
    for r in plan.iter_rows(named=True):
        units = "-" if r["total_units"] is None else f"{r['total_units']:,.0f}"
        per_group = "-" if r["units_per_group"] is None else f"{r['units_per_group']:,.0f}"
        table.add_row(r["metric_id"], r["role"], number(r["baseline_mean"]), number(r["baseline_sd"]),
                      "-" if r["mde"] is None else f"{r['mde']:.1%}", per_group, units,
                      "-" if r["days"] is None else f"{r['days']:.0f}")  # fmt: skip
    console.print(table)
    needed = plan["total_units"].max()
    if needed is not None:
        days = "" if not daily_units else f", {math.ceil(needed / daily_units)} days at {daily_units:,.0f} units a day"
        console.print(f"the decision needs every planned metric powered: [bold]{needed:,.0f} units[/bold]{days}")


@app.command()
def metrics() -> None:
    """List the metric catalogue: every metric model of the project with its settings, and every problem of it at once
    (exit code 1 when there is one)."""
    from pipelines.project import metric_problems

    manifest = _manifest()
    problems = metric_problems()
    descriptions = {n["name"]: n.get("description", "") for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    uses: dict[str, list[str]] = {}
    for spec in _specs():
        for use in spec.metrics:
            uses.setdefault(use.metric, []).append(f"{spec.id} ({use.role.value})")
    table = Table(title=f"Metrics ({current_project().metrics_dir})", title_justify="left")
    for column in ("metric", "type", "aggregation", "window", "settings", "used by", "description"):
        table.add_column(column)
    for name, settings in sorted(metric_catalogue(manifest).items()):
        table.add_row(
            name + (" [red](invalid)[/red]" if name in problems else ""), str(settings.get("type", "?")),
            str(settings.get("aggregation", "default")), _window(settings), _settings(settings),
            ", ".join(uses.get(name, [])) or "-", descriptions.get(name, ""),
        )  # fmt: skip
    console.print(table)
    if problems:
        console.print(f"[red]{len(problems)} invalid metric{'s' if len(problems) > 1 else ''}[/red] (left out of the nightly build, with the experiments that use them):")
        for problem in problems.values():
            console.print(f"  - {problem}")
        raise typer.Exit(1)


def _window(settings: dict) -> str:
    """A metric's window in words: cumulative, or days N..M after exposure."""
    days, offset = settings.get("window_days"), settings.get("window_offset_days") or 0
    return "cumulative" if days is None else f"days {offset}-{offset + days} after exposure"


def _settings(settings: dict) -> str:
    """The other settings of a metric as key=value (winsorization, threshold, nulls, defaults)."""
    shown = {k: v for k, v in settings.items() if k not in ("type", "aggregation", "window_days", "window_offset_days")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "-"


RAW_TABLES = ("assignments", "units", "events")


@app.command()
def spark(
    raw_from_warehouse: Annotated[bool, typer.Option(
        "--raw-from-warehouse",
        help="First copy the raw tables from the project's DuckDB warehouse to Spark (the demo's simulated rows).",
    )] = False,
) -> None:
    """Build the project's dbt models on Apache Spark (profiles.yml target `spark`) and compute every look's results
    from Spark's sufficient statistics (Spark table main.experiment_results)."""
    try:
        from pipelines import spark as on_spark
    except ImportError as exc:
        console.print(f"[red]Spark is not installed ({exc.name})[/red]: pip install -e '.[spark]' (and a Java 17 runtime)")
        raise typer.Exit(2) from None
    from pipelines.assets.registry import registry_tables
    from pipelines.project import prepare_manifest

    project = current_project()
    prepare_manifest()  # the metric catalogue the specs resolve against
    warehouse, database = on_spark.spark_warehouse(), warehouse_path()
    started = time.perf_counter()
    console.print(f"Spark ({os.environ.get(on_spark.SPARK_MASTER_ENV, 'local[2]')}), tables in {warehouse}")
    session = on_spark.spark_session(warehouse)
    if raw_from_warehouse:
        if not _has_tables(database, "raw", *RAW_TABLES):
            console.print(f"[red]no raw tables in {database}[/red]: run `verdict simulate` first")
            raise typer.Exit(2)
        copied = on_spark.copy_from_duckdb(database, session)
        console.print("raw rows copied from DuckDB: " + ", ".join(f"{t} {n:,}" for t, n in copied.items()))
    missing = [t for t in RAW_TABLES if not session.catalog.tableExists(f"{on_spark.RAW_SCHEMA}.{t}")]
    if missing:
        console.print(
            f"[red]Spark has no table {', '.join(on_spark.RAW_SCHEMA + '.' + t for t in missing)}[/red]: create them "
            "under Verdict's column names (README: Run on Spark), or copy the DuckDB warehouse's with --raw-from-warehouse"
        )  # fmt: skip
        raise typer.Exit(2)
    _, errors, frames = registry_tables(project.experiments_dir)
    for error in errors:
        console.print(f"[yellow]left out of the run:[/yellow] {error}")
    on_spark.write_registry(session, frames)
    console.print(f"registry written: {frames['experiments'].height} experiments; dbt build on Spark ...")
    failed = on_spark.build_models(project)
    if failed:
        for node in failed:
            console.print(f"[red]{node['status']}[/red] {node['name']}: {node['message']}")
        raise typer.Exit(1)
    results = on_spark.spark_results(session)
    on_spark.write_table(session, results, on_spark.RESULTS_TABLE)
    looks = results.select("experiment_id", "as_of_date").unique()
    console.print(
        f"{on_spark.RESULTS_TABLE}: {results.height:,} rows, {looks['experiment_id'].n_unique()} experiments, "
        f"{looks.height} looks, in {time.perf_counter() - started:.0f} s"
    )


bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
validate_app = typer.Typer(help="Calibration of the statistics by simulation.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(validate_app, name="validate")


@bench_app.command("stats")
def bench_stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    repeats: Annotated[int, typer.Option(help="Runs per case; the best is reported.")] = 5,
) -> None:
    """Time the engine on generated comparisons: 10k and 1M z-tests with Bonferroni, and sequential looks."""
    import json

    from pipelines.benchmark import bench_stats as run_bench

    figures = run_bench(repeats)
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title="verdict bench stats (best of runs, seconds)")
    table.add_column("case")
    table.add_column("seconds", justify="right")
    for case, seconds in figures.items():
        table.add_row(case, f"{seconds:.4f}")
    console.print(table)


@bench_app.command("build")
def bench_build(
    units: Annotated[int, typer.Option(help="Simulated users.")] = 60_000,
    new_days: Annotated[int, typer.Option(help="Days of logged rows the incremental run receives.")] = 1,
    top: Annotated[int, typer.Option(help="Slowest models to show.")] = 8,
) -> None:
    """Time the dbt models on a simulated warehouse: the history, the nightly incremental run, a full refresh."""
    import tempfile

    from pipelines.benchmark import bench_build as run_bench
    from pipelines.project import prepare_manifest

    prepare_manifest()  # the registry asset reads the metric catalogue from the manifest, absent on a fresh clone
    with tempfile.TemporaryDirectory() as workdir:
        figures = run_bench(units, Path(workdir), new_days)
    slowest = sorted(figures["full refresh (all)"], key=figures["full refresh (all)"].get, reverse=True)[: top + 1]
    table = Table(title=f"verdict bench build: {units:,} users, {new_days} new day(s) (seconds)")
    table.add_column("model")
    for run in figures:
        table.add_column(run, justify="right")
    for model in slowest:
        table.add_row(model, *(f"{times.get(model, 0.0):.2f}" for times in figures.values()))
    console.print(table)


@bench_app.command("nightly")
def bench_nightly(
    units: Annotated[int, typer.Option(help="Simulated users.")] = 10_000_000,
    experiments: Annotated[int, typer.Option(help="Generated experiments.")] = 20,
    metrics: Annotated[int, typer.Option(help="Metrics of the demo's catalogue to use (at most 10).", min=1, max=10)] = 10,
    activity: Annotated[float, typer.Option(help="Scale of each user's daily activity (1.0: the demo's, ~50 events per user a month).")] = 0.2,
    traffic: Annotated[float, typer.Option(help="Share of the users each experiment enrols.", min=0.0, max=1.0)] = 0.1,
    memory_limit: Annotated[str | None, typer.Option(help="DuckDB's memory limit per process (default $VERDICT_DUCKDB_MEMORY_LIMIT or 6GB).")] = None,
    workdir: Annotated[Path | None, typer.Option(file_okay=False, help="Keep the project and warehouse here (default: a temporary folder).")] = None,
) -> None:
    """Time a night at scale: the floor (one look in one DuckDB query from the raw tables), the full nightly DAG on 30
    days, the night that adds a new day, the engine on every comparison, and the peak memory; ends with one JSON line."""
    import json
    import tempfile

    from pipelines.benchmark import bench_nightly as run_bench

    with tempfile.TemporaryDirectory() as scratch:
        figures = run_bench(workdir or Path(scratch), units=units, experiments=experiments, metrics=metrics,
                            activity=activity, traffic=traffic, memory_limit=memory_limit)  # fmt: skip
    table = Table(title=f"verdict bench nightly: {units:,} users, {figures['events']:,} events, {experiments} experiments, {metrics} metrics")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, key in (("simulate the warehouse", "generate_s"), ("floor: one look in one query", "bare_s"),
                      ("full nightly DAG (30 days)", "full_s"), ("night of one new day", "incremental_s"),
                      ("statistics engine, all comparisons", "stats_s")):  # fmt: skip
        table.add_row(step, f"{figures[key]:.1f}")
    console.print(table)
    for run in ("full", "incremental"):
        build = figures[f"{run}_build"]
        console.print(f"{run} night: dbt build {build['dbt_s']:.1f} s (models {build['models_s']:.1f} s, tests {build['tests_s']:.1f} s summed over threads); slowest: "
                      + ", ".join(f"{m} {s:.1f} s" for m, s in figures[f"{run}_models"].items()))  # fmt: skip
    console.print(
        f"full / floor {figures['full_over_bare']:.2f} (target <= 2), new day / full {figures['incremental_over_full']:.2f}"
        f" (target <= 0.2), peak memory {figures['peak_rss_gib']:.2f} GiB (target <= 8)"
    )
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


@validate_app.command("aa")
def validate_aa(
    runs: Annotated[int, typer.Option(help="Simulated experiments per scenario and design.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    alpha: Annotated[float, typer.Option(help="Significance level of the simulated designs.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Simulate experiments through the nightly path (results, then decisions) for each sequential method; report
    the error rates and power with their intervals, against what the design promises."""
    import json

    from pipelines.calibration import BAND, report_rows
    from pipelines.calibration import validate_aa as run_validation

    if runs < 10:
        raise typer.BadParameter("need at least 10 runs", param_hint="--runs")
    if not 0 < alpha < 0.5:
        raise typer.BadParameter("alpha must lie in (0, 0.5)", param_hint="--alpha")
    report = run_validation(runs, seed, alpha)
    if as_json:
        print(json.dumps(report))
        return
    designs = Table(title=f"Designs (risk-aware, one-sided, CUPED; {report['looks']} daily looks; units over both arms)")
    for column in ("method", "sequential", "judged at", "units", "planned units", "tuning", "adjusted power"):
        designs.add_column(column, justify="left" if column in ("method", "sequential", "judged at") else "right")
    for method, design in report["designs"].items():
        designs.add_row(
            method, design["sequential_method"], design["judged"], f"{design['units']:,}",
            "-" if design["planned_units"] is None else f"{design['planned_units']:,}",
            "-" if design["sequential_tuning"] is None else f"{design['sequential_tuning']:,.0f}",
            f"{design['adjusted_power']:.3f}",
        )  # fmt: skip
    console.print(designs)
    rule = {"equal": "=", "at_most": "<=", "at_least": ">=", "informative": "vs"}
    table = Table(title=f"verdict validate aa: {runs:,} experiments per row, seed {seed}, alpha {alpha}")
    for column in ("check", "method", "rate", "95% interval", "nominal", f"{BAND:.1%} band", "verdict"):
        table.add_column(column, justify="left" if column in ("check", "method", "verdict") else "right")
    for row in report_rows(report):
        lower, upper = row["ci95"]
        band_lower, band_upper = row["band"]
        table.add_row(
            row["check"], row["method"], f"{row['rate']:.4f}", f"[{lower:.4f}, {upper:.4f}]",
            f"{rule[row['rule']]} {row['nominal']:.3f}", f"[{band_lower:.4f}, {band_upper:.4f}]", row["verdict"],
        )  # fmt: skip
    console.print(table)


def main() -> None:
    """Entry point for `python -m pipelines.cli`."""
    sys.exit(app())


if __name__ == "__main__":
    main()

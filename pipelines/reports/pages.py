"""Render the reports: one HTML page per experiment and the index with the program view, from jinja2 templates and
Plotly figures, into the reports folder with the plotly.js bundle written once beside them."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from plotly.offline import get_plotlyjs

from pipelines.reports import figures, outcomes
from pipelines.reports.frames import ReportFrames
from pipelines.verdict_project import REPO_ROOT

REPORTS_ENV = "VERDICT_REPORTS_DIR"
PLOTLY_BUNDLE = "plotly.min.js"
INDEX = "index.html"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
DECISION_LABELS = {"ship": "Ship", "continue": "Continue", "end": "End", "abort": "Abort", "waiting_for_data": "Waiting"}
DECISION_MEANINGS = {
    "ship": "roll it out: it is better on a success metric and every guardrail is shown non-inferior",
    "continue": "keep it running: the evidence is not yet enough to decide",
    "end": "stop it: it had the units to detect the effect it was designed for, and found none",
    "abort": "stop it now: it harms a metric, or a failed health check means its data cannot be trusted",
    "waiting_for_data": "no unit is exposed yet: the experiment waits for its first exposures",
}  # fmt: skip


class UnknownExperimentError(Exception):
    """An experiment id the warehouse has no results for; `known` lists the ones it has."""

    def __init__(self, experiment_id: str, known: list[str]) -> None:
        super().__init__(f"no results for experiment {experiment_id!r}")
        self.experiment_id, self.known = experiment_id, known


def reports_dir() -> Path:
    """Where reports go: $VERDICT_REPORTS_DIR, else reports/ at the repository's root."""
    configured = os.environ.get(REPORTS_ENV)
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / "reports"


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a signed percentage; unbounded sides as ±∞."""
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value * 100:+.{digits}f}%"


def number(value: float | None, digits: int = 4) -> str:
    """A number to `digits` significant figures; unbounded sides as ±∞."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def level(value: float | None) -> str:
    """An interval's level in words, e.g. 95%."""
    return "n/a" if value is None else f"{value * 100:.4g}%"


def p_value(value: float | None) -> str:
    """A p-value to two significant figures."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.2g}"


def environment() -> Environment:
    """The templates, HTML-escaped, with the report's number formats as filters."""
    env = Environment(
        loader=PackageLoader("pipelines.reports", "templates"), autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    env.filters.update(percent=percent, number=number, level=level, p_value=p_value)
    env.globals.update(
        decision_labels=DECISION_LABELS, decision_meanings=DECISION_MEANINGS, outcome_colours=outcomes.OUTCOME_COLOURS,
        plotly_bundle=PLOTLY_BUNDLE, index=INDEX,
    )  # fmt: skip
    return env


def page_name(experiment_id: str) -> str:
    """The file name of an experiment's report (an id that is not a safe file name is refused)."""
    if not SAFE_NAME.fullmatch(experiment_id):
        raise ValueError(f"{experiment_id!r} is not a safe file name for a report")
    return f"{experiment_id}.html"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def experiment_context(frames: ReportFrames, experiment_id: str) -> dict[str, object]:
    """Everything one experiment's page shows: `frames` holds that experiment's rows."""
    results = outcomes.with_report_columns(frames.results, frames.spec_metrics)
    rows = outcomes.metric_rows(results)
    progress = outcomes.sample_size_progress(results)
    exposures = outcomes.new_exposures(frames.exposures)
    segments = outcomes.latest(frames.segments).sort(["dimension", "segment", "metric_id", "treatment"])
    metric_ids = rows.unique("metric_id", maintain_order=True).get_column("metric_id").to_list()
    days = outcomes.latest(frames.exposure_days)
    day_charts = {
        metric: figures.figure_html(
            figures.exposure_day_figure(days.filter(pl.col("metric_id") == metric), metric), f"days-{_slug(metric)}"
        )
        for metric in metric_ids if days.filter(pl.col("metric_id") == metric).height
    }  # fmt: skip
    charts = {
        metric: figures.figure_html(
            figures.estimate_figure(results.filter(pl.col("metric_id") == metric), metric), f"estimate-{_slug(metric)}"
        )
        for metric in metric_ids
    }
    experiment = frames.experiments.to_dicts()[0] if frames.experiments.height else {"experiment_id": experiment_id}
    as_of = rows.get_column("as_of_date").max()
    return {
        "experiment": experiment,
        "experiment_id": experiment_id,
        "as_of": as_of,
        "spotlight": outcomes.spotlight(frames.decisions).to_dicts(),
        "health": outcomes.health_rows(frames.health).to_dicts(),
        "exposure_chart": figures.figure_html(figures.exposure_figure(exposures), "exposures") if exposures.height else None,
        "metrics": rows.to_dicts(),
        "effect_chart": figures.figure_html(figures.effect_figure(rows), "effects") if rows.height else None,
        "estimate_charts": charts,
        "exposure_day_charts": day_charts,
        "progress": progress.to_dicts(),
        "progress_chart": figures.figure_html(figures.progress_figure(progress), "progress") if progress.height else None,
        "segments": segments.to_dicts(),
        "lineage": outcomes.lineage(frames.results, frames.decisions, frames.health).to_dicts(),
        "design": outcomes.SEQUENTIAL_NAMES.get(str(experiment.get("sequential_method")), experiment.get("sequential_method")),
    }


def index_context(frames: ReportFrames) -> dict[str, object]:
    """The index: every experiment with results, and the program view across them."""
    results = outcomes.with_report_columns(frames.results, frames.spec_metrics)
    program = outcomes.program_view(results, frames.decisions, frames.experiments)
    rows = outcomes.experiment_index(frames.results, frames.decisions, frames.health, frames.experiments)
    spotlight = outcomes.spotlight(frames.decisions)
    return {
        "experiments": rows.with_columns(page=pl.col("experiment_id") + ".html").to_dicts(),
        "spotlight": {e: spotlight.filter(pl.col("experiment_id") == e).to_dicts() for e in frames.experiment_ids},
        "program": program,
        "moved": program["moved_metrics"].head(10).to_dicts(),
        "decisions_chart": figures.figure_html(figures.decisions_figure(program["decision_counts"]), "decisions")
        if program["decision_counts"] else None,
    }  # fmt: skip


def experiment_page(frames: ReportFrames, experiment_id: str) -> str:
    """One experiment's report as HTML."""
    return environment().get_template("experiment.html").render(**experiment_context(frames.of(experiment_id), experiment_id))


def index_page(frames: ReportFrames) -> str:
    """The index with the program view as HTML."""
    return environment().get_template("index.html").render(**index_context(frames))


def write_plotly_bundle(directory: Path) -> Path:
    """plotly.js, from the plotly package, beside the pages (rewritten only when it differs)."""
    path = directory / PLOTLY_BUNDLE
    bundle = get_plotlyjs()
    if not path.exists() or path.read_text(encoding="utf-8") != bundle:
        path.write_text(bundle, encoding="utf-8")
    return path


def write_reports(frames: ReportFrames, directory: Path | None = None, experiment_id: str | None = None) -> list[Path]:
    """Write every experiment's report (or only `experiment_id`'s) and the index; the paths written, pages first.
    UnknownExperimentError for an id without results."""
    known = frames.experiment_ids
    if experiment_id is not None and experiment_id not in known:
        raise UnknownExperimentError(experiment_id, known)
    target = directory or reports_dir()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for experiment in [experiment_id] if experiment_id else known:
        path = target / page_name(experiment)
        path.write_text(experiment_page(frames, experiment), encoding="utf-8")
        written.append(path)
    index = target / INDEX
    index.write_text(index_page(frames), encoding="utf-8")
    return [*written, index, write_plotly_bundle(target)]


def write_no_results_index(note: str, directory: Path | None = None) -> list[Path]:
    """The index of a warehouse without results yet: the note says why (e.g. NoResultsError's message). Pages
    written before are left as they are; the paths written, the index first."""
    target = directory or reports_dir()
    target.mkdir(parents=True, exist_ok=True)
    index = target / INDEX
    index.write_text(environment().get_template("no_results.html").render(note=note), encoding="utf-8")
    return [index, write_plotly_bundle(target)]

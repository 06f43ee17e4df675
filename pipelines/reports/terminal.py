"""The reports in the terminal: the index and one experiment's latest look as rich tables, from the same frames and
outcomes as the HTML pages. Every outcome is written out in words, so the tables read the same without colour."""

from __future__ import annotations

import polars as pl
from rich.console import Group
from rich.table import Table
from rich.text import Text

from pipelines.reports import outcomes
from pipelines.reports.frames import ReportFrames
from pipelines.reports.pages import DECISION_LABELS, DECISION_MEANINGS, level, number, p_value, percent

DECISION_STYLES = {"ship": "bold green", "abort": "bold red", "end": "bold yellow", "continue": "bold", "waiting_for_data": "dim"}
HEALTH_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "not_applicable": "dim"}
OUTCOME_STYLES = {outcomes.BETTER: "green", outcomes.WORSE: "bold red", outcomes.NON_INFERIOR: "blue",
                  outcomes.INCONCLUSIVE: "dim"}  # fmt: skip


def _styled(text: str, style: str | None) -> Text:
    return Text(text, style=style or "")


def _interval(lower: str, upper: str) -> str:
    return f"[{lower}, {upper}]"


def short_test() -> pl.Expr:
    """The test in a few words: the statistic and its side, e.g. `z, one-sided >` (the hypothesis is the role's)."""
    statistic = pl.when(pl.col("method") == "t").then(pl.lit("Welch t")).otherwise(pl.lit("z"))
    side = (
        pl.when(pl.col("alternative") == "greater").then(pl.lit("one-sided >"))
        .when(pl.col("alternative") == "less").then(pl.lit("one-sided <"))
        .otherwise(pl.lit("two-sided"))
    )  # fmt: skip
    return pl.format("{}, {}", statistic, side)


def index_table(frames: ReportFrames) -> Table:
    """Every experiment with results: status, days running, latest look, recommendation per treatment, health."""
    rows = outcomes.experiment_index(frames.results, frames.decisions, frames.health, frames.experiments)
    table = Table(title="Experiments", title_justify="left")
    for column in ("experiment", "status", "days", "latest look", "recommendation", "health"):
        table.add_column(column, justify="right" if column == "days" else "left")
    for r in rows.iter_rows(named=True):
        decisions = r["decisions"] or []
        style = next((DECISION_STYLES[d] for d in ("abort", "ship", "end") if d in decisions), None)
        health = r["health"] or "no checks"
        detail = f" ({r['health_checks']})" if r["health"] in ("fail", "warn") else ""
        table.add_row(
            r["experiment_id"], r["status"], str(r["days_running"] or ""), str(r["latest_look"]),
            _styled(r["recommendation"] or "none", style), _styled(health + detail, HEALTH_STYLES.get(health)),
        )  # fmt: skip
    return table


def program_table(frames: ReportFrames) -> Table:
    """The program view: recommendations by kind, experiments that learned something, time to a decision and the
    metrics most often moved."""
    results = outcomes.with_report_columns(frames.results, frames.spec_metrics)
    program = outcomes.program_view(results, frames.decisions, frames.experiments)
    table = Table(title="Program", title_justify="left", show_header=False)
    table.add_column("measure")
    table.add_column("value")
    counts = program["decision_counts"]
    table.add_row("treatments by recommendation", ", ".join(f"{DECISION_LABELS.get(d, d)} {counts[d]}" for d in sorted(counts)))
    share = program["learned_share"]
    table.add_row(
        "experiments with learning",
        f"{program['learned']} of {program['experiments']}" + (f" ({share:.0%})" if share is not None else "")
        + ": a success metric significant either way, or a deterioration",
    )  # fmt: skip
    days = program["median_days_to_decision"]
    table.add_row("median days to a decision", "none decided yet" if days is None else f"{days:g} ({program['decided_treatments']} treatments)")
    moved = program["moved_metrics"].head(5)
    table.add_row("metrics most often moved", ", ".join(
        f"{r['metric_id']} ({r['better']} better, {r['worse']} worse)" for r in moved.iter_rows(named=True)
    ) or "none")  # fmt: skip
    return table


def spotlight_table(frames: ReportFrames) -> Table:
    """The latest look's recommendation per treatment, what it means and why."""
    table = Table(title="Recommendation", title_justify="left")
    for column in ("treatment", "recommendation", "since", "why"):
        table.add_column(column)
    for r in outcomes.spotlight(frames.decisions).iter_rows(named=True):
        label = DECISION_LABELS.get(r["decision"], r["decision"]).upper()
        table.add_row(
            r["treatment"], _styled(label, DECISION_STYLES.get(r["decision"])), str(r["since"]),
            f"{DECISION_MEANINGS.get(r['decision'], '')}. {r['reason']}",
        )  # fmt: skip
    return table


def health_table(frames: ReportFrames) -> Table:
    """The latest look's health checks, failed first, with their figures."""
    table = Table(title="Health checks", title_justify="left")
    for column in ("check", "status", "figures"):
        table.add_column(column)
    for r in outcomes.health_rows(frames.health).iter_rows(named=True):
        table.add_row(r["check_name"], _styled(r["status"], HEALTH_STYLES.get(r["status"])), r["detail"] or "")
    return table


def metrics_table(frames: ReportFrames) -> Table:
    """The latest look's comparisons: units, means, the absolute and relative effect with their intervals and
    levels, the p-value, the test and the outcome in the metric's preferred direction."""
    results = outcomes.with_report_columns(frames.results, frames.spec_metrics)
    rows = outcomes.metric_rows(results).with_columns(short_test=short_test())
    table = Table(title="Metrics", title_justify="left")
    for column in ("metric", "role", "treatment", "units", "mean", "difference", "relative", "level", "p-value",
                   "test", "outcome"):  # fmt: skip
        wraps = column in ("mean", "difference", "relative", "test")  # the others never lose a character
        table.add_column(column, justify="right" if column in ("units", "level", "p-value") else "left", no_wrap=not wraps)
    for r in rows.iter_rows(named=True):
        table.add_row(
            r["metric_id"], r["role"] or "", r["treatment"], f"{r['n_control'] or 0:,} / {r['n_treatment'] or 0:,}",
            f"{number(r['mean_control'], 3)} -> {number(r['mean_treatment'], 3)}",
            f"{number(r['estimate'], 3)} {_interval(number(r['ci_lower'], 3), number(r['ci_upper'], 3))}",
            f"{percent(r['relative_estimate'])} {_interval(percent(r['relative_ci_lower']), percent(r['relative_ci_upper']))}",
            level(r["ci_level"]), p_value(r["p_value"]), r["short_test"],
            _styled(r["outcome"], OUTCOME_STYLES.get(r["outcome"])),
        )  # fmt: skip
    table.caption = (
        "units and mean: control / treatment. difference and relative: treatment minus control, with the metric's "
        "own interval at the level shown (before correction). test: a success metric's superiority, a guardrail's "
        "non-inferiority against its margin, a deterioration check, on the side shown. outcome: after correction and "
        "sequential adjustment, in the metric's preferred direction (better, worse, non-inferior, inconclusive)."
    )
    return table


def experiment_view(frames: ReportFrames, experiment_id: str) -> Group:
    """One experiment's latest look: title line, recommendation, health checks, metrics."""
    mine = frames.of(experiment_id)
    as_of = mine.results.get_column("as_of_date").max()
    first = mine.results.filter(pl.col("as_of_date") == as_of).row(0, named=True)
    design = outcomes.SEQUENTIAL_NAMES.get(first["sequential_method"], first["sequential_method"])
    title = Text.assemble(
        (experiment_id, "bold"),
        f"  as of {as_of}, against {first['control']}; {design} design, {first['correction']} correction, "
        f"alpha {first['alpha']:g}",
    )  # fmt: skip
    return Group(title, spotlight_table(mine), health_table(mine), metrics_table(mine))

"""HTML reports rendered from a real warehouse (the simulated one after the nightly job): a page per experiment with
its spotlight, health, metric rows and one chart per metric, an index with the program view, all offline."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.reports import read_report_frames, write_reports
from pipelines.reports.outcomes import program_view, with_report_columns
from pipelines.warehouse import connect, read_frame

pytestmark = pytest.mark.e2e

LATEST = "qualify as_of_date = max(as_of_date) over (partition by experiment_id)"
SCRIPT_SOURCES = re.compile(r"<script[^>]*\ssrc=[\"']?([^\"' >]+)", re.IGNORECASE)


@pytest.fixture(scope="module")
def con(nightly_run) -> duckdb.DuckDBPyConnection:
    database, _ = nightly_run
    connection = connect(database, read_only=True)  # the configuration the CLI opens it with, in the same process
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def reports(con, tmp_path_factory) -> tuple[Path, list[Path]]:
    """Every report written from the warehouse into a fresh folder."""
    directory = tmp_path_factory.mktemp("reports")
    return directory, write_reports(read_report_frames(con), directory)


def latest(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return read_frame(con, f"select * from main.{table} {LATEST}")


def experiment_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.sql("select distinct experiment_id from main.experiment_results order by 1").fetchall()]


def page(directory: Path, experiment_id: str) -> str:
    return (directory / f"{experiment_id}.html").read_text(encoding="utf-8")


def test_a_page_per_experiment_an_index_and_one_plotly_bundle(con, reports):
    directory, written = reports
    expected = {f"{e}.html" for e in experiment_ids(con)} | {"index.html", "plotly.min.js"}
    assert {p.name for p in written} == expected
    assert {p.name for p in directory.iterdir()} == expected
    assert (directory / "plotly.min.js").stat().st_size > 1_000_000  # the whole library, not a stub


def test_the_spotlight_shows_each_treatments_latest_recommendation_and_reason(con, reports):
    directory, _ = reports
    decisions = latest(con, "experiment_decisions")
    assert decisions.height > 0
    for row in decisions.iter_rows(named=True):
        html = page(directory, row["experiment_id"])
        assert 'id="spotlight"' in html
        assert f'data-treatment="{row["treatment"]}" data-decision="{row["decision"]}"' in html
        assert row["reason"] in html


def test_the_metrics_table_has_a_row_per_comparison_with_its_outcome(con, reports):
    directory, _ = reports
    results = latest(con, "experiment_results")
    for experiment_id in experiment_ids(con):
        rows = results.filter(pl.col("experiment_id") == experiment_id)
        html = page(directory, experiment_id)
        assert html.count('class="metric-row"') == rows.height
        for r in rows.iter_rows(named=True):
            assert f'data-metric="{r["metric_id"]}" data-treatment="{r["treatment"]}"' in html
    # the outcome reads the tests' flags in the metric's preferred direction
    outcomes = {
        "worse": results.filter(pl.col("is_deteriorating")),
        "non-inferior": results.filter((pl.col("role") == "guardrail") & pl.col("is_significant_preferred") & ~pl.col("is_deteriorating")),
        "better": results.filter((pl.col("role") == "success") & pl.col("is_significant_preferred") & ~pl.col("is_deteriorating")),
    }  # fmt: skip
    assert all(frame.height for frame in outcomes.values()), "the demo has a gain, a loss and a non-inferior guardrail"
    for name, frame in outcomes.items():
        for r in frame.iter_rows(named=True):
            row = f'data-metric="{r["metric_id"]}" data-treatment="{r["treatment"]}" data-outcome="{name}"'
            assert row in page(directory, r["experiment_id"])


def test_one_estimate_chart_per_metric_and_every_chart_is_plotly(con, reports):
    directory, _ = reports
    results = latest(con, "experiment_results")
    days = latest(con, "experiment_exposure_day_results")
    for experiment_id in experiment_ids(con):
        html = page(directory, experiment_id)
        metrics = results.filter(pl.col("experiment_id") == experiment_id).get_column("metric_id").unique().to_list()
        by_day = days.filter(pl.col("experiment_id") == experiment_id).get_column("metric_id").unique().to_list()
        charts = re.findall(r'data-chart="estimate" data-metric="([^"]+)"', html)
        assert sorted(charts) == sorted(metrics)
        assert html.count("Plotly.newPlot(") == html.count('class="chart"') >= len(metrics) + 1  # + the effect bars
        assert len(re.findall(r'data-chart="exposure-days" data-metric="([^"]+)"', html)) == len(by_day)
        assert "<svg" not in html  # Plotly draws the charts in the browser
    assert days.height > 0


def test_no_page_loads_a_script_from_the_network(reports):
    directory, _ = reports
    for html_page in directory.glob("*.html"):
        html = html_page.read_text(encoding="utf-8")
        assert SCRIPT_SOURCES.findall(html) == ["plotly.min.js"], html_page.name
        assert not re.search(r"https?://", html), html_page.name


def test_failed_health_checks_come_first_with_their_figures(con, reports):
    directory, _ = reports
    health = latest(con, "experiment_health")
    failing = health.filter(pl.col("status") == "fail")
    assert failing.height, "the demo plants a sample ratio mismatch"
    for experiment_id in failing.get_column("experiment_id").unique():
        html = page(directory, experiment_id)
        statuses = re.findall(r'class="health-row" data-status="([a-z_]+)"', html)
        assert len(statuses) == health.filter(pl.col("experiment_id") == experiment_id).height
        assert statuses[0] == "fail"
        for detail in failing.filter(pl.col("experiment_id") == experiment_id).get_column("detail"):
            assert detail in html


def test_sample_size_segments_and_lineage_are_shown(con, reports):
    directory, _ = reports
    results = latest(con, "experiment_results")
    for experiment_id in experiment_ids(con):
        html = page(directory, experiment_id)
        rows = results.filter(pl.col("experiment_id") == experiment_id)
        assert html.count('class="progress-row"') == rows.filter(pl.col("required_sample_size").is_not_null()).height
        assert "Segments (exploratory)" in html
        for run_id in rows.get_column("run_id").unique():
            assert run_id in html
        assert str(rows.get_column("data_watermark").max()) in html
    segments = latest(con, "experiment_segment_results")
    for experiment_id in segments.get_column("experiment_id").unique():
        count = segments.filter(pl.col("experiment_id") == experiment_id).height
        assert page(directory, experiment_id).count('class="segment-row"') == count


def test_the_index_lists_every_experiment_and_the_program_view(con, reports):
    directory, _ = reports
    html = (directory / "index.html").read_text(encoding="utf-8")
    for experiment_id in experiment_ids(con):
        assert f'data-experiment="{experiment_id}"' in html
        assert f'href="{experiment_id}.html"' in html
    frames = read_report_frames(con)
    program = program_view(with_report_columns(frames.results, frames.spec_metrics), frames.decisions, frames.experiments)
    decisions = latest(con, "experiment_decisions")
    assert program["decision_counts"] == dict(decisions.group_by("decision").len().iter_rows())
    assert program["experiments"] == len(experiment_ids(con))
    assert 0 < program["learned"] <= program["experiments"]
    assert program["median_days_to_decision"] >= 1
    assert 'id="program"' in html and "Metrics most often moved" in html
    for metric in program["moved_metrics"].get_column("metric_id"):
        assert f"<td>{metric}</td>" in html


def test_verdict_report_writes_the_pages_and_prints_their_paths(nightly_run, tmp_path):
    database, _ = nightly_run
    target = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["report", "playlist_recs"], env={"VERDICT_WAREHOUSE": str(database), "VERDICT_REPORTS_DIR": str(target)}
    )
    assert result.exit_code == 0, result.output
    printed = [Path(line) for line in result.output.split()]
    assert [p.name for p in printed] == ["playlist_recs.html", "index.html", "plotly.min.js"]
    assert all(p.parent == target and p.exists() for p in printed)


def test_verdict_report_names_the_known_experiments_for_an_unknown_id(con, nightly_run, tmp_path):
    database, _ = nightly_run
    result = CliRunner().invoke(
        app, ["report", "no_such_experiment"], env={"VERDICT_WAREHOUSE": str(database), "VERDICT_REPORTS_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "no results for experiment 'no_such_experiment'" in result.output
    assert all(e in result.output for e in experiment_ids(con))
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_verdict_report_without_results_says_to_run_first(tmp_path):
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = CliRunner().invoke(app, ["report"], env={"VERDICT_WAREHOUSE": str(empty), "VERDICT_REPORTS_DIR": str(tmp_path / "out")})
    assert result.exit_code == 1
    assert "no results to report" in result.output and "verdict run" in result.output
    assert not (tmp_path / "out").exists()


def test_sample_size_progress_without_a_size_or_traffic_has_no_expected_date() -> None:
    """A look whose required size is NaN (no variance yet) is left out; no new units a day gives no expected date."""
    import datetime as dt

    from pipelines.reports.outcomes import sample_size_progress

    day = dt.date(2026, 11, 1)
    rows = pl.DataFrame({
        "experiment_id": ["e"] * 4, "metric_id": ["m", "m", "nan", "nan"], "treatment": ["t"] * 4,
        "role": ["success"] * 4, "role_order": [0] * 4, "as_of_date": [day, day + dt.timedelta(days=1)] * 2,
        "units": [100, 100, 100, 150], "required_sample_size": [1000.0, 1000.0, float("nan"), float("nan")],
        "is_powered": [False] * 4,
    })  # fmt: skip
    progress = sample_size_progress(rows)
    assert progress["metric_id"].to_list() == ["m"]
    assert progress["units_per_day"].to_list() == [0.0] and progress["expected_date"].to_list() == [None]
    assert progress["progress"].to_list() == [0.1]

"""The reports in a real browser: the index and an experiment's page, rendered from the nightly run's warehouse, open
in headless Chromium (the system's, see `make install`) with the network cut off; every Plotly chart draws, the
tables are there, the page logs no console error, and screenshots of each page are kept in tests/artifacts/
(`VERDICT_UPDATE_SCREENSHOTS=1` also copies the first screen of each into docs/screenshots/, the README's pictures)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.reports import read_report_frames, write_reports
from pipelines.warehouse import connect, read_frame

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path(__file__).parent / "artifacts" / "screenshots"
EXPERIMENT = "checkout_redesign"  # three arms, a gain and a harmed guardrail: every part of the page has rows
VIEWPORT = {"width": 1280, "height": 900}
LATEST = "qualify as_of_date = max(as_of_date) over (partition by experiment_id)"
CHART_TIMEOUT_MS = 30_000
TOP_HEIGHT = 1500  # `<name>-top.png`: the page's first 1500 pixels, what a reader sees first (the README's pictures)
DOCS_SCREENSHOTS = Path(__file__).parents[1] / "docs" / "screenshots"
UPDATE_DOCS_ENV = "VERDICT_UPDATE_SCREENSHOTS"  # set to 1: the run also refreshes docs/screenshots/


def chromium_executable() -> str:
    """The system Chromium; a clear failure (never a skip) when it or Playwright is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium not found on PATH: `make install` installs it (apt-get install chromium)", pytrace=False)
    return path


@dataclass
class Rendered:
    """A page as the browser drew it: its console errors, uncaught exceptions, blocked requests and screenshot."""

    name: str
    counts: dict[str, int]
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    screenshot: Path | None = None


COUNTS = """() => ({
  plots: document.querySelectorAll('.js-plotly-plot').length,
  drawn: [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('svg.main-svg .trace')).length,
  charts: document.querySelectorAll('.chart').length,
  estimate_charts: document.querySelectorAll('[data-chart="estimate"] .js-plotly-plot').length,
  exposure_day_charts: document.querySelectorAll('[data-chart="exposure-days"] .js-plotly-plot').length,
  tables: document.querySelectorAll('table').length,
  experiment_rows: document.querySelectorAll('tr.experiment-row').length,
  moved_rows: document.querySelectorAll('tr.moved-row').length,
  spotlight_rows: document.querySelectorAll('#spotlight [data-decision]').length,
  health_rows: document.querySelectorAll('tr.health-row').length,
  metric_rows: document.querySelectorAll('tr.metric-row').length,
  progress_rows: document.querySelectorAll('tr.progress-row').length,
  segment_rows: document.querySelectorAll('tr.segment-row').length,
})"""


def render(pages: dict[str, Path], screenshots: Path, expected_plots: dict[str, int]) -> dict[str, Rendered]:
    """Open each page in headless Chromium with every non-file request blocked, wait until `expected_plots` Plotly
    charts have drawn their traces, count what it shows and save a full-page screenshot `<name>.png` into `screenshots`."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: `make install` installs the test extra", pytrace=False)
    screenshots.mkdir(parents=True, exist_ok=True)
    rendered = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            for name, path in pages.items():
                page = context.new_page()
                result = Rendered(name, {})
                page.on("console", lambda m, r=result: r.errors.append(f"console: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e, r=result: r.errors.append(f"uncaught: {e}"))
                page.route("**/*", lambda route, r=result: route.continue_() if route.request.url.startswith("file:")
                           else (r.blocked.append(route.request.url), route.abort()))  # fmt: skip
                page.goto(path.resolve().as_uri(), wait_until="load")
                page.wait_for_function(
                    "n => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.trace')).length >= n",
                    arg=expected_plots[name], timeout=CHART_TIMEOUT_MS,
                )  # fmt: skip
                result.counts = page.evaluate(COUNTS)
                result.screenshot = screenshots / f"{name}.png"
                page.screenshot(path=str(result.screenshot), full_page=True)
                height = min(TOP_HEIGHT, page.evaluate("document.documentElement.scrollHeight"))
                clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
                page.screenshot(path=str(screenshots / f"{name}-top.png"), full_page=True, clip=clip)
                page.close()
                rendered[name] = result
        finally:
            browser.close()
    return rendered


def expected_experiment_plots(con: duckdb.DuckDBPyConnection, experiment_id: str) -> int:
    """The charts an experiment's page should draw, from the warehouse: the estimate over time per metric, the effect
    bars, the daily exposures (when the exposure counts have rows), sample-size progress (when a comparison has a
    minimum detectable effect) and the effect by days since exposure per metric that has it."""
    latest = read_frame(con, f"select * from main.experiment_results {LATEST}").filter(pl.col("experiment_id") == experiment_id)
    exposures = con.execute("select count(*) from marts.exposure_daily_counts where experiment_id = ?", [experiment_id]).fetchall()[0][0]
    sized = latest.filter(pl.col("required_sample_size").is_not_null()).height
    [(by_day,)] = con.execute(
        "select count(distinct metric_id) from main.experiment_exposure_day_results where experiment_id = ?", [experiment_id]
    ).fetchall()  # fmt: skip
    return latest.get_column("metric_id").n_unique() + 1 + (exposures > 0) + (sized > 0) + by_day


@pytest.fixture(scope="module")
def warehouse(nightly_run) -> duckdb.DuckDBPyConnection:
    database, _ = nightly_run
    con = connect(database, read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def rendered(warehouse, tmp_path_factory) -> dict[str, Rendered]:
    directory = tmp_path_factory.mktemp("browser_reports")
    write_reports(read_report_frames(warehouse), directory)
    expected = {"index": 1, EXPERIMENT: expected_experiment_plots(warehouse, EXPERIMENT)}
    pages = render({"index": directory / "index.html", EXPERIMENT: directory / f"{EXPERIMENT}.html"}, ARTIFACTS, expected)
    if os.environ.get(UPDATE_DOCS_ENV) == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in pages:
            shutil.copyfile(ARTIFACTS / f"{name}-top.png", DOCS_SCREENSHOTS / f"{name}.png")
    return pages


def test_every_chart_on_the_experiment_page_draws(warehouse, rendered):
    counts = rendered[EXPERIMENT].counts
    metrics = read_frame(warehouse, f"select * from main.experiment_results {LATEST}").filter(
        pl.col("experiment_id") == EXPERIMENT
    ).get_column("metric_id").n_unique()
    assert counts["plots"] == counts["drawn"] == counts["charts"] == expected_experiment_plots(warehouse, EXPERIMENT)
    assert counts["estimate_charts"] == metrics
    [(by_day,)] = warehouse.execute(
        "select count(distinct metric_id) from main.experiment_exposure_day_results where experiment_id = ?", [EXPERIMENT]
    ).fetchall()  # fmt: skip
    assert counts["exposure_day_charts"] == by_day > 0


def test_the_experiment_pages_tables_have_a_row_per_warehouse_row(warehouse, rendered):
    counts = rendered[EXPERIMENT].counts
    latest = {
        table: read_frame(warehouse, f"select * from main.{table} {LATEST}").filter(pl.col("experiment_id") == EXPERIMENT)
        for table in ("experiment_results", "experiment_decisions", "experiment_health", "experiment_segment_results")
    }
    assert counts["spotlight_rows"] == latest["experiment_decisions"].height == 2  # compact and upsell
    assert counts["health_rows"] == latest["experiment_health"].height > 0
    assert counts["metric_rows"] == latest["experiment_results"].height > 0
    assert counts["progress_rows"] == latest["experiment_results"].filter(pl.col("required_sample_size").is_not_null()).height
    assert counts["segment_rows"] == latest["experiment_segment_results"].height > 0
    assert counts["tables"] >= 5  # health, metrics, sample size, segments, lineage


def test_the_index_draws_its_chart_and_lists_every_experiment(warehouse, rendered):
    counts = rendered["index"].counts
    experiments = warehouse.sql("select count(distinct experiment_id) from main.experiment_results").fetchall()[0][0]
    assert counts["plots"] == counts["drawn"] == counts["charts"] == 1  # the recommendations across the program
    assert counts["experiment_rows"] == experiments == 4
    assert counts["moved_rows"] > 0 and counts["tables"] == 2


def test_no_page_logs_an_error_or_asks_for_the_network(rendered):
    for page in rendered.values():
        assert page.errors == [], page.name
        assert page.blocked == [], page.name


def test_a_screenshot_of_each_page_is_kept(rendered):
    for page in rendered.values():
        assert page.screenshot.parent == ARTIFACTS
        for shot in (page.screenshot, page.screenshot.with_name(f"{page.name}-top.png")):
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, shot

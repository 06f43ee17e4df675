"""The nightly job writes the HTML reports as the `experiment_reports` asset, whose metadata shows the spotlight of
every experiment's latest look, links to the index and counts the pages; without results it writes a note."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import duckdb
import pytest

from conftest import reports_dir
from pipelines.reports.pages import REPORTS_ENV
from pipelines.resources import WarehouseResource
from pipelines.warehouse import connect, read_frame

pytestmark = pytest.mark.e2e

REPORTS = dg.AssetKey("experiment_reports")


def materialization(result: dg.ExecuteInProcessResult) -> dg.AssetMaterialization:
    events = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    found = [m for m in events if m.asset_key == REPORTS]
    assert len(found) == 1, [m.asset_key for m in events]
    return found[0]


def test_the_reports_asset_is_in_the_nightly_job_after_results_decisions_and_health(manifest):
    from pipelines.definitions import build_defs

    defs = build_defs()
    job = defs.resolve_job_def("nightly_analysis")
    assert REPORTS in job.asset_layer.selected_asset_keys
    parents = defs.resolve_asset_graph().get(REPORTS).parent_keys
    assert {dg.AssetKey(k) for k in ("experiment_results", "experiment_decisions", "experiment_health")} <= parents


def test_the_nightly_run_writes_the_reports_and_tells_the_story_in_its_metadata(nightly_run):
    database, result = nightly_run
    assert result.success
    metadata = materialization(result).metadata
    directory = reports_dir(database)

    index = Path(metadata["index"].value)
    assert index == directory / "index.html" and index.is_file()
    assert Path(unquote(urlparse(metadata["index_url"].value).path)) == index
    html_pages = sorted(directory.glob("*.html"))
    with connect(database, read_only=True) as con:
        experiments = [r[0] for r in con.sql("select distinct experiment_id from main.experiment_results order by 1").fetchall()]
        decisions = read_frame(
            con, "select * from main.experiment_decisions qualify as_of_date = max(as_of_date) over (partition by experiment_id)"
        )
    assert [p.stem for p in html_pages] == sorted([*experiments, "index"])
    assert metadata["pages"].value == len(html_pages) == len(experiments) + 1
    assert metadata["experiments"].value == len(experiments) == 4
    assert (directory / "plotly.min.js").stat().st_size > 1_000_000
    for experiment_id in experiments:
        page = Path(unquote(urlparse(metadata[f"report[{experiment_id}]"].value).path))
        assert page == directory / f"{experiment_id}.html" and page.is_file()

    # the spotlight: one Markdown row per treatment's latest recommendation, with its look and reason
    spotlight = metadata["spotlight"]
    assert isinstance(spotlight, dg.MarkdownMetadataValue)
    rows = [line for line in spotlight.value.splitlines() if line.startswith("| ") and not line.startswith("| experiment ")]
    assert len(rows) == decisions.height > 0
    for r in decisions.iter_rows(named=True):
        assert any(
            re.match(rf"\| {r['experiment_id']} \| {r['as_of_date']} \| {r['treatment']} \| \*\*\w+\*\* \|", row)
            and r["reason"].replace("|", "\\|") in row
            for row in rows
        ), r


def test_without_results_the_asset_writes_the_index_with_a_note(tmp_path, monkeypatch):
    from pipelines.assets.reports import experiment_reports_asset

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    monkeypatch.setenv(REPORTS_ENV, str(tmp_path / "reports"))
    result = dg.materialize(
        [experiment_reports_asset], resources={"warehouse": WarehouseResource(path=str(empty))},
        instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert result.success
    metadata = materialization(result).metadata
    index = tmp_path / "reports" / "index.html"
    assert Path(metadata["index"].value) == index
    assert metadata["pages"].value == 1 and metadata["experiments"].value == 0
    html = index.read_text(encoding="utf-8")
    assert 'data-note="no-results"' in html and "no experiment_results" in html
    assert "no results yet" in metadata["spotlight"].value

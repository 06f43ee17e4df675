"""The reports asset: every experiment's HTML report and the index with the program view, written each night from
the results, decisions and health histories (pipelines/reports), into reports/ or $VERDICT_REPORTS_DIR.

Its metadata tells the night's story in the Dagster UI: the spotlight of every experiment's latest look (the
recommendation per treatment and its reason), a link to the index and to each experiment's page, and how many pages
were written. A warehouse without results yet does not fail the night: the index says why there is nothing to show.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.reports import NoResultsError, read_report_frames, reports_dir, write_no_results_index, write_reports
from pipelines.reports.outcomes import spotlight
from pipelines.reports.pages import DECISION_LABELS
from pipelines.resources import WarehouseResource

REPORTS = {"group_name": "reports", "kinds": {"duckdb", "html"}, "pool": "duckdb"}


def _cell(value: object) -> str:
    """A value for a Markdown table cell (a pipe would end the cell)."""
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def spotlight_markdown(latest: pl.DataFrame) -> str:
    """The spotlight of every experiment's latest look as a Markdown table for the Dagster UI."""
    rows = [
        "| experiment | latest look | treatment | recommendation | since | reason |",
        "|---|---|---|---|---|---|",
    ]
    for r in latest.iter_rows(named=True):
        label = DECISION_LABELS.get(r["decision"], r["decision"])
        cells = [r["experiment_id"], r["as_of_date"], r["treatment"], f"**{label}**", r["since"], r["reason"]]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


@dg.asset(
    name="experiment_reports",
    deps=[
        "experiment_results", "experiment_decisions", "experiment_health", "experiment_segment_results",
        "experiment_exposure_day_results",
    ],  # fmt: skip
    **REPORTS,
)
def experiment_reports_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The HTML reports (`reports/<experiment>.html` and `reports/index.html`, with the plotly.js they share): per
    experiment the spotlight, health checks, metrics, the estimate over time, sample-size progress, segments and
    lineage; the index lists every experiment with the program view. Written from every look in the history."""
    directory = reports_dir()
    with warehouse.connect(read_only=True) as con:
        try:
            frames = read_report_frames(con)
        except NoResultsError as exc:
            frames, note = None, f"The warehouse holds no results yet: {exc}."
    if frames is None:
        context.log.warning(f"no results to report; wrote the index with a note in {directory}")
        index = write_no_results_index(note, directory)[0]
        return dg.MaterializeResult(
            metadata={
                "spotlight": dg.MetadataValue.md(f"_{note}_"),
                "index": dg.MetadataValue.path(str(index)),
                "index_url": dg.MetadataValue.url(index.as_uri()),
                "pages": 1,
                "experiments": 0,
            }
        )
    written = write_reports(frames, directory)
    pages = [p for p in written if p.suffix == ".html"]
    index = next(p for p in pages if p.name == "index.html")
    latest = spotlight(frames.decisions)
    metadata = {
        "spotlight": dg.MetadataValue.md(spotlight_markdown(latest)),
        "index": dg.MetadataValue.path(str(index)),
        "index_url": dg.MetadataValue.url(index.as_uri()),
        "pages": len(pages),
        "experiments": len(frames.experiment_ids),
        "reports_dir": dg.MetadataValue.path(str(directory)),
        **{f"report[{p.stem}]": dg.MetadataValue.url(Path(p).as_uri()) for p in pages if p != index},
    }
    context.log.info(f"wrote {len(pages)} pages into {directory}")
    return dg.MaterializeResult(metadata=metadata)

"""HTML reports from the warehouse's results tables: one self-contained page per experiment and an index with the
program view, charts drawn with Plotly (its bundled JavaScript written once beside the pages, so they open offline)."""

from pipelines.reports.frames import NoResultsError, ReportFrames, read_report_frames
from pipelines.reports.pages import UnknownExperimentError, reports_dir, write_no_results_index, write_reports

__all__ = [
    "NoResultsError", "ReportFrames", "UnknownExperimentError", "read_report_frames", "reports_dir", "write_no_results_index",
    "write_reports",
]  # fmt: skip

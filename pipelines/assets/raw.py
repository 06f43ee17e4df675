"""The raw tables: written by the company's own pipelines (by `verdict simulate` in the demo), not by Dagster."""

import dagster as dg

raw_tables = [
    dg.AssetSpec(
        dg.AssetKey(["raw", table]),
        description=description,
        group_name="raw",
        kinds={"duckdb"},
    )
    for table, description in {
        "units": "Units with their dimensions.",
        "assignments": "Assignment log: which unit was served which variant, when.",
        "events": "Product events: sessions, streams, clicks, purchases.",
    }.items()
]

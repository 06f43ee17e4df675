"""Raw rows arriving day by day: hold back the rows logged from a day on, then let them arrive a few days at a time,
as a company's loaders append them to the raw tables between nightly runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

GROWING_TABLES = ("events", "assignments")
HELD_BACK = "arrivals"


def hold_back(con: duckdb.DuckDBPyConnection, since: dt.date) -> None:
    """Move the raw rows logged on or after `since` to schema `arrivals`, where they wait to arrive."""
    con.execute(f"create schema if not exists {HELD_BACK}")
    for table in GROWING_TABLES:
        con.execute(f"create or replace table {HELD_BACK}.{table} as select * from raw.{table} where logged_at >= ?",
                    [since])  # fmt: skip
        con.execute(f"delete from raw.{table} where logged_at >= ?", [since])


def arrive(con: duckdb.DuckDBPyConnection, days: Sequence[dt.date]) -> None:
    """Append the held-back rows logged on `days` to the raw tables."""
    for table in GROWING_TABLES:
        con.execute(f"insert into raw.{table} select * from {HELD_BACK}.{table} where cast(logged_at as date) in ?",
                    [list(days)])  # fmt: skip

"""The raw sources dbt reads, checked before a build: a missing table or column fails the run naming it, the
columns that are there, and where to fix it, instead of an error deep inside a dbt model or unit test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

SOURCES_FILE = "dbt_project/models/staging/_sources.yml"


def declared_sources(manifest: Mapping[str, Any], source_name: str = "raw") -> dict[tuple[str, str], list[str]]:
    """(schema, table) -> the documented columns of every table of a dbt source."""
    return {
        (node["schema"], node["identifier"]): list(node["columns"])
        for node in manifest["sources"].values()
        if node["source_name"] == source_name
    }


def warehouse_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str] | None:
    """The columns of schema.table (a table or a view), None when it does not exist."""
    rows = con.execute(
        "select column_name from duckdb_columns() where schema_name = ? and table_name = ? order by column_index",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows] or None


def source_problems(con: duckdb.DuckDBPyConnection, manifest: Mapping[str, Any]) -> list[str]:
    """One line per raw source table that is missing, or lacks a column dbt reads; empty when all are there."""
    problems = []
    for (schema, table), columns in declared_sources(manifest).items():
        present = warehouse_columns(con, schema, table)
        if present is None:
            problems.append(
                f"source table {schema}.{table} does not exist: load it (`verdict simulate` builds a demo "
                f"warehouse), or point the source `raw` at your table in {SOURCES_FILE}"
            )
            continue
        missing = [c for c in columns if c.lower() not in {p.lower() for p in present}]
        if missing:
            problems.append(
                f"source table {schema}.{table} has no column {', '.join(repr(c) for c in missing)} (its columns: "
                f"{', '.join(present)}): rename the column in the table, or select it under that name in a view "
                f"and point the source at the view in {SOURCES_FILE}"
            )
    return problems

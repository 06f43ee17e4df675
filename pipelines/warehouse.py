"""The DuckDB warehouse file: where it lives and how tables are written to it."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from pipelines.registry.spec import IDENTIFIER

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "verdict.duckdb"
WAREHOUSE_ENV = "VERDICT_WAREHOUSE"


def warehouse_path() -> Path:
    """The DuckDB file: $VERDICT_WAREHOUSE if set, else warehouse/verdict.duckdb in the repository."""
    configured = os.environ.get(WAREHOUSE_ENV)
    return Path(configured).expanduser().resolve() if configured else DEFAULT_WAREHOUSE


def export_warehouse_path() -> Path:
    """Resolve the warehouse path and put it in the environment, where dbt's profile reads it."""
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV] = str(path)
    return path


def connect(path: Path | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created if missing, unless read-only)."""
    target = path or warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(target), read_only=read_only)


def _quoted(schema: str, table: str) -> str:
    for part in (schema, table):
        if not IDENTIFIER.match(part):
            raise ValueError(f"{part!r} is not a safe identifier")
    return f'"{schema}"."{table}"'


def replace_table(con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame) -> None:
    """Create or replace schema.table with the frame's rows, atomically."""
    name = _quoted(schema, table)
    con.execute(f'create schema if not exists "{schema}"')
    con.register("_frame", frame.to_arrow())
    try:
        con.execute(f"create or replace table {name} as select * from _frame")
    finally:
        con.unregister("_frame")


def read_frame(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> pl.DataFrame:
    """Run a query and return its rows as a Polars frame."""
    return pl.from_arrow(con.sql(query, params=params).to_arrow_table())

"""The DuckDB warehouse file: where it lives and how tables are written to it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from pipelines.registry.spec import IDENTIFIER
from pipelines.verdict_project import current_project

WAREHOUSE_ENV = "VERDICT_WAREHOUSE"
# The memory DuckDB may use in each process that opens the warehouse (dbt's profile reads the same variable); past it,
# DuckDB spills to a temporary folder beside the file. Leaves room on a machine that runs dbt, Dagster and Python.
DUCKDB_MEMORY_ENV = "VERDICT_DUCKDB_MEMORY_LIMIT"
DEFAULT_DUCKDB_MEMORY = "6GB"


def warehouse_path() -> Path:
    """The DuckDB file: $VERDICT_WAREHOUSE if set, else the one the project's verdict.yml names."""
    configured = os.environ.get(WAREHOUSE_ENV)
    return Path(configured).expanduser().resolve() if configured else current_project().warehouse


def export_warehouse_path() -> Path:
    """Resolve the warehouse path and put it in the environment, where dbt's profile reads it."""
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV] = str(path)
    os.environ.setdefault(DUCKDB_MEMORY_ENV, DEFAULT_DUCKDB_MEMORY)
    return path


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit per process: $VERDICT_DUCKDB_MEMORY_LIMIT, else the default."""
    return os.environ.get(DUCKDB_MEMORY_ENV) or DEFAULT_DUCKDB_MEMORY


def connect(path: Path | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created if missing, unless read-only), in UTC whatever the machine's zone."""
    target = path or warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target), read_only=read_only, config={"memory_limit": duckdb_memory_limit()})
    con.execute("set TimeZone = 'UTC'")
    return con


def _quoted(schema: str, table: str) -> str:
    for part in (schema, table):
        if not IDENTIFIER.fullmatch(part):
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


LOOK = ("experiment_id", "as_of_date")


def replace_looks(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame, key: Sequence[str] = LOOK
) -> None:
    """Write looks into a history table in one transaction: the rows of every `key` value the frame has are
    replaced by the frame's, so rerunning a look never duplicates it, and a look the frame does not have is kept
    as it was (a look is never deleted without its replacement). The table is created on first use; a column the
    table lacks is added."""
    name = _quoted(schema, table)
    columns = ", ".join(f'"{c}"' for c in key if IDENTIFIER.fullmatch(c))
    if len(key) == 0 or columns.count(",") != len(key) - 1:
        raise ValueError(f"replace_looks: {key!r} are not safe key columns")
    con.execute(f'create schema if not exists "{schema}"')
    con.register("_frame", frame.to_arrow())
    try:
        con.execute("begin transaction")
        con.execute(f"create table if not exists {name} as select * from _frame where false")
        existing = {row[0] for row in con.sql(f"describe {name}").fetchall()}
        for column, column_type, *_ in con.sql("describe select * from _frame").fetchall():
            if column not in existing:
                con.execute(f'alter table {name} add column "{column}" {column_type}')
        con.execute(f"delete from {name} where ({columns}) in (select distinct ({columns}) from _frame)")
        con.execute(f"insert into {name} by name select * from _frame")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_frame")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether schema.table exists."""
    query = "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?"
    return con.sql(query, params=[schema, table]).fetchall()[0][0] > 0


def read_frame(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> pl.DataFrame:
    """Run a query and return its rows as a Polars frame."""
    return pl.from_arrow(con.sql(query, params=params).to_arrow_table())

"""Dagster resources: the DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines import warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file every asset reads and writes (one writer at a time, see the `duckdb` pool)."""

    path: str

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(Path(self.path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()

"""Synthetic warehouse: raw units, assignment logs, events and the planted truth, written to DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.registry.spec import ExperimentSpec
from pipelines.simulation.warehouse import build

__all__ = ["simulate"]


def simulate(
    database: Path | str,
    *,
    experiments: list[ExperimentSpec],
    units: int = 60_000,
    seed: int = 7,
    end_date: dt.date = dt.date(2026, 11, 21),
    history_days: int = 28,
) -> dict[str, int]:
    """(Re)write schema `raw` of a DuckDB file with `units` simulated users from end_date - history_days to
    end_date inclusive, for the given experiment designs; return row counts per raw table."""
    return build(database, experiments, units=units, seed=seed, end_date=end_date, history_days=history_days)

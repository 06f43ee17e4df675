"""Synthetic warehouse: raw units, assignment logs, events and the planted truth, written to DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.registry.spec import ExperimentSpec
from pipelines.simulation.scenario import plant_for
from pipelines.simulation.warehouse import Plants, build

__all__ = ["simulate"]


def simulate(
    database: Path | str,
    *,
    experiments: list[ExperimentSpec],
    units: int = 60_000,
    seed: int = 7,
    end_date: dt.date = dt.date(2026, 11, 21),
    history_days: int = 28,
    activity: float = 1.0,
    plants: Plants = plant_for,
) -> dict[str, int]:
    """(Re)write schema `raw` of a DuckDB file with `units` simulated users from end_date - history_days to
    end_date inclusive, for the given experiment designs; return row counts per raw table. `activity` scales how
    often a unit is active (the events per unit); `plants` maps an experiment id to its planted story."""
    return build(database, experiments, units=units, seed=seed, end_date=end_date, history_days=history_days,
                 activity=activity, plants=plants)  # fmt: skip

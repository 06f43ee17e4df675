"""Shared fixtures: the prepared dbt manifest and a simulated warehouse analysed by the real nightly job."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import partition_range_tags
from pipelines.project import prepare_manifest
from pipelines.registry.spec import load_specs
from pipelines.reports.pages import REPORTS_ENV
from pipelines.verdict_project import DEMO_EXPERIMENTS, DEMO_PROJECT
from pipelines.warehouse import WAREHOUSE_ENV

E2E_UNITS = 20_000
E2E_SEED = 7
E2E_LOOKS = (dt.date(2026, 11, 1), dt.date(2026, 11, 21))  # every look of the simulated data


def run_nightly(
    database: Path, start: dt.date, end: dt.date, experiments: Path | None = None
) -> dg.ExecuteInProcessResult:
    """The real nightly job in process on a warehouse file, for the looks from start to end, with the specs of
    `experiments` (default: the repository's); its reports go to `reports_dir(database)`. $VERDICT_WAREHOUSE and
    $VERDICT_REPORTS_DIR are restored afterwards."""
    from pipelines.definitions import build_defs

    run_config = {} if experiments is None else {
        "ops": {"experiment_registry": {"config": {"experiments_dir": str(experiments)}}}
    }  # fmt: skip
    previous = {name: os.environ.get(name) for name in (WAREHOUSE_ENV, REPORTS_ENV)}
    os.environ[WAREHOUSE_ENV] = str(database)
    os.environ[REPORTS_ENV] = str(reports_dir(database))
    try:
        return build_defs().resolve_job_def("nightly_analysis").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), run_config=run_config, raise_on_error=False,
            tags=partition_range_tags(start, end),
        )  # fmt: skip
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reports_dir(database: Path) -> Path:
    """Where the nightly job run on a test warehouse writes its reports: beside the warehouse file."""
    return database.parent / "reports"


@pytest.fixture(scope="session", autouse=True)
def reports_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Reports that a test's run writes (`verdict run` in a subprocess too) go to a temporary folder, not reports/."""
    previous = os.environ.get(REPORTS_ENV)
    os.environ.setdefault(REPORTS_ENV, str(tmp_path_factory.mktemp("reports")))
    yield
    if previous is None:
        os.environ.pop(REPORTS_ENV, None)


@pytest.fixture(scope="session")
def manifest() -> Path:
    """dbt's manifest, parsed once per session (the definitions need it before they load)."""
    return prepare_manifest()


@pytest.fixture(scope="session")
def nightly_run(tmp_path_factory: pytest.TempPathFactory, manifest: Path) -> Iterator[tuple[Path, dg.ExecuteInProcessResult]]:
    """A simulated warehouse (20,000 units) after one in-process run of the nightly job."""
    from pipelines.simulation import simulate

    database = tmp_path_factory.mktemp("warehouse") / "verdict.duckdb"
    simulate(database, experiments=load_specs(DEMO_EXPERIMENTS), units=E2E_UNITS, seed=E2E_SEED)
    yield database, run_nightly(database, *E2E_LOOKS)


def copy_demo_project(destination: Path) -> Path:
    """A copy of the demo project (verdict.yml, experiments/, metrics/) to edit as a team edits its own."""
    shutil.copytree(DEMO_PROJECT, destination, ignore=shutil.ignore_patterns("warehouse", ".verdict"))
    return destination

"""The build state: a change to the dbt project, the registry or the broken metric models makes the next build a
full refresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.build_state import Build, fingerprint, forget_build, needs_full_refresh, record_build
from pipelines.project import DBT_PROJECT_DIR


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the dbt project folder dbt runs in (Verdict's models and the demo project's metrics)."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return copy


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("create schema registry; create table registry.experiments as select 'exp_a' as experiment_id")
    return connection


def test_a_recorded_build_with_nothing_changed_is_incremental(project, con):
    current = fingerprint(con, project)
    assert needs_full_refresh(con, current)  # nothing recorded yet
    record_build(con, Build(current), full_refresh=True)
    assert not needs_full_refresh(con, fingerprint(con, project))


@pytest.mark.parametrize(
    "change",
    [
        lambda project, con: (project / "models" / "staging" / "stg_units.sql").write_text("select 1 as unit_id"),
        lambda project, con: (project / "macros" / "new_macro.sql").write_text("{% macro m() %}1{% endmacro %}"),
        lambda project, con: (project / "dbt_project.yml").write_text(
            (project / "dbt_project.yml").read_text().replace("late_arrival_days: 3", "late_arrival_days: 5")
        ),
        lambda project, con: con.execute("insert into registry.experiments values ('exp_b')"),
    ],
    ids=["model", "macro", "var", "registry"],
)
def test_a_change_besides_raw_data_makes_the_next_build_a_full_refresh(project, con, change):
    record_build(con, Build(fingerprint(con, project)), full_refresh=False)
    change(project, con)
    assert needs_full_refresh(con, fingerprint(con, project))


def test_a_change_in_the_broken_metrics_makes_the_measurements_a_full_refresh(project, con):
    current = fingerprint(con, project)
    record_build(con, Build(current, ("purchases",)), full_refresh=False)
    assert not needs_full_refresh(con, current)  # the models before the measurements do not depend on it
    assert not needs_full_refresh(con, current, ["purchases"])
    assert needs_full_refresh(con, current, [])  # purchases is back: its measurements are rebuilt


def test_rewritten_raw_data_forgets_the_build(project, con):
    record_build(con, Build(fingerprint(con, project)), full_refresh=False)
    forget_build(con)
    assert needs_full_refresh(con, fingerprint(con, project))



@pytest.mark.parametrize("part", ["metrics/purchases.sql", "verdict.yml"])
def test_a_change_in_the_verdict_project_makes_the_next_build_a_full_refresh(project, con, part):
    """The team's metric models and source mapping count as much as Verdict's own models."""
    record_build(con, Build(fingerprint(con, project)), full_refresh=False)
    (project / part).write_text((project / part).read_text() + "\n# edited\n".replace("#", "--" if part.endswith(".sql") else "#"))
    assert needs_full_refresh(con, fingerprint(con, project))

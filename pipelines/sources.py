"""The project's sources, checked before a build: a mapped table, file or column that is not there fails the run
naming the verdict.yml key to fix and the columns that are there, instead of an error deep inside a dbt model."""

from __future__ import annotations

import duckdb

from pipelines.verdict_project import CONFIG_FILE, DEMO_PROJECT, RAW_SOURCES, SourceTable, VerdictProject, relation_sql


def relation_columns(con: duckdb.DuckDBPyConnection, sql: str) -> list[str] | None:
    """The columns of a relation (a table, a view or a file reader), None when it cannot be read."""
    try:
        return [row[0] for row in con.execute(f"describe select * from {sql}").fetchall()]
    except duckdb.Error:
        return None


def mapped_sources(project: VerdictProject) -> dict[str, SourceTable]:
    """verdict.yml key (sources.assignments, sources.facts.outcomes, ...) -> the source it maps."""
    sources = project.config.sources
    found = {f"sources.{name}": getattr(sources, name) for name in RAW_SOURCES if getattr(sources, name) is not None}
    return found | {f"sources.facts.{name}": fact for name, fact in sources.facts.items()}


def _where(source: SourceTable) -> str:
    return f"table {source.table}" if source.table else f"file {source.file}"


def source_problems(con: duckdb.DuckDBPyConnection, project: VerdictProject) -> list[str]:
    """One line per mapped source that cannot be read or lacks a mapped column; empty when all are there."""
    config = project.root / CONFIG_FILE
    problems = []
    for key, source in mapped_sources(project).items():
        present = relation_columns(con, relation_sql(project, source))
        if present is None:
            fix = (
                "load it, or point the key at the table or view that holds it" if source.table
                else "check the path (relative to the project folder)"
            ) + (" (`verdict simulate` builds the demo's warehouse)" if project.root == DEMO_PROJECT else "")
            problems.append(f"{config}: {key}: {_where(source)} does not exist: {fix}")
            continue
        wanted = {column: found for column, found in source.mapped().items() if found is not None}
        missing = {column: found for column, found in wanted.items() if found.lower() not in map(str.lower, present)}
        for column, found in missing.items():
            problems.append(
                f"{config}: {key}.columns.{column}: {_where(source)} has no column {found!r} (its columns: "
                f"{', '.join(present)}): set {key}.columns.{column} to the column that holds the {column}"
            )
    return problems

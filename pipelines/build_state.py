"""Whether the nightly dbt build may be incremental.

The incremental models keep rows computed by earlier runs, which are only right while everything besides the raw
data stays as it was: the dbt project (models, macros, tests, vars), the experiment registry, and the metric models
left out of the measurements as broken. A complete build records them; when they differ (or nothing is recorded),
the next build is a full refresh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.registry.tables import SCHEMA as REGISTRY_SCHEMA
from pipelines.verdict_project import VerdictProject, raw_source_sql
from pipelines.warehouse import table_exists

STATE_SCHEMA, STATE_TABLE = "main", "dbt_build_state"
# What can change what a model computes: Verdict's models and the Verdict project's metric models and source mapping.
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "tests", "verdict.yml", "metrics")


def project_files(project_dir: Path) -> list[Path]:
    """The files of the dbt project folder whose change can change what a model computes."""
    found: list[Path] = []
    for part in PROJECT_PARTS:
        path = project_dir / part
        found.extend([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()))
    return found


def registry_rows(con: duckdb.DuckDBPyConnection) -> Iterable[str]:
    """Every row of every registry table dbt reads, sorted, as text (the invalid specs' problems are not read)."""
    tables = con.execute(
        "select table_name from duckdb_tables() where schema_name = ? and table_name != 'invalid_specs'"
        " order by table_name",
        [REGISTRY_SCHEMA],
    ).fetchall()
    for (table,) in tables:
        yield f"table {table}"
        rows = con.execute(f'select * from "{REGISTRY_SCHEMA}"."{table}"').fetchall()
        yield from sorted(map(repr, rows))


def fingerprint(con: duckdb.DuckDBPyConnection, project_dir: Path) -> str:
    """SHA-256 of the dbt project's files and the registry tables."""
    digest = hashlib.sha256()
    for path in project_files(project_dir):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    for row in registry_rows(con):
        digest.update(row.encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Build:
    """What a complete build was made from: the project and registry fingerprint, and the broken metric models."""

    fingerprint: str
    broken_metrics: tuple[str, ...] = ()


def last_build(con: duckdb.DuckDBPyConnection) -> Build | None:
    """The last complete build (None before the first, or after the raw data was rewritten)."""
    if not table_exists(con, STATE_SCHEMA, STATE_TABLE):
        return None
    rows = con.execute(f"select fingerprint, broken_metrics from {STATE_SCHEMA}.{STATE_TABLE}").fetchall()
    return Build(rows[0][0], tuple(json.loads(rows[0][1]))) if rows else None


def needs_full_refresh(con: duckdb.DuckDBPyConnection, current: str, broken_metrics: Sequence[str] | None = None) -> bool:
    """A full refresh unless the last complete build had this fingerprint (and, when given, these broken metrics)."""
    last = last_build(con)
    if last is None or last.fingerprint != current:
        return True
    return broken_metrics is not None and last.broken_metrics != tuple(sorted(broken_metrics))


# Checked staging models and the raw table each reprocesses from its last logged day on (macros/incremental.sql).
CHECKED_TABLES = {"stg_events_checked": "events", "stg_assignments_checked": "assignments"}
BACKDATED_QUERY = """
with scope as (
    select max(cast(logged_at as date)) filter (where quarantine_reason is distinct from 'logged_in_future') as day
    from staging.{checked}
)
select
    (select count(*) from {raw} as raw, scope where cast({logged_at} as date) < scope.day)
    - (select count(*) from staging.{checked}, scope where cast(logged_at as date) < scope.day)
"""
# a raw logged_at in UTC, as staging reads it (macros/utc_timestamp.sql: a zone-less timestamp is UTC already)
RAW_LOGGED_AT = {"TIMESTAMP": "logged_at"}
CONVERTED_LOGGED_AT = "timezone('UTC', try_cast(logged_at as timestamptz))"


def unit_level_metrics(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The metrics the last build read without times (unit-level: one value per unit). Their values can change at
    any time (a day-7 retention filled in a week later), and an incremental build recomputes only recent days, so
    a build after one reads everything again."""
    if not table_exists(con, "intermediate", "int_metric_measurements"):
        return []
    query = "select distinct metric_id from intermediate.int_metric_measurements where measured_at is null order by 1"
    return [row[0] for row in con.execute(query).fetchall()]


def backdated_rows(con: duckdb.DuckDBPyConnection, project: VerdictProject) -> dict[str, int]:
    """Raw rows an incremental build would never read, per raw source: rows that reached the warehouse after the last
    build with a logged_at before its scope (they would be neither clean nor quarantined)."""
    found = {}
    for checked, raw in CHECKED_TABLES.items():
        if table_exists(con, "staging", checked) and getattr(project.config.sources, raw) is not None:
            relation = raw_source_sql(project, raw)
            types = dict(con.execute(f"select column_name, column_type from (describe select * from {relation})").fetchall())
            logged_at = RAW_LOGGED_AT.get(types.get("logged_at"), CONVERTED_LOGGED_AT)
            query = BACKDATED_QUERY.format(checked=checked, raw=relation, logged_at=logged_at)
            [(count,)] = con.execute(query).fetchall()
            if count:
                found[raw] = int(count)
    return found


def record_build(con: duckdb.DuckDBPyConnection, build: Build, *, full_refresh: bool) -> None:
    """Record a complete build: what it was made from, when, and whether it was a full refresh."""
    con.execute(
        f"create or replace table {STATE_SCHEMA}.{STATE_TABLE} as"
        " select ? as fingerprint, ? as broken_metrics, ? as built_at, ? as full_refresh",
        [build.fingerprint, json.dumps(sorted(build.broken_metrics)), dt.datetime.now(dt.UTC).replace(tzinfo=None),
         full_refresh],
    )  # fmt: skip


def forget_build(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the last complete build, so the next one is a full refresh (the raw data was rewritten, not
    appended to)."""
    con.execute(f"drop table if exists {STATE_SCHEMA}.{STATE_TABLE}")

"""The Verdict project: a team's folder of experiment specs, metric models and a `verdict.yml` that maps its
sources. Verdict's own SQL (staging, exposures, windows, marts) stays in dbt_project/; dbt runs in a folder that
links it together with the project's metric models. The demo is one such project, shipped in demo/, and the default.

    my_project/
      verdict.yml          the warehouse file, the first as-of date, the sources
      experiments/*.yml    one spec per experiment
      metrics/*.sql        one dbt model per metric, with its YAML entry (meta.metric) beside it
      .verdict/dbt/        written by Verdict: the dbt project folder (links) and dbt's target/ and logs/
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
VERDICT_DBT_DIR = REPO_ROOT / "dbt_project"  # Verdict's own dbt project: models, macros, tests
DEMO_PROJECT = REPO_ROOT / "demo"
PROJECT_TEMPLATE = REPO_ROOT / "project_template"  # what `verdict init` copies
DEMO_EXPERIMENTS = DEMO_PROJECT / "experiments"
PROJECT_ENV = "VERDICT_PROJECT"
CONFIG_FILE = "verdict.yml"
# The metric models' names, which dbt reads to order the models that read them all (macros/metric_catalogue.sql).
METRIC_MODELS_ENV = "VERDICT_METRIC_MODELS"
EVENT_TYPES_ENV = "VERDICT_EVENT_TYPES"  # the known event types of the events source (stg_events_checked)
HAS_UNITS_ENV = "VERDICT_HAS_UNITS"  # whether the project maps unit attributes (staging's relationships test)
TIMED_ASSIGNMENTS_ENV = "VERDICT_TIMED_ASSIGNMENTS"  # whether assignments have times (stg_assignments_checked)
UNIT_DIMENSIONS_ENV = "VERDICT_UNIT_DIMENSIONS"  # the units source's own dimensions (stg_units, int_unit_segments)


class ProjectError(ValueError):
    """A project folder or its verdict.yml that cannot be used; the message names the file, the field and the fix."""


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
FILE_READERS = {".parquet": "read_parquet", ".csv": "read_csv_auto"}


class SourceTable(BaseModel):
    """Where a source's rows are, read in place: a warehouse table or view, or a Parquet or CSV file."""

    model_config = ConfigDict(extra="forbid")
    # Verdict's column -> whether it must be there; `columns` maps Verdict's names to the source's where they differ.
    contract: ClassVar[dict[str, bool]] = {}

    table: str | None = Field(None, description="schema.table in the warehouse (a table or a view)")
    file: str | None = Field(None, description="a .parquet or .csv file, relative to the project folder")
    columns: dict[str, str | None] = Field(default_factory=dict, description="Verdict's column name: the source's")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None and not TABLE.fullmatch(value):
            raise ValueError(f"is {value!r}: write schema.table, e.g. analytics.assignment_log")
        return value

    @field_validator("file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        if value is not None and Path(value).suffix.lower() not in FILE_READERS:
            raise ValueError(f"is {value!r}: give a {' or '.join(FILE_READERS)} file")
        return value

    @model_validator(mode="after")
    def _where_and_columns(self):
        if (self.table is None) == (self.file is None):
            raise ValueError("give exactly one of table (schema.table) and file (a .parquet or .csv path)")
        unknown = sorted(set(self.columns) - set(self.contract)) if self.contract else []
        if unknown:
            raise ValueError(f"columns: {unknown} are not columns Verdict reads here; map only {sorted(self.contract)}")
        for column, required in self.contract.items():
            mapped = self.columns.get(column, column if required else None)
            if required and mapped is None and column not in self.constants():
                raise ValueError(f"columns.{column} is required: name the source's column that holds it")
            if mapped is not None and not NAME.fullmatch(mapped):
                raise ValueError(f"columns.{column} is {mapped!r}, not a column name")
        return self

    def constants(self) -> dict[str, str]:
        """Verdict's columns the config gives one value for, instead of a column."""
        return {}

    def mapped(self) -> dict[str, str | None]:
        """Verdict's column -> the source's column (None: the source does not have it, or a constant stands in)."""
        return {
            c: None if c in self.constants() else self.columns.get(c, c if required else None)
            for c, required in self.contract.items()
        }


class AssignmentsSource(SourceTable):
    """The assignment log: one row each time a unit is served a variant."""

    contract: ClassVar[dict[str, bool]] = {
        "experiment_id": True, "unit_id": True, "variant": True, "assigned_at": False, "logged_at": False,
    }  # fmt: skip
    experiment: str | None = Field(
        None, description="the experiment id of every row, for a log of one experiment (instead of columns.experiment_id)"
    )

    @field_validator("experiment")
    @classmethod
    def _experiment(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"is {value!r}: give the experiment's id (the name of its spec file)")
        return value

    def constants(self) -> dict[str, str]:
        return {"experiment_id": self.experiment} if self.experiment else {}

    @property
    def is_timed(self) -> bool:
        """Whether the log says when each unit was assigned (else every unit is exposed at its experiment's start)."""
        return self.mapped()["assigned_at"] is not None


class UnitsSource(SourceTable):
    """Unit attributes: one row per unit, the dimensions results can be broken down by."""

    contract: ClassVar[dict[str, bool]] = {"unit_id": True, "country": False, "platform": False, "signup_date": False}
    dimensions: list[str] = Field(
        default_factory=list, description="more of the table's columns that experiments can be broken down by"
    )

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        for name in value:
            if not NAME.fullmatch(name) or name.lower() != name:
                raise ValueError(f"{name!r} is not a lower-case column name")
            if name in cls.contract or name == "signup_cohort":
                raise ValueError(f"{name!r} is one of Verdict's unit columns: map it under columns instead")
        return value

    def mapped(self) -> dict[str, str | None]:
        """Verdict's unit columns, then the project's own dimensions under their names."""
        return super().mapped() | {dimension: dimension for dimension in self.dimensions}


class EventsSource(SourceTable):
    """An event log in Verdict's shape (the demo's): staged, deduplicated and checked by Verdict."""

    contract: ClassVar[dict[str, bool]] = {
        "event_id": True, "unit_id": True, "event_type": True, "occurred_at": True, "value": True, "logged_at": False,
    }  # fmt: skip
    event_types: list[str] = Field(
        default_factory=list, description="the event types the product logs; others are quarantined (empty: any)"
    )


class FactSource(SourceTable):
    """A fact table the metric models read as source('facts', name), with its own columns."""


class SourcesConfig(BaseModel):
    """What Verdict reads, mapped in place."""

    model_config = ConfigDict(extra="forbid")

    assignments: AssignmentsSource
    units: UnitsSource | None = None
    events: EventsSource | None = None
    facts: dict[str, FactSource] = Field(default_factory=dict)

    @field_validator("facts")
    @classmethod
    def _fact_names(cls, value: dict[str, FactSource]) -> dict[str, FactSource]:
        for name in value:
            if not NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a name a model can write in source('facts', ...)")
        return value


class ProjectConfig(BaseModel):
    """verdict.yml."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the project's name")
    warehouse: str = Field(
        "warehouse/verdict.duckdb", description="the DuckDB file, relative to the project folder (VERDICT_WAREHOUSE overrides it)"
    )
    first_date: dt.date | None = Field(
        None, description="the first as-of date the nightly job can analyse (default: the earliest experiment's start)"
    )
    sources: SourcesConfig


@dataclass(frozen=True)
class VerdictProject:
    """A project folder and its validated verdict.yml."""

    root: Path
    config: ProjectConfig

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @property
    def warehouse(self) -> Path:
        return (self.root / self.config.warehouse).resolve()

    def metric_models(self) -> list[str]:
        """The metric models: every .sql file in metrics/ (and its subfolders), by name."""
        return sorted(p.stem for p in self.metrics_dir.rglob("*.sql"))


def _problem(error: dict) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{field}: {error['msg'].removeprefix('Value error, ')}"


@functools.cache
def load_project(root: Path) -> VerdictProject:
    """Read and validate the project in `root`; a problem names the file, the field and the fix."""
    config_file = root / CONFIG_FILE
    if not config_file.is_file():
        raise ProjectError(
            f"{root} is not a Verdict project: it has no {CONFIG_FILE}. Create one with `verdict init {root}`, "
            f"or point --project / ${PROJECT_ENV} at a project folder"
        )
    try:
        raw = yaml.safe_load(config_file.read_text()) or {}
        config = ProjectConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{config_file}: not valid YAML ({exc})") from None
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ProjectError(f"{config_file}: {problems}") from None
    return VerdictProject(root=root, config=config)


def init_project(root: Path) -> VerdictProject:
    """Create a project folder with one example experiment and metric (refusing to write into a non-empty one)."""
    if root.exists() and any(root.iterdir()):
        raise ProjectError(f"{root} is not empty: give a new folder, or edit the project in it")
    shutil.copytree(PROJECT_TEMPLATE, root, dirs_exist_ok=True)
    config = root / CONFIG_FILE
    name = re.sub(r"[^A-Za-z0-9_]", "_", root.resolve().name) or "my_project"
    config.write_text(config.read_text().replace("name: my_project", f"name: {name}", 1))
    return load_project(root.resolve())


def project_root() -> Path:
    """The project folder: $VERDICT_PROJECT, else the demo shipped with Verdict."""
    configured = os.environ.get(PROJECT_ENV)
    return Path(configured).expanduser().resolve() if configured else DEMO_PROJECT


def current_project() -> VerdictProject:
    """The project every command, the UI and the nightly job use."""
    return load_project(project_root())


def project_environment(project: VerdictProject) -> dict[str, str]:
    """The project's folder, and its metric models' names for dbt."""
    events = project.config.sources.events
    return {
        PROJECT_ENV: str(project.root),
        METRIC_MODELS_ENV: ",".join(project.metric_models()),
        EVENT_TYPES_ENV: ",".join(events.event_types if events else []),
        HAS_UNITS_ENV: "1" if project.config.sources.units is not None else "0",
        TIMED_ASSIGNMENTS_ENV: "1" if project.config.sources.assignments.is_timed else "0",
        UNIT_DIMENSIONS_ENV: ",".join(project.config.sources.units.dimensions if project.config.sources.units else []),
    }


def export_project(project: VerdictProject) -> None:
    """Put the project in the environment, where dbt reads it."""
    os.environ.update(project_environment(project))


def dbt_project_dir(project: VerdictProject) -> Path:
    """The dbt project folder dbt runs in for `project` (.verdict/dbt): links to Verdict's dbt_project.yml, models,
    macros and tests, to the project's metrics folder (dbt's `metrics` model path) and to its verdict.yml (so that the
    build fingerprint sees a change of either). Each link is replaced atomically, so concurrent runs agree."""
    folder = project.root / ".verdict" / "dbt"
    folder.mkdir(parents=True, exist_ok=True)
    links = {name: VERDICT_DBT_DIR / name for name in ("dbt_project.yml", "models", "macros", "tests")}
    links |= {"metrics": project.metrics_dir, CONFIG_FILE: project.root / CONFIG_FILE}
    write_if_changed(folder / "sources" / "_sources.yml", yaml.safe_dump(sources_properties(project), sort_keys=False))
    for name, target in links.items():
        link = folder / name
        if link.is_symlink() and link.readlink() == target:
            continue
        staged = folder / f".{name}.{os.getpid()}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(target, target_is_directory=target.is_dir())
        os.replace(staged, link)
    return folder


def write_if_changed(path: Path, text: str) -> None:
    """Write a generated file only when its text changes (dbt then parses it again)."""
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.write_text(text)
        os.replace(staged, path)


# The type of each of Verdict's columns a source may lack (a null of it stands in).
COLUMN_TYPES = {"assigned_at": "timestamp", "logged_at": "timestamp", "occurred_at": "timestamp",
                "signup_date": "date", "value": "double"}  # fmt: skip
# A missing logged_at is the moment the row records: the row is taken to be logged when it happened.
LOGGED_AT_FALLBACK = {"assignments": "assigned_at", "events": "occurred_at"}
RAW_SOURCES = {"assignments": AssignmentsSource, "units": UnitsSource, "events": EventsSource}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def relation_sql(project: VerdictProject, source: SourceTable) -> str:
    """What SQL reads a source from: the table, or the file's reader (a path relative to the project folder)."""
    if source.table is not None:
        return ".".join(_quoted(part) for part in source.table.split("."))
    path = (project.root / source.file).resolve()
    return f"{FILE_READERS[path.suffix.lower()]}('{str(path).replace(chr(39), chr(39) * 2)}')"


def raw_source_sql(project: VerdictProject, name: str) -> str:
    """A query of one of Verdict's raw sources (assignments, units, events) under Verdict's column names: the mapped
    table or file with its columns renamed, nulls for the optional columns it lacks, and no rows when the project
    has no such source."""
    source = getattr(project.config.sources, name)
    contract = RAW_SOURCES[name].contract
    mapped = source.mapped() if source is not None else dict.fromkeys(contract)
    fallback = LOGGED_AT_FALLBACK.get(name)
    if mapped.get("logged_at") is None and fallback and mapped.get(fallback) is not None:
        mapped["logged_at"] = mapped[fallback]
    constants = source.constants() if source is not None else {}
    columns = ", ".join(
        f"{_quoted(found)} as {column}" if found is not None
        else f"cast('{constants[column]}' as varchar) as {column}" if column in constants
        else f"cast(null as {COLUMN_TYPES.get(column, 'varchar')}) as {column}"
        for column, found in mapped.items()
    )  # fmt: skip
    if source is None:
        return f"(select {columns} where false)"
    return f"(select {columns} from {relation_sql(project, source)})"


def sources_properties(project: VerdictProject) -> dict:
    """dbt source properties of the project's sources (dbt-duckdb external locations: read in place)."""

    def table(name: str, sql: str, description: str | None) -> dict:
        entry = {"name": name, "meta": {"external_location": sql.replace("{", "{{").replace("}", "}}")}}
        return {**entry, "description": description} if description else entry

    sources = project.config.sources
    raw = [table(name, raw_source_sql(project, name), kind.__doc__) for name, kind in RAW_SOURCES.items()]
    facts = [table(name, f"(select * from {relation_sql(project, fact)})", None) for name, fact in sources.facts.items()]
    description = f"Written by Verdict from the project's {CONFIG_FILE} (sources): do not edit."
    return {
        "version": 2,
        "sources": [
            {"name": "raw", "description": "Verdict's raw sources, mapped from the project's tables. " + description,
             "schema": "raw", "tables": raw},
            *([{"name": "facts", "description": "The fact tables metric models read. " + description,
                "schema": "facts", "tables": facts}] if facts else []),
        ],
    }  # fmt: skip

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
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPO_ROOT = Path(__file__).resolve().parents[1]
VERDICT_DBT_DIR = REPO_ROOT / "dbt_project"  # Verdict's own dbt project: models, macros, tests
DEMO_PROJECT = REPO_ROOT / "demo"
DEMO_EXPERIMENTS = DEMO_PROJECT / "experiments"
PROJECT_ENV = "VERDICT_PROJECT"
CONFIG_FILE = "verdict.yml"
# The metric models' names, which dbt reads to order the models that read them all (macros/metric_catalogue.sql).
METRIC_MODELS_ENV = "VERDICT_METRIC_MODELS"


class ProjectError(ValueError):
    """A project folder or its verdict.yml that cannot be used; the message names the file, the field and the fix."""


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
    return f"{field}: {error['msg']}"


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


def project_root() -> Path:
    """The project folder: $VERDICT_PROJECT, else the demo shipped with Verdict."""
    configured = os.environ.get(PROJECT_ENV)
    return Path(configured).expanduser().resolve() if configured else DEMO_PROJECT


def current_project() -> VerdictProject:
    """The project every command, the UI and the nightly job use."""
    return load_project(project_root())


def project_environment(project: VerdictProject) -> dict[str, str]:
    """The project's folder, and its metric models' names for dbt."""
    return {
        PROJECT_ENV: str(project.root),
        METRIC_MODELS_ENV: ",".join(project.metric_models()),
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
    for name, target in links.items():
        link = folder / name
        if link.is_symlink() and link.readlink() == target:
            continue
        staged = folder / f".{name}.{os.getpid()}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(target, target_is_directory=target.is_dir())
        os.replace(staged, link)
    return folder

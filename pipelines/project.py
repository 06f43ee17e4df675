"""The dbt project as Dagster sees it, and the step that prepares its manifest before code loads."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from pipelines.verdict_project import REPO_ROOT, current_project, dbt_project_dir, export_project

DBT_PROJECT_DIR = dbt_project_dir(current_project())  # the current Verdict project's dbt project folder
export_project(current_project())


def dbt_executable() -> str:
    """The `dbt` of the running interpreter's environment, which may not be on PATH."""
    beside = Path(sys.prefix) / "bin" / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


verdict_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=REPO_ROOT)


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource: the repository-root profiles.yml and this environment's dbt."""
    return DbtCliResource(
        project_dir=verdict_dbt_project,
        profiles_dir=str(REPO_ROOT),
        dbt_executable=dbt_executable(),
    )


def parse_fingerprint() -> str:
    """SHA-256 of what dbt's parse reads: the dbt project's files and generated sources, profiles.yml, the
    environment variables Verdict passes to dbt (VERDICT_*) and dbt's version."""
    from pipelines.build_state import project_files

    digest = hashlib.sha256(version("dbt-core").encode())
    files = [*project_files(DBT_PROJECT_DIR), *sorted((DBT_PROJECT_DIR / "sources").glob("*.yml")), REPO_ROOT / "profiles.yml"]
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in sorted(n for n in os.environ if n.startswith("VERDICT_")):
        digest.update(f"{name}={os.environ[name]}\0".encode())
    return digest.hexdigest()


def prepare_manifest() -> Path:
    """Parse the dbt project so target/manifest.json exists before the definitions load; skipped when nothing dbt
    reads changed since the manifest was written (a parse costs seconds even when dbt finds nothing to do)."""
    manifest = verdict_dbt_project.manifest_path
    recorded = manifest.with_name("manifest.fingerprint")  # the inputs' fingerprint and the manifest's mtime
    current = parse_fingerprint()
    if manifest.is_file() and recorded.is_file() and recorded.read_text() == f"{current} {manifest.stat().st_mtime_ns}":
        return manifest
    recorded.unlink(missing_ok=True)
    dbt_resource().cli(["parse", "--quiet"], target_path=verdict_dbt_project.target_path).wait()
    recorded.write_text(f"{current} {manifest.stat().st_mtime_ns}")
    return manifest


def metric_problems() -> dict[str, str]:
    """Metric model -> the problem of its settings, for every invalid metric of the catalogue at once: the metric
    definitions model compiled (its rows are literals, so DuckDB reads them without a warehouse)."""
    import os
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory() as target:
        compiled = subprocess.run(
            [dbt_executable(), "compile", "--quiet", "--select", "int_metric_definitions", "--project-dir",
             str(DBT_PROJECT_DIR), "--profiles-dir", str(REPO_ROOT), "--target-path", target],
            capture_output=True, text=True, env={**os.environ, "VERDICT_WAREHOUSE": ":memory:"},
        )  # fmt: skip
        if compiled.returncode != 0:
            raise RuntimeError(f"dbt could not compile the metric catalogue:\n{compiled.stdout[-3000:]}")
        [compiled] = Path(target).rglob("int_metric_definitions.sql")
        rows = duckdb.sql(f"select metric_id, problem from ({compiled.read_text()}) where problem is not null").fetchall()
    return dict(rows)


@functools.cache
def code_version() -> str:
    """The git commit of the code that runs (marked `+changes` when the tree differs from it), or the package
    version outside a git checkout: recorded with every look in the results history."""
    git = ["git", "-C", str(REPO_ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True)
        changes = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return version("verdict")
    return commit.stdout.strip() + ("+changes" if changes.stdout.strip() else "")

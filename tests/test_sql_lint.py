"""SQL style of the dbt project: sqlfluff, configured in .sqlfluff (dbt templater, DuckDB dialect).

The models and the singular tests are linted; macros and generic tests are Jinja that emits SQL fragments,
so they are left out (.sqlfluffignore) and their output is linted where the models call them. The linter
runs as this environment's `sqlfluff` CLI from the repository root, so the test sees exactly what
`VERDICT_WAREHOUSE=<a warehouse with the raw tables> .venv/bin/sqlfluff lint demo/.verdict/dbt/models demo/.verdict/dbt/metrics
demo/.verdict/dbt/tests` shows (with VERDICT_METRIC_MODELS set, as the project sets it): the demo project's dbt
folder, which links Verdict's models and the demo's metric models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from pipelines.project import DBT_PROJECT_DIR
from pipelines.verdict_project import DEMO_PROJECT, REPO_ROOT, load_project, project_environment

pytestmark = pytest.mark.lint

SQLFLUFF = Path(sys.executable).parent / "sqlfluff"
DBT_FOLDER = DBT_PROJECT_DIR.relative_to(REPO_ROOT).as_posix()  # demo/.verdict/dbt, as .sqlfluff names it
LINTED_DIRS = tuple(f"{DBT_FOLDER}/{part}" for part in ("models", "metrics", "tests"))
CONFIG_FILES = (".sqlfluff", ".sqlfluffignore", "profiles.yml")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated warehouse: dbt compiles against it (staging reads the raw sources' column types), never
    against the real warehouse file."""
    from pipelines.registry.spec import load_specs
    from pipelines.simulation import simulate

    database = tmp_path_factory.mktemp("lint") / "verdict.duckdb"
    simulate(database, experiments=load_specs(DEMO_PROJECT / "experiments"), units=200, seed=1)
    return database


def run_sqlfluff(root: Path, warehouse: Path, *paths: str) -> list[dict]:
    """`sqlfluff lint` from `root` on `paths`; one JSON report per linted file."""
    assert SQLFLUFF.exists(), f"{SQLFLUFF} is missing: install the test extra (pip install -e '.[test]')"
    env = {**os.environ, "VERDICT_WAREHOUSE": str(warehouse), **project_environment(load_project(DEMO_PROJECT))}
    result = subprocess.run(
        [str(SQLFLUFF), "lint", *paths, "--format", "json", "--processes", "0", "--nocolor"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # 0: clean, 1: violations found; anything else is a crash or a configuration error.
    assert result.returncode in (0, 1), (
        f"sqlfluff failed (exit {result.returncode}):\n{result.stderr}\n{result.stdout[-5000:]}"
    )
    return json.loads(result.stdout)


def violations_by_rule(reports: list[dict]) -> dict[str, list[str]]:
    """'file:line:position message' lines, grouped by rule code."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for report in reports:
        for violation in report["violations"]:
            name = f" [{violation['name']}]" if violation.get("name") else ""
            grouped[violation["code"]].append(
                f"{report['filepath']}:{violation['start_line_no']}:{violation['start_line_pos']}"
                f" {violation['code']} {violation['description']}{name}"
            )
    return grouped


def expected_files(root: Path) -> set[str]:
    """The .sql files that must be linted: models and singular tests (not generic tests, which are macros)."""
    files = set()
    for directory in LINTED_DIRS:
        for path in (root / directory).rglob("*.sql"):
            relative = path.relative_to(root)
            if "generic" not in relative.parts:
                files.add(relative.as_posix())
    return files


def test_dbt_sql_has_no_lint_violations(warehouse: Path) -> None:
    reports = run_sqlfluff(REPO_ROOT, warehouse, *LINTED_DIRS)

    # A file that was skipped (not found in the dbt project, ignored by mistake) must not pass silently.
    linted = {Path(report["filepath"]).as_posix() for report in reports}
    missing = sorted(expected_files(REPO_ROOT) - linted)
    assert not missing, f"sqlfluff did not lint: {missing}"

    grouped = violations_by_rule(reports)
    if grouped:
        total = sum(len(lines) for lines in grouped.values())
        sections = [
            f"{code} ({len(lines)}):\n" + "\n".join(f"  {line}" for line in lines)
            for code, lines in sorted(grouped.items())
        ]
        pytest.fail(
            f"{total} sqlfluff violation(s) in {len(linted)} files:\n"
            + "\n".join(sections)
            + "\nMost are fixable with: VERDICT_WAREHOUSE=<a simulated warehouse> .venv/bin/sqlfluff fix "
            + " ".join(LINTED_DIRS),
            pytrace=False,
        )


def test_linter_reports_an_obvious_violation(tmp_path: Path, warehouse: Path) -> None:
    """The same configuration, on a copy of the project with one badly styled model, reports it."""
    copy = tmp_path / DBT_FOLDER
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    for name in CONFIG_FILES:
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    upstream = sorted((copy / "models" / "staging").glob("stg_*.sql"))[0].stem
    probe = copy / "models" / "staging" / "lint_probe.sql"
    probe.write_text(
        "SELECT\n"  # CP01: upper-case keyword
        "    count(*) rows_seen\n"  # AL02: column alias without `as`
        f"from {{{{ ref('{upstream}') }}}}\n"
    )

    reports = run_sqlfluff(tmp_path, warehouse, probe.relative_to(tmp_path).as_posix())

    assert [Path(report["filepath"]).name for report in reports] == ["lint_probe.sql"]
    codes = {violation["code"] for violation in reports[0]["violations"]}
    assert {"CP01", "AL02"} <= codes, f"expected CP01 and AL02, got {reports[0]['violations']}"

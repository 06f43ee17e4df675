"""The metric catalogue: listed by `verdict metrics`, and invalid metric settings fail with model, field and fix."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app, console
from pipelines.project import dbt_executable
from pipelines.verdict_project import REPO_ROOT, dbt_project_dir, load_project, project_environment
from conftest import copy_demo_project


def test_verdict_metrics_lists_every_metric_with_its_settings(manifest, monkeypatch):
    monkeypatch.setattr(console, "width", 400)
    result = CliRunner().invoke(app, ["metrics"])
    assert result.exit_code == 0, result.output
    rows = {
        "conversion": ["proportion", "max", "cumulative"],
        "minutes_played": ["mean", "sum", "valid_range={'min': 0, 'max': 1440}"],
        "clicks_per_session": ["ratio", "sum"],
        "retention_d7": ["retention", "days 7-8 after exposure"],
        "revenue_per_user": ["mean", "winsorize={'upper': 0.99}"],
        "active_days": ["count_distinct", "days 0-14 after exposure"],
        "crash_rate": ["ratio", "preferred_direction=decrease"],
    }
    for name, shown in rows.items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert all(text in line for text in shown), (line, shown)


def compile_metrics(project: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Compile the metric catalogue model and the metric models' readability tests with a Verdict project's metrics
    (no warehouse data needed)."""
    return subprocess.run(
        [dbt_executable(), "compile", "--select", "int_metric_definitions int_metric_measurements",
         "test_name:measurements_are_readable", "--project-dir", str(dbt_project_dir(load_project(project))),
         "--profiles-dir", str(REPO_ROOT), "--target-path", str(tmp_path / "target")],
        capture_output=True, text=True,
        env={"VERDICT_WAREHOUSE": str(tmp_path / "w.duckdb"), "PATH": str(Path(sys.executable).parent),
             **project_environment(load_project(project))},
    )  # fmt: skip


INVALID_SETTINGS = [  # (text in _metrics.yml, its replacement), the message
    (("type: mean", "type: average"), "field 'meta.metric.type' is average. Set it to one of: mean, count, proportion"),
    (("aggregation: max", "aggregation: median"), "field 'meta.metric.aggregation' is median"),
    (("type: ratio", "type: ratio\n          window_days: -3"), "field 'meta.metric.window_days' is -3"),
    (("type: mean\n          aggregation: sum\n          winsorize", "type: ratio\n          aggregation: sum\n          winsorize"),
     "field 'columns' has no 'denominator'"),
    (("window_offset_days: 7\n          window_days: 1", "window_offset_days: 7"), "field 'meta.metric.window_offset_days' needs a window"),
    (("type: retention", "type: threshold"), "field 'meta.metric.threshold' is missing"),
    (("winsorize: {upper: 0.99}", "winsorize: {upper: 1.5}"), "field 'meta.metric.winsorize.upper' is 1.5"),
    (("type: proportion\n          aggregation: max\n          preferred_direction: increase\n          minimum",
      "type: proportion\n          aggregation: max\n          preferred_direction: up\n          minimum"),
     "field 'meta.metric.preferred_direction' is up. Set increase or decrease"),
]


@pytest.fixture(scope="module")
def invalid_compiles(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, subprocess.CompletedProcess]]:
    """For each invalid setting, a demo project with it and dbt's compile of that project, two at a time."""

    def compile_with(change: tuple[str, str]) -> tuple[Path, subprocess.CompletedProcess]:
        root = tmp_path_factory.mktemp("invalid")
        project = copy_demo_project(root / "project")
        settings = project / "metrics" / "_metrics.yml"
        old, new = change
        assert old in settings.read_text()
        settings.write_text(settings.read_text().replace(old, new, 1))
        return root, compile_metrics(project, root)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(compile_with, [change for change, _ in INVALID_SETTINGS]))


@pytest.mark.parametrize("case", range(len(INVALID_SETTINGS)), ids=[m for _, m in INVALID_SETTINGS])
def test_invalid_metric_settings_fail_with_model_field_and_fix(invalid_compiles, case: int):
    """The metric's own readability test fails naming model, field and fix; the catalogue and the union of the
    measurements still compile (without that metric), so only the experiments that use it are held back."""
    _, message = INVALID_SETTINGS[case]
    tmp_path, result = invalid_compiles[case]
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "metric model " in output and "(metrics/" in output
    assert message in output
    compiled = {p.name: p.read_text() for p in (tmp_path / "target").rglob("*.sql")}
    assert "int_metric_definitions.sql" in compiled and "int_metric_measurements.sql" in compiled
    broken = {
        line.split("measurements_are_readable_")[1].rsplit("_value", 1)[0]
        for line in output.splitlines()
        if "Compilation Error in test measurements_are_readable" in line
    }  # dbt may repeat a failing node in its summary
    assert len(broken) == 1, output
    [model] = broken
    union = compiled["int_metric_measurements.sql"]
    assert f"cast('{model}' as" not in union and "cast('sessions_per_user' as" in union  # left out, the others read


def test_verdict_metrics_shows_every_problem_of_the_catalogue_at_once(tmp_path: Path):
    project = copy_demo_project(tmp_path / "project")
    settings = project / "metrics" / "_metrics.yml"
    text = settings.read_text().replace("type: ratio", "type: rate").replace("winsorize: {upper: 0.99}", "winsorize: {upper: 2}")
    settings.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "metrics"], capture_output=True, text=True,
        env={**os.environ, "VERDICT_PROJECT": str(project), "COLUMNS": "300"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("  - metric model ")]
    invalid = {"clicks_per_session", "crash_rate", "revenue_per_purchase", "revenue_per_user"}  # three ratios, one cap
    assert {line.split()[3] for line in problems} == invalid
    assert "4 invalid metrics" in result.stdout

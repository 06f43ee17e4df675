"""The analytics engineer's workflow end to end: in a copy of the project, add a metric model and its YAML entry,
reference it from an experiment, run the nightly DAG, and find the metric in the results."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse import REPO_ROOT

pytestmark = pytest.mark.e2e

# Streams logged with more than 120 minutes are treated as broken: their value is null.
MODEL = """\
select
    unit_id,
    occurred_at as measured_at,
    case when value <= 120 then value end as value
from {{ ref('stg_events') }}
where event_type = 'stream'
"""

ENTRIES = """
  - name: heavy_listener
    description: Whether the unit listened for at least 60 minutes in its first 7 days after exposure.
    config:
      meta:
        metric:
          type: threshold
          aggregation: sum
          threshold: 60
          window_days: 7
          null_values: skip
          preferred_direction: increase
    columns: *measurement_columns

  - name: plausible_streams
    description: Streams per unit, a broken stream counting as a stream of 0 minutes.
    config:
      meta:
        metric:
          type: mean
          aggregation: count
          null_values: zero
    columns: *measurement_columns
"""


def verdict(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the copy's own `verdict` CLI (its pipelines package, dbt project and experiments)."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_a_new_metric_model_reaches_the_results(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(
        REPO_ROOT, repo,
        ignore=shutil.ignore_patterns(".git", ".venv", "warehouse", ".dagster_home", "reports", "target", "logs",
                                      "__pycache__", ".pytest_cache"),
    )  # fmt: skip
    metrics = repo / "dbt_project" / "models" / "metrics"
    for name in ("heavy_listener", "plausible_streams"):
        (metrics / f"{name}.sql").write_text(MODEL)
    (metrics / "_metrics.yml").write_text((metrics / "_metrics.yml").read_text() + ENTRIES)
    measurements = repo / "dbt_project" / "models" / "intermediate" / "int_metric_measurements.sql"
    measurements.write_text(measurements.read_text().replace(
        "-- depends_on: {{ ref('active_days') }}",
        "-- depends_on: {{ ref('active_days') }}\n-- depends_on: {{ ref('heavy_listener') }}\n"
        "-- depends_on: {{ ref('plausible_streams') }}",
    ))  # fmt: skip
    spec = repo / "experiments" / "playlist_recs.yml"
    spec.write_text(spec.read_text().replace("metrics:\n", "metrics:\n  - metric: heavy_listener\n    role: deterioration\n"
                                         "  - metric: plausible_streams\n    role: deterioration\n", 1))

    env = {**os.environ, "VERDICT_WAREHOUSE": str(tmp_path / "verdict.duckdb"), "PYTHONPATH": str(repo)}
    env.pop("DAGSTER_HOME", None)
    verdict(repo, "simulate", "--units", "4000", env=env)
    listed = verdict(repo, "metrics", env={**env, "COLUMNS": "300"})
    assert "heavy_listener" in listed.stdout and "threshold=60" in listed.stdout
    verdict(repo, "run", env=env)

    with duckdb.connect(str(tmp_path / "verdict.duckdb"), read_only=True) as con:
        rows = con.sql(
            """
            select metric_type, role, n_control + n_treatment, mean_control, status
            from main.experiment_results
            where experiment_id = 'playlist_recs' and metric_id = 'heavy_listener'
            order by as_of_date desc limit 1
            """
        ).fetchall()
        catalogue = {
            r[0]: r[1:] for r in con.sql(
                "select metric_id, metric_type, measurements, skipped_measurements from marts.metric_catalogue"
            ).fetchall()
        }  # fmt: skip
        [(streams, broken)] = con.sql(
            "select count(*), count(*) filter (where value > 120) from staging.stg_events where event_type = 'stream'"
        ).fetchall()
        [(plausible,)] = con.sql(
            """
            select n_control + n_treatment from main.experiment_results
            where experiment_id = 'playlist_recs' and metric_id = 'plausible_streams' and status = 'ok'
            order by as_of_date desc limit 1
            """
        ).fetchall()
    assert broken > 0
    assert catalogue["heavy_listener"] == ("threshold", streams, broken)  # null values skipped, and counted
    assert catalogue["plausible_streams"] == ("mean", streams, 0)  # null values count as 0
    assert plausible > 0
    [(kind, role, units, share, status)] = rows
    assert (kind, role, status) == ("proportion", "deterioration", "ok")
    assert units > 0 and 0 < share < 1  # a share of units reached the threshold

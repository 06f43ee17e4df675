"""The registry asset in a real Dagster run: valid specs become tables, an invalid spec fails the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.assets.registry import experiment_registry
from pipelines.project import EXPERIMENTS_DIR
from pipelines.resources import WarehouseResource


def materialize_registry(experiments: Path, database: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [experiment_registry],
        resources={"warehouse": WarehouseResource(path=str(database))},
        run_config={"ops": {"experiment_registry": {"config": {"experiments_dir": str(experiments)}}}},
        raise_on_error=False,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.event_specific_data.error.message


def test_specs_become_registry_tables(tmp_path: Path, manifest: Path):
    database = tmp_path / "w.duckdb"
    result = materialize_registry(EXPERIMENTS_DIR, database)
    assert result.success
    with duckdb.connect(str(database)) as con:
        assert con.sql("select count(*) from registry.experiments").fetchall()[0][0] == 4
        assert con.sql("select count(*) from registry.experiment_variants").fetchall()[0][0] == 9
        assert con.sql("select count(*) from registry.experiment_metrics where role = 'guardrail'").fetchall()[0][0] == 5
        # a guardrail that leaves its margin to the metric gets the metric's default
        assert con.sql(
            "select non_inferiority_margin from registry.experiment_metrics"
            " where experiment_id = 'playlist_recs' and metric_id = 'premium_upgrade'"
        ).fetchall() == [(0.10,)]
        assert con.sql(
            "select dimension from registry.experiment_segments where experiment_id = 'checkout_redesign' order by 1"
        ).fetchall() == [("country",), ("platform",), ("signup_cohort",)]


def test_invalid_spec_fails_the_run_naming_file_field_and_fix(tmp_path: Path, manifest: Path):
    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, experiments)
    spec = experiments / "playlist_recs.yml"
    spec.write_text(spec.read_text().replace("weight: 0.5\n  - id: new_model\n    weight: 0.5", "weight: 0.5\n  - id: new_model\n    weight: 0.6"))
    result = materialize_registry(experiments, tmp_path / "w.duckdb")
    assert not result.success
    message = failure_message(result)
    assert str(spec) in message
    assert "field 'variants'" in message
    assert "variant weights must sum to 1, got 1.1: adjust the weights" in message


def test_unknown_metric_fails_the_run(tmp_path: Path, manifest: Path):
    experiments = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, experiments)
    spec = experiments / "aa_homepage_copy.yml"
    spec.write_text(spec.read_text().replace("metric: purchases", "metric: purchase_count"))
    result = materialize_registry(experiments, tmp_path / "w.duckdb")
    assert not result.success
    message = failure_message(result)
    assert "aa_homepage_copy.yml" in message and "field 'metrics.2.metric'" in message
    assert "unknown metric 'purchase_count'" in message

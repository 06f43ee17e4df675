"""The registry asset in a real Dagster run: valid specs become tables; an invalid spec is left out, naming its file,
field and fix in a failed check, and the other experiments go on."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.assets.registry import experiment_registry
from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.resources import WarehouseResource


def materialize_registry(experiments: Path, database: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [experiment_registry],
        resources={"warehouse": WarehouseResource(path=str(database))},
        run_config={"ops": {"experiment_registry": {"config": {"experiments_dir": str(experiments)}}}},
        raise_on_error=False,
    )


def spec_check(result: dg.ExecuteInProcessResult):
    """The evaluation of the registry's `experiment_specs_are_valid` check."""
    [check] = [e.event_specific_data for e in result.all_events
               if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]  # fmt: skip
    return check


def registered(database: Path) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [r[0] for r in con.sql("select experiment_id from registry.experiments order by 1").fetchall()]


def test_specs_become_registry_tables(tmp_path: Path, manifest: Path):
    database = tmp_path / "w.duckdb"
    result = materialize_registry(DEMO_EXPERIMENTS, database)
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


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "fix"),
    [
        ("playlist_recs.yml", "weight: 0.5\n  - id: new_model\n    weight: 0.5", "weight: 0.5\n  - id: new_model\n    weight: 0.6",
         "variants", "variant weights must sum to 1, got 1.1: adjust the weights"),
        ("aa_homepage_copy.yml", "metric: purchases", "metric: purchase_count",
         "metrics.2.metric", "unknown metric 'purchase_count'"),
    ],
)
def test_an_invalid_spec_leaves_only_its_experiment_out(tmp_path: Path, manifest: Path, file, old, new, field, fix):
    experiments = tmp_path / "experiments"
    shutil.copytree(DEMO_EXPERIMENTS, experiments)
    spec = experiments / file
    assert old in spec.read_text()
    spec.write_text(spec.read_text().replace(old, new))
    result = materialize_registry(experiments, tmp_path / "w.duckdb")
    assert result.success
    check = spec_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert str(spec) in check.description and f"field '{field}'" in check.description and fix in check.description
    others = sorted(p.stem for p in (DEMO_EXPERIMENTS).glob("*.yml") if p.name != file)
    assert registered(tmp_path / "w.duckdb") == others


def test_valid_specs_pass_the_check(tmp_path: Path, manifest: Path):
    result = materialize_registry(DEMO_EXPERIMENTS, tmp_path / "w.duckdb")
    assert spec_check(result).passed


def test_a_warehouse_without_the_alternative_column_gets_it(tmp_path: Path, manifest: Path):
    """A registry table written before `alternative` existed is replaced whole, so the column arrives."""
    experiments = tmp_path / "experiments"
    shutil.copytree(DEMO_EXPERIMENTS, experiments)
    spec = experiments / "checkout_redesign.yml"
    old = "  - metric: purchases\n    role: deterioration\n"
    assert old in spec.read_text()
    spec.write_text(spec.read_text().replace(old, old + "    alternative: two_sided\n"))
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema registry")
        con.execute(
            "create table registry.experiment_metrics as select 'old' as experiment_id, 'conversion' as metric_id,"
            " 'success' as role, 0.05 as minimum_detectable_effect, null::double as non_inferiority_margin,"
            " 'increase' as preferred_direction"
        )
    result = materialize_registry(experiments, database)
    assert result.success and spec_check(result).passed
    with duckdb.connect(str(database), read_only=True) as con:
        types = dict(con.sql("select column_name, column_type from (describe registry.experiment_metrics)").fetchall())
        assert types["alternative"] == "VARCHAR"
        assert con.sql(
            "select experiment_id, metric_id, alternative from registry.experiment_metrics"
            " where alternative is not null or experiment_id = 'old'"
        ).fetchall() == [("checkout_redesign", "purchases", "two_sided")]
        assert con.sql("select count(*) from registry.experiment_metrics where alternative is null").fetchall()[0][0] > 0

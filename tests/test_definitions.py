"""The Dagster definitions load, with the nightly job, its schedule and a health check per experiment."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from pipelines.analysis.health import CHECKS
from pipelines.project import verdict_dbt_project


def test_definitions_load(manifest):
    from pipelines.definitions import build_defs, experiment_ids

    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    schedule = defs.resolve_schedule_def("nightly_analysis_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "nightly_analysis"
    tick = schedule.evaluate_tick(
        dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC))
    )
    assert [r.partition_key for r in tick.run_requests] == ["2026-11-25"]  # yesterday's look
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"registry/experiments", "marts/metric_sufficient_stats", "experiment_results", "experiment_health"} <= keys
    checks = {c.name for c in graph.asset_check_keys if c.asset_key == dg.AssetKey("experiment_health")}
    assert checks == {f"{e}__{c}" for e in experiment_ids() for c in CHECKS}
    assert "onboarding_flow__sample_ratio_mismatch" in checks and len(experiment_ids()) == 4


def test_registry_feeds_dbt_and_dbt_feeds_statistics(manifest):
    from pipelines.definitions import build_defs

    graph = build_defs().resolve_asset_graph()
    stg = dg.AssetKey(["staging", "stg_experiments"])
    assert dg.AssetKey(["registry", "experiments"]) in graph.get(stg).parent_keys
    assert dg.AssetKey(["marts", "metric_sufficient_stats"]) in graph.get(dg.AssetKey("experiment_results")).parent_keys


def test_manifest_is_prepared(manifest):
    assert manifest == verdict_dbt_project.manifest_path
    assert manifest.exists()


def test_a_run_can_ask_the_dbt_build_for_a_full_refresh(manifest):
    from pipelines.definitions import defs

    job = defs.resolve_job_def("nightly_analysis")
    config = dg.validate_run_config(job, {"ops": {"verdict_dbt_models": {"config": {"full_refresh": True}}}})
    assert config["ops"]["verdict_dbt_models"]["config"] == {"full_refresh": True}
    assert dg.validate_run_config(job, {})["ops"]["verdict_dbt_models"]["config"] == {"full_refresh": False}


def test_old_invocation_folders_are_pruned(tmp_path, manifest):
    from pipelines.assets.dbt import TARGET_DIR, prune_invocation_targets

    assert manifest.parent == TARGET_DIR  # the dbt asset prunes where dbt writes

    for i in range(5):
        folder = tmp_path / f"verdict_dbt_models-run{i}-abc"
        folder.mkdir()
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "manifest.json").write_text("{}")
    deleted = prune_invocation_targets(tmp_path, keep=2)
    assert sorted(p.name for p in deleted) == [f"verdict_dbt_models-run{i}-abc" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "verdict_dbt_models-run3-abc",
                                                          "verdict_dbt_models-run4-abc"]  # fmt: skip

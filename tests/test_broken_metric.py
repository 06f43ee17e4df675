"""A broken metric model holds back only the experiments that use it.

The dbt asset builds the metric models (and what they read) first; a metric model that fails to build or fails its
data test is left out of the measurements of the second build, and the statistics assets hold back the looks of
the experiments that use it, with a failed `metric_models` health check. The helpers are tested on the real
manifest; then, in a copy of the project, one metric model fails at query time (a bad cast) and another does not
bind (an unknown column), and the real nightly job runs on a small simulated warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.assets.dbt import build_outcome, dbt_build_args, metric_build, metric_models, selection
from pipelines.warehouse import read_frame
from conftest import copy_demo_project

SEEDED, BROKEN = "2026-11-18", "2026-11-19"  # a look before the breakage; the run that meets it redoes it and the next
# Each broken metric model is used by one experiment only (experiments/*.yml).
CAST = ("revenue_per_purchase", "checkout_redesign", "1 as denominator", "cast(event_type as integer) as denominator")
BIND = ("clicks_per_session", "playlist_recs", "case when event_type = 'click' then 1 else 0 end as value",
        "clicks as value")  # fmt: skip
# A metric setting that is invalid (a window of 0 days) breaks that metric model alone, like a failing model.
SETTING = ("sessions_per_user", "aa_homepage_copy", "Sessions per unit after its exposure.\n    config:\n      meta:\n"
           "        metric:\n", "Sessions per unit after its exposure.\n    config:\n      meta:\n        metric:\n"
           "          window_days: 0\n")  # fmt: skip
# retention_d7 reads sessions_per_user: a failed test skips what reads its model, so it is broken too
DOWNSTREAM = "retention_d7"
HEALTHY = ("onboarding_flow",)
LOOK_TABLES = ("experiment_results", "experiment_decisions")


def nodes_named(manifest: dict) -> dict[str, str]:
    """Model and test name -> unique id."""
    return {n["name"]: u for u, n in manifest["nodes"].items() if n["resource_type"] in ("model", "test")}


@pytest.fixture(scope="module")
def parsed(manifest: Path) -> dict:
    """The prepared manifest of the project."""
    return json.loads(manifest.read_text())


def test_the_first_build_is_the_metric_models_what_they_read_and_their_tests(parsed: dict):
    names = {parsed["nodes"][u]["name"] for u in metric_build(parsed)}
    metrics = {parsed["nodes"][u]["name"] for u in metric_models(parsed)}
    assert {"revenue_per_purchase", "retention_d7", "stg_events", "stg_events_checked"} <= names
    assert {f"measurements_are_readable_{m}_value" for m in metrics} <= names  # every metric model has the test
    # the union of the metric models and what reads it wait for the second build, and so does a test that also
    # reads a model of the second build (every raw row is clean or quarantined)
    assert not names & {"int_metric_measurements", "metric_sufficient_stats", "stg_assignments",
                        "raw_rows_are_accounted_for"}  # fmt: skip


def test_the_two_builds_leave_out_each_other(parsed: dict):
    first = metric_build(parsed)
    everything = set(parsed["nodes"])
    assert "fqn:verdict.conversion" in selection(parsed, first)
    assert "fqn:verdict.intermediate.int_metric_measurements" in selection(parsed, everything - first)
    assert not set(selection(parsed, first)) & set(selection(parsed, everything - first))
    assert dbt_build_args(["fqn:a.b", "fqn:a.c"]) == [
        "build", "--exclude", "fqn:a.b fqn:a.c resource_type:unit_test tag:invariant",
    ]  # fmt: skip
    assert dbt_build_args(["fqn:a.b"], ["revenue_per_purchase", "clicks_per_session"], "buildable") == [
        "build", "--exclude", "fqn:a.b resource_type:unit_test tag:invariant", "--indirect-selection", "buildable",
        "--vars", '{"broken_metrics": ["clicks_per_session", "revenue_per_purchase"]}',
    ]  # fmt: skip


def test_failures_of_metric_models_break_them_and_others_fail_the_build(parsed: dict):
    ids = nodes_named(parsed)
    results = lambda *rows: {  # noqa: E731
        "results": [{"unique_id": ids[name], "status": status, "message": message} for name, status, message in rows]
    }
    outcome = build_outcome(results(
        ("conversion", "success", "OK"),
        ("clicks_per_session", "error", "Runtime Error in model clicks_per_session\n  Binder Error: no column"),
        ("measurements_are_readable_clicks_per_session_value", "skipped", None),
        ("measurements_are_readable_crash_rate_value", "fail", "Got 3 results, configured to fail if != 0"),
        ("sessions_per_user", "success", "OK"),
        ("measurements_are_readable_sessions_per_user_value", "error", "Conversion Error: not a number"),
        ("retention_d7", "skipped", None),
        ("measurements_are_readable_minutes_played_value", "warn", "Got 1 result"),
    ), parsed)  # fmt: skip
    assert outcome.broken_metrics == {
        "clicks_per_session": "Runtime Error in model clicks_per_session Binder Error: no column",
        "crash_rate": "test measurements_are_readable_crash_rate_value: Got 3 results, configured to fail if != 0",
        "retention_d7": "skipped after a failure upstream",
        "sessions_per_user": "test measurements_are_readable_sessions_per_user_value: Conversion Error: not a number",
    }
    assert outcome.other_failures == {}
    staging = build_outcome(results(("stg_events", "error", "Runtime Error"), ("conversion", "skipped", None)), parsed)
    assert staging.other_failures == {"stg_events": "Runtime Error"}


def test_only_the_tests_of_metric_models_do_not_block(parsed: dict):
    from pipelines.assets.dbt import verdict_dbt_models

    metrics = metric_models(parsed)
    tests = {n["name"]: n for n in parsed["nodes"].values() if n["resource_type"] == "test"}
    on_metrics = {name for name, n in tests.items() if metrics & set(n["depends_on"]["nodes"])}
    errors = {name for name, n in tests.items() if n["config"]["severity"].lower() == "error"}  # a warning never blocks
    blocking = {spec.name for spec in verdict_dbt_models.check_specs if spec.blocking}
    assert "measurements_are_readable_revenue_per_purchase_value" in on_metrics
    assert "raw_rows_are_accounted_for" in blocking  # a test on a mart that also reads staging
    assert blocking == {spec.name for spec in verdict_dbt_models.check_specs} & errors - on_metrics


def verdict(repo: Path, *args: str, env: dict[str, str]) -> None:
    """Run the `verdict` CLI on the project that `env` names."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def break_model(repo: Path, model: str, old: str, new: str) -> None:
    """Replace a line of a metric model's SQL in the copy."""
    path = repo / "metrics" / f"{model}.sql"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def tables(database: Path) -> dict[str, pl.DataFrame]:
    """The history tables of the looks."""
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: read_frame(con, f"select * from main.{t}") for t in (*LOOK_TABLES, "experiment_health")}


@pytest.fixture(scope="module")
def broken_night(tmp_path_factory: pytest.TempPathFactory):
    """A copy of the project with a seeded look, then two broken metric models and a run over that look and the
    next: the tables before and after, the metric catalogue, and the broken run's Dagster events."""
    root = tmp_path_factory.mktemp("broken_metric")
    repo, home, database = copy_demo_project(root / "project"), root / "dagster_home", root / "verdict.duckdb"
    home.mkdir()
    env = {**os.environ, "VERDICT_WAREHOUSE": str(database), "VERDICT_PROJECT": str(repo), "DAGSTER_HOME": str(home)}
    verdict(repo, "simulate", "--units", "2000", env=env)
    verdict(repo, "prepare", env=env)
    verdict(repo, "run", "--date", SEEDED, env=env)
    before = tables(database)
    for model, _, old, new in (CAST, BIND):
        break_model(repo, model, old, new)
    settings = repo / "metrics" / "_metrics.yml"
    assert SETTING[2] in settings.read_text()
    settings.write_text(settings.read_text().replace(SETTING[2], SETTING[3], 1))
    verdict(repo, "backfill", "--start", SEEDED, "--end", BROKEN, env=env)
    after = tables(database)
    with duckdb.connect(str(database), read_only=True) as con:
        catalogue = {m: (broken, problem) for m, broken, problem in
                     con.sql("select metric_id, is_broken, problem from marts.metric_catalogue").fetchall()}  # fmt: skip
    instance = dg.DagsterInstance.from_config(str(home))
    run = instance.get_runs(limit=1)[0]
    events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event is not None]
    return before, after, catalogue, run, events


def at(frame: pl.DataFrame, experiment: str, date: str) -> pl.DataFrame:
    """The experiment's rows at the date, in a fixed order."""
    rows = frame.filter((pl.col("experiment_id") == experiment) & (pl.col("as_of_date").cast(pl.String) == date))
    return rows.sort(rows.columns, nulls_last=True)


@pytest.mark.slow
@pytest.mark.e2e
def test_the_other_experiments_get_their_looks(broken_night):
    before, after, catalogue, run, _ = broken_night
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert {m for m, (broken, _) in catalogue.items() if broken} == {CAST[0], BIND[0], SETTING[0], DOWNSTREAM}
    assert "field 'meta.metric.window_days' is 0" in catalogue[SETTING[0]][1]
    for experiment in HEALTHY:
        for table in (*LOOK_TABLES, "experiment_health"):
            for date in (SEEDED, BROKEN):
                rows = at(after[table], experiment, date)
                assert len(rows) > 0 and set(rows["run_id"]) == {run.run_id}, (experiment, table, date)
        health = at(after["experiment_health"], experiment, BROKEN)
        assert health.filter(pl.col("check_name") == "metric_models")["status"].to_list() == ["pass"]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("breakage", [CAST, BIND, SETTING], ids=["query_time_cast", "no_such_column", "invalid_setting"])
def test_an_experiment_using_a_broken_metric_is_held_back(broken_night, breakage):
    before, after, _, run, _ = broken_night
    model, experiment = breakage[:2]
    for table in LOOK_TABLES:
        assert at(after[table], experiment, BROKEN).is_empty()
        seeded = at(before[table], experiment, SEEDED)
        assert len(seeded) > 0 and at(after[table], experiment, SEEDED).equals(seeded), table  # untouched
    for date in (SEEDED, BROKEN):
        failed = at(after["experiment_health"], experiment, date).filter(pl.col("check_name") == "metric_models")
        assert failed["status"].to_list() == ["fail"] and model in failed["detail"][0]
    # the look's other checks stay as the seeded look had them; the new date has only the failed check
    others = lambda frame: at(frame, experiment, SEEDED).filter(pl.col("check_name") != "metric_models")  # noqa: E731
    assert len(others(before["experiment_health"])) > 0
    assert others(after["experiment_health"]).equals(others(before["experiment_health"]))
    assert at(after["experiment_health"], experiment, BROKEN)["check_name"].to_list() == ["metric_models"]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_broken_models_fail_their_checks_in_dagster(broken_night):
    *_, events = broken_night
    checks = {e.event_specific_data.check_name: e.event_specific_data
              for e in events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}  # fmt: skip
    for model, experiment, *_ in (CAST, BIND, SETTING):
        check = checks[f"{experiment}__metric_models"]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and model in check.description
    assert not checks[f"measurements_are_readable_{CAST[0]}_value"].passed  # the failed cast, as a dbt check
    assert f"measurements_are_readable_{BIND[0]}_value" not in checks  # its model did not build: no test ran
    assert all(checks[f"{e}__metric_models"].passed for e in HEALTHY)
    observed = {
        e.event_specific_data.asset_observation.asset_key.path[-1]: e.event_specific_data.asset_observation.metadata
        for e in events if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        and "broken" in e.event_specific_data.asset_observation.metadata
    }  # fmt: skip
    assert sorted(observed) == sorted([CAST[0], BIND[0], SETTING[0], DOWNSTREAM])
    assert "Conversion Error" in observed[CAST[0]]["reason"].value
    assert "Binder Error" in observed[BIND[0]]["reason"].value
    assert "field 'meta.metric.window_days' is 0" in observed[SETTING[0]]["reason"].value  # model, field and fix

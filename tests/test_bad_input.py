"""The bad-input catalogue: every kind of bad input gets a clear error or a counted quarantine, never silent loss.

Spec problems are refused by the registry with the file, the field and the fix (see also test_spec.py). Bad raw
rows are planted one by one in a small hand-made warehouse, which then goes through the real nightly job."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from conftest import copy_demo_project, run_nightly
from pipelines.registry.spec import SpecError, load_specs
from pipelines.verdict_project import load_project
from pipelines.warehouse import read_frame

pytestmark = pytest.mark.e2e


def spec(experiment_id: str, **changes) -> dict:
    return {
        "id": experiment_id, "name": experiment_id, "start_date": "2026-11-01",
        "variants": [{"id": "control", "weight": 0.5}, {"id": "treatment", "weight": 0.5}],
        "control": "control", "metrics": [{"metric": "minutes_played"}, {"metric": "conversion"}], **changes,
    }  # fmt: skip


def test_two_specs_with_one_experiment_id_are_refused(tmp_path: Path):
    (tmp_path / "exp_one.yml").write_text(yaml.safe_dump(spec("exp_one")))
    (tmp_path / "exp_one_copy.yml").write_text(yaml.safe_dump(spec("exp_one")))
    with pytest.raises(SpecError) as error:
        load_specs(tmp_path)
    assert "exp_one_copy.yml" in str(error.value) and "field 'id'" in str(error.value)


ASSIGNMENTS = [
    # clean: two units in exp_live, one of them (u3) logged in both variants; two units in the ended experiment
    ("exp_live", "u1", "control", "2026-11-01 10:00:00", None),
    ("exp_live", "u2", "treatment", "2026-11-01 11:00:00", None),
    ("exp_live", "u3", "control", "2026-11-02 09:00:00", None),
    ("exp_live", "u3", "treatment", "2026-11-03 09:00:00", "unit in two variants"),
    ("exp_ended", "u4", "control", "2026-11-02 09:00:00", None),
    ("exp_ended", "u5", "treatment", "2026-11-02 10:00:00", None),
    # bad
    ("exp_live", None, "control", "2026-11-02 12:00:00", "null_unit_id"),
    ("exp_live", "", "control", "2026-11-02 12:00:00", "blank_unit_id"),
    ("exp_live", "u6", "treatmnt", "2026-11-02 12:00:00", "unknown_variant"),
    ("legacy_test", "u1", "control", "2026-11-02 12:00:00", "unknown_experiment"),
    ("exp_live", "u6", "control", "2099-01-01 00:00:00", "impossible_timestamp"),
    ("exp_live", "u6", "control", "2026-10-20 12:00:00", "before_experiment_start"),
    ("exp_ended", "u6", "control", "2026-11-05 12:00:00", "after_experiment_end"),
    ("exp_live", "u6", "control", "2026-11-01 09:00:00", "late_arrival"),
]
EVENTS = [
    ("e1", "u1", "stream", "2026-11-02 10:00:00", 10.0, None),
    ("e2", "u2", "stream", "2026-11-02 11:00:00", 20.0, None),
    ("e3", "u1", "purchase", "2026-11-03 10:00:00", 5.0, None),
    ("e4", "u4", "stream", "2026-11-03 10:00:00", 7.0, None),
    ("e5", "u5", "session", "2026-11-05 10:00:00", 1.0, None),
    ("e1", "u1", "stream", "2026-11-02 10:00:00", 10.0, "duplicate_event_id"),
    ("e6", None, "stream", "2026-11-02 10:00:00", 3.0, "null_unit_id"),
    ("e10", " ", "stream", "2026-11-02 10:00:00", 3.0, "blank_unit_id"),
    (None, "u2", "stream", "2026-11-02 10:00:00", 3.0, "null_event_id"),
    ("e7", "u2", "stream", "2099-01-01 00:00:00", 3.0, "impossible_timestamp"),
    ("e8", "u2", "teleport", "2026-11-02 10:00:00", 1.0, "unknown_event_type"),
    ("e9", "u1", "stream", "2026-11-01 08:00:00", 4.0, "late_arrival"),
    # raw columns as text, as a CSV load leaves them
    ("e11", "u1", "stream", "2026-11-02 10:00:00", "NaN", "non_finite_value"),
    ("e12", "u1", "stream", "2026-11-02 10:00:00", "12,5", "unreadable_value"),
    ("e13", "u2", "stream", "2026-11-02 10:00:00", "1e300", "implausible_value"),
    ("e14", "u2", "stream", "2099-06-01 00:00:00", "3", "logged_in_future"),  # occurred and logged in 2099
    ("e15", "u2", "stream", "2026-11-03 15:00:00+05:00", "2", None),  # 10:00 UTC
]
LATE_LOGGED = "2026-11-05 12:00:00"  # when the late_arrival rows were logged: more than 3 days after they happened
LAST_LOGGED = "2026-11-05 23:00:00"  # the latest a planted row is logged, but for one logged in the future
DUPLICATE_UNIT = "u1"  # listed twice in raw.units
NON_UTC_ZONE = "America/Los_Angeles"
# The next night's rows: a new event, and one that reached the warehouse only now with a logged_at of days ago
NEXT_NIGHT = ("('e16', 'u1', 'stream', '2026-11-06 08:00:00', '6', timestamp '2026-11-06 08:01:00'),"
              " ('e17', 'u2', 'stream', '2026-11-02 09:00:00', '4', timestamp '2026-11-02 09:01:00')")  # fmt: skip


def logged(timestamp: str, reason: str | None) -> str:
    """When a planted row was logged (a minute is added): as it happened (by the end of the data), long after
    for a late arrival, or in the future for a row logged in the future."""
    moment = timestamp[:19]
    if reason == "late_arrival":
        return LATE_LOGGED
    return moment if reason == "logged_in_future" else min(moment, LAST_LOGGED)


def build_warehouse(path: Path) -> None:
    """raw.units, raw.assignments and raw.events with the rows above (logged a minute after they happened, or
    long after for a late arrival)."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.units as select 'u' || i as unit_id, 'SE' as country, 'ios' as platform,"
                    " date '2020-01-01' as signup_date from range(1, 7) t(i)")  # fmt: skip
        con.execute(f"insert into raw.units values ('{DUPLICATE_UNIT}', 'NO', 'web', date '2021-01-01')")
        con.execute("create table raw.assignments (experiment_id varchar, unit_id varchar, variant varchar,"
                    " assigned_at timestamptz, logged_at timestamp)")  # fmt: skip
        con.executemany(  # assigned_at: an instant (timestamptz), given in UTC
            "insert into raw.assignments values (?, ?, ?, (? || '+00')::timestamptz, ?::timestamp + interval 1 minute)",
            [(e, u, v, t, logged(t, reason)) for e, u, v, t, reason in ASSIGNMENTS],
        )
        con.execute("create table raw.events (event_id varchar, unit_id varchar, event_type varchar,"
                    " occurred_at varchar, value varchar, logged_at timestamp)")  # fmt: skip
        con.executemany(
            "insert into raw.events values (?, ?, ?, ?, ?, ?::timestamp + interval 1 minute)",
            [(i, u, k, t, None if v is None else str(v), logged(t, reason)) for i, u, k, t, v, reason in EVENTS],
        )


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory, manifest: Path):
    """The nightly job on the hand-made warehouse, with three specs: live, ended, and one with no exposures yet."""
    root = tmp_path_factory.mktemp("bad_input")
    experiments = root / "experiments"
    experiments.mkdir()
    for experiment in (spec("exp_live"), spec("exp_ended", end_date="2026-11-03"), spec("exp_waiting")):
        (experiments / f"{experiment['id']}.yml").write_text(yaml.safe_dump(experiment))
    database = root / "verdict.duckdb"
    build_warehouse(database)
    previous = {"TZ": os.environ.get("TZ")}
    os.environ["TZ"] = NON_UTC_ZONE  # the job's processes (and DuckDB's session) in a zone 8 hours behind UTC
    time.tzset()
    try:
        result = run_nightly(database, dt.date(2026, 11, 1), dt.date(2026, 11, 6), experiments)
        with duckdb.connect(str(database)) as con:  # the next night's event, after the row logged in 2099
            con.execute(f"insert into raw.events values {NEXT_NIGHT}")
        next_night = run_nightly(database, dt.date(2026, 11, 6), dt.date(2026, 11, 6), experiments)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        time.tzset()
    with duckdb.connect(str(database), read_only=True) as con:
        yield con, result, next_night


def test_the_job_survives_bad_input(bad_run):
    _, result, _ = bad_run
    assert result.success


def test_every_bad_row_is_quarantined_with_its_reason(bad_run):
    con, *_ = bad_run
    quarantined = read_frame(con, "select source_table, quarantine_reason, count(*) as n from marts.quarantined_rows group by all")
    seen = {(r["source_table"], r["quarantine_reason"]): r["n"] for r in quarantined.iter_rows(named=True)}
    planted = {("assignments", reason): 1 for *_, reason in ASSIGNMENTS if reason and " " not in reason}
    planted |= {("events", reason): 1 for *_, reason in EVENTS if reason}
    planted |= {("units", "duplicate_unit_id"): 1}
    assert seen == planted


def test_raw_rows_equal_clean_plus_quarantined(bad_run):
    con, result, _ = bad_run
    counts = {r["source_table"]: r for r in read_frame(con, "select * from marts.raw_row_counts").iter_rows(named=True)}
    assert counts["assignments"]["raw_rows"] == len(ASSIGNMENTS)
    assert counts["events"]["raw_rows"] == len(EVENTS) + 2  # and the next night's events
    for row in counts.values():
        assert row["raw_rows"] == row["clean_rows"] + row["quarantined_rows"]
    health = [m for m in result.get_asset_materialization_events()
              if m.event_specific_data.materialization.asset_key == dg.AssetKey("experiment_health")]  # fmt: skip
    assert len(health) == 6  # one per look of the run, 2026-11-01 to 2026-11-06
    metadata = health[-1].event_specific_data.materialization.metadata
    assert metadata["raw_rows[assignments]"].value == f"{len(ASSIGNMENTS)} = 6 clean + 8 quarantined"
    assert metadata["raw_rows[events]"].value == f"{len(EVENTS)} = 6 clean + 11 quarantined"
    assert metadata["raw_rows[units]"].value == "7 = 6 clean + 1 quarantined"


def test_timestamps_are_staged_in_utc_whatever_the_zone(bad_run):
    """Under TZ=America/Los_Angeles: a text timestamp with an offset and a timestamptz are converted to UTC, and a
    timestamp without a zone is taken as UTC (not shifted by the session's 8 hours)."""
    con, *_ = bad_run
    staged = dict(con.sql("select event_id, occurred_at from staging.stg_events where event_id in ('e4', 'e15')").fetchall())
    assert staged == {"e4": dt.datetime(2026, 11, 3, 10), "e15": dt.datetime(2026, 11, 3, 10)}
    # a timestamptz source: the instant in UTC, not the session's local time
    [(assigned,)] = con.sql("select assigned_at from staging.stg_assignments where unit_id = 'u1'").fetchall()
    assert assigned == dt.datetime(2026, 11, 1, 10)


def test_a_row_logged_in_the_future_does_not_stop_the_next_nights_rows(bad_run):
    """...and a row that arrives with a logged_at before the last build's scope is read too (a full refresh)."""
    con, _, next_night = bad_run
    assert next_night.success
    assert con.sql("select count(*) from staging.stg_events where event_id in ('e16', 'e17')").fetchall() == [(2,)]
    assert con.sql("select max(logged_at) from staging.stg_events_checked where quarantine_reason is null"
                   ).fetchall() == [(dt.datetime(2026, 11, 6, 8, 1),)]  # fmt: skip


def test_a_unit_in_two_variants_is_excluded_and_counted(bad_run):
    con, *_ = bad_run
    [(crossovers, exposed)] = con.sql(
        "select crossover_units, exposed_units from marts.exposure_summary where experiment_id = 'exp_live'"
    ).fetchall()
    assert (crossovers, exposed) == (1, 2)
    assert con.sql("select count(*) from intermediate.int_exposures where unit_id = 'u3'").fetchall() == [(0,)]


def test_an_experiment_with_no_exposures_yet_has_no_results_and_says_so(bad_run):
    con, *_ = bad_run
    results = read_frame(con, "select * from main.experiment_results where experiment_id = 'exp_waiting'")
    assert (results["n_control"] + results["n_treatment"] == 0).all()
    assert results["status"].is_in(["insufficient_sample", "invalid_input"]).all()
    srm = read_frame(con, "select * from main.experiment_health where experiment_id = 'exp_waiting'"
                          " and check_name = 'sample_ratio_mismatch'")  # fmt: skip
    assert (srm["status"] == "warn").all()


def test_an_ended_experiment_stops_at_its_end_date(bad_run):
    con, *_ = bad_run
    [(last,)] = con.sql("select max(as_of_date) from main.experiment_results where experiment_id = 'exp_ended'").fetchall()
    assert str(last) == "2026-11-03"
    [(live,)] = con.sql("select max(as_of_date) from main.experiment_results where experiment_id = 'exp_live'").fetchall()
    assert str(live) == "2026-11-06"  # the data watermark: the next night's event


def test_verdict_run_leaves_out_only_an_invalid_spec(tmp_path: Path, capsys):
    """The partitions start at the earliest valid spec's start, and `verdict run` names the invalid one, instead of
    refusing to run anything."""
    from pipelines.assets.partitions import first_as_of_date
    from pipelines.cli import _warn_invalid_specs

    project = copy_demo_project(tmp_path / "project")
    experiments = project / "experiments"
    shutil.rmtree(experiments)
    experiments.mkdir()
    (experiments / "exp_live.yml").write_text(yaml.safe_dump(spec("exp_live", start_date="2024-03-05")))
    (experiments / "exp_broken.yml").write_text(yaml.safe_dump(spec("exp_broken", start_date="2024-01-01", alpha=2)))
    assert first_as_of_date(load_project(project)) == dt.date(2024, 3, 5)  # the data's dates, not a fixed year
    _warn_invalid_specs(experiments)
    assert "exp_broken.yml" in capsys.readouterr().out
    (project / "verdict.yml").write_text((project / "verdict.yml").read_text() + "first_date: 2023-12-01\n")
    assert first_as_of_date(load_project.__wrapped__(project)) == dt.date(2023, 12, 1)


def test_an_empty_experiments_folder_runs_and_says_so(tmp_path: Path, manifest: Path):
    empty = tmp_path / "experiments"
    empty.mkdir()
    database = tmp_path / "verdict.duckdb"
    build_warehouse(database)
    result = run_nightly(database, dt.date(2026, 11, 5), dt.date(2026, 11, 5), empty)
    assert result.success
    [check] = [e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
               and e.event_specific_data.check_name == "experiment_specs_are_valid"]  # fmt: skip
    assert check.passed and check.description == f"no experiment specs in {empty}: nothing to analyse"


def run_failure(database: Path, experiments: Path) -> str:
    """The nightly job on a warehouse that it must refuse: the failed step's message."""
    result = run_nightly(database, dt.date(2026, 11, 5), dt.date(2026, 11, 5), experiments)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.event_specific_data.error.message


def test_a_renamed_source_column_names_the_column_and_the_fix(tmp_path: Path, manifest: Path):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "exp_live.yml").write_text(yaml.safe_dump(spec("exp_live")))
    database = tmp_path / "verdict.duckdb"
    build_warehouse(database)
    with duckdb.connect(str(database)) as con:
        con.execute("alter table raw.events rename column value to amount")
    message = run_failure(database, experiments)
    assert "verdict.yml: sources.events.columns.value: table raw.events has no column 'value'" in message
    assert "amount" in message and "set sources.events.columns.value to the column" in message


def test_an_empty_warehouse_says_which_sources_are_missing(tmp_path: Path, manifest: Path):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "exp_live.yml").write_text(yaml.safe_dump(spec("exp_live")))
    message = run_failure(tmp_path / "verdict.duckdb", experiments)
    for key, table in (("units", "raw.units"), ("assignments", "raw.assignments"), ("events", "raw.events")):
        assert f"verdict.yml: sources.{key}: table {table} does not exist" in message
    assert "verdict simulate" in message


def test_a_warehouse_held_by_another_run_is_refused_with_the_way_to_queue(tmp_path: Path, capsys):
    import subprocess
    import sys

    import typer

    from pipelines.cli import _refuse_if_locked

    database = tmp_path / "verdict.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(database)!r}); print(1, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "1"  # it holds the file now
        with pytest.raises(typer.Exit):
            _refuse_if_locked(database)
    finally:
        holder.kill()
    out = capsys.readouterr().out
    assert f"PID {holder.pid}" in out and "DAGSTER_HOME" in out

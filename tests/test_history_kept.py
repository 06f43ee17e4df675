"""Nothing already in the history disappears: a look the nightly job cannot recompute keeps what an earlier run
wrote, and the run says which looks it skipped and why.

On a small simulated warehouse, every look from 11-01 to 11-21 is written once. Then (1) one spec is made invalid
and the whole range is backfilled: that experiment's results, decisions and health stay as they were, with a failed
`experiment_spec` check at every look, while the others are rewritten; (2) the last day's events are quarantined,
so the data watermark moves back a day, and the last look is run again: it is kept, and the run says it is past
the watermark.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from conftest import run_nightly
from pipelines.cli import _skipped_looks
from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.registry.spec import load_specs
from pipelines.warehouse import read_frame

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # two minutes or more

TABLES = ("experiment_results", "experiment_health", "experiment_decisions")
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 21)
BROKEN = "checkout_redesign"
QUIET = "playlist_recs"  # a group-sequential experiment without new units on its last day


def run_looks(database: Path, start: dt.date, end: dt.date, experiments: Path) -> dg.ExecuteInProcessResult:
    """The nightly job for the looks from start to end, with the specs of `experiments`."""
    result = run_nightly(database, start, end, experiments)
    assert result.success
    return result


def snapshot(database: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: read_frame(con, f"select * from main.{t}") for t in TABLES}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, manifest: Path):
    """The history after the first run, after the backfill with an invalid spec, and after the watermark moved."""
    from pipelines.simulation import simulate

    root = tmp_path_factory.mktemp("kept")
    database = root / "verdict.duckdb"
    experiments = root / "experiments"
    shutil.copytree(DEMO_EXPERIMENTS, experiments)
    simulate(database, experiments=load_specs(DEMO_EXPERIMENTS), units=4000, seed=3)
    with duckdb.connect(str(database)) as con:  # no new playlist_recs units on the last day (nor triggers)
        con.execute(
            "delete from raw.assignments where experiment_id = ? and cast(assigned_at as date) = ?", [QUIET, LAST]
        )
        con.execute(
            "delete from raw.events where cast(occurred_at as date) = ?"
            " and unit_id in (select unit_id from raw.assignments where experiment_id = ?)",
            [LAST, QUIET],
        )
    first = run_looks(database, FIRST, LAST, experiments)
    written = snapshot(database)
    spec = experiments / f"{BROKEN}.yml"
    spec.write_text(spec.read_text() + "\nowner_team: growth\n")  # an unknown field: the spec is invalid
    backfill = run_looks(database, FIRST, LAST, experiments)
    backfilled = snapshot(database)
    shutil.copy(DEMO_EXPERIMENTS / spec.name, spec)
    with duckdb.connect(str(database)) as con:  # the last day's events can no longer be trusted
        con.execute("update raw.events set logged_at = null where cast(occurred_at as date) = ?", [LAST])
    rerun = run_looks(database, LAST, LAST, experiments)
    rerun_tables = snapshot(database)
    return (first, written), (backfill, backfilled), (rerun, rerun_tables)


def rows_of(frame: pl.DataFrame, experiment: str, *, other: bool = False) -> pl.DataFrame:
    chosen = pl.col("experiment_id") == experiment
    return frame.filter(~chosen if other else chosen)


def test_an_invalid_spec_keeps_its_experiments_history(runs):
    (first, written), (backfill, backfilled), _ = runs
    for table in ("experiment_results", "experiment_decisions"):
        before, after = rows_of(written[table], BROKEN), rows_of(backfilled[table], BROKEN)
        assert before.height > 0 and after.equals(before), table  # kept as the first run wrote them
        assert set(rows_of(backfilled[table], BROKEN, other=True)["run_id"]) == {backfill.run_id}, table
    health = rows_of(backfilled["experiment_health"], BROKEN)
    spec_checks = health.filter(pl.col("check_name") == "experiment_spec")
    assert spec_checks.height == (LAST - FIRST).days + 1
    assert (spec_checks["status"] == "fail").all() and spec_checks["detail"].str.contains("owner_team").all()
    others = health.filter(pl.col("check_name") != "experiment_spec")
    assert others.equals(rows_of(written["experiment_health"], BROKEN).filter(pl.col("check_name") != "experiment_spec"))
    skipped = _skipped_looks(backfill)
    assert f"{BROKEN} {FIRST} to {LAST}: the spec is invalid" in skipped


def test_a_look_past_a_watermark_that_moved_back_is_kept(runs):
    (_, written), (_, backfilled), (rerun, after) = runs
    for table in TABLES:
        last = pl.col("as_of_date") == LAST
        kept = backfilled[table].filter(last)
        assert kept.height > 0 and after[table].filter(last).sort(kept.columns).equals(kept.sort(kept.columns)), table
    skipped = _skipped_looks(rerun)
    assert f"past the data watermark ({LAST - dt.timedelta(days=1)})" in skipped
    assert "playlist_recs" in skipped


def test_a_look_without_new_units_repeats_the_previous_verdict(runs):
    """No playlist_recs unit arrives on the last day: that look adds no information, so its group-sequential bound
    is the previous look's and its decision is the previous look's, not "end" for want of alpha."""
    (_, written), _, _ = runs
    cumulative = ["minutes_played", "conversion", "premium_upgrade", "purchases"]  # windowed ones still gain units
    results = rows_of(written["experiment_results"], QUIET).filter(pl.col("metric_id").is_in(cumulative))
    day = lambda date: results.filter(pl.col("as_of_date") == date).sort("metric_id", "treatment")  # noqa: E731
    before, last = day(LAST - dt.timedelta(days=1)), day(LAST)
    assert (last["n_control"] + last["n_treatment"]).equals(before["n_control"] + before["n_treatment"])
    assert last.height == len(cumulative) and last["critical_value"].is_finite().all()
    assert last["critical_value"].equals(before["critical_value"])
    decisions = rows_of(written["experiment_decisions"], QUIET)
    verdict = lambda date: decisions.filter(pl.col("as_of_date") == date).sort("treatment")["decision"].to_list()  # noqa: E731
    assert verdict(LAST) == verdict(LAST - dt.timedelta(days=1))

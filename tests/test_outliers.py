"""One bad value never flips a decision with every check green.

A small simulated warehouse is analysed twice at its last look, once clean and once with two planted values: a
stream of -5,000,000 minutes by a playlist_recs unit (outside minutes_played's valid_range: set aside and counted,
so the results equal the clean run's), and a purchase of 10,000,000 by a checkout_redesign unit (a plausible
value, but one unit then makes most of revenue_per_purchase's spread: the dominant_unit check fails and names it).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import run_nightly
from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.registry.spec import load_specs
from pipelines.warehouse import read_frame

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # two minutes or more

LOOK = dt.date(2026, 11, 21)
COMPARED = ["metric_id", "treatment", "n_control", "n_treatment", "estimate", "std_error", "p_value", "status"]


def analyse(database: Path) -> None:
    assert run_nightly(database, LOOK, LOOK).success


def plant(con: duckdb.DuckDBPyConnection, experiment: str, event_type: str, value: float, event_id: str) -> str:
    """An event of `value` by a treatment unit of `experiment`, a day after its exposure; the unit."""
    [(unit, at)] = con.sql(
        """
        select unit_id, min(assigned_at) + interval 1 day from raw.assignments
        where experiment_id = ? and variant not in ('control') group by unit_id order by unit_id limit 1
        """,
        params=[experiment],
    ).fetchall()
    con.execute(
        "insert into raw.events values (?, ?, ?, ?, ?, ? + interval 1 minute)", [event_id, unit, event_type, at, value, at]
    )
    return unit


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, manifest: Path):
    from pipelines.simulation import simulate

    root = tmp_path_factory.mktemp("outliers")
    clean, planted = root / "clean.duckdb", root / "planted.duckdb"
    simulate(clean, experiments=load_specs(DEMO_EXPERIMENTS), units=4000, seed=11)
    shutil.copy(clean, planted)
    with duckdb.connect(str(planted)) as con:
        listener = plant(con, "playlist_recs", "stream", -5e6, "outlier_stream")
        buyer = plant(con, "checkout_redesign", "purchase", 1e7, "outlier_purchase")
    analyse(clean)
    analyse(planted)
    return clean, planted, listener, buyer


def results(database: Path, experiment: str, metric: str) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        return read_frame(
            con, "select * from main.experiment_results where experiment_id = ? and metric_id = ? and as_of_date = ?",
            [experiment, metric, LOOK],
        ).select(COMPARED).sort("treatment")  # fmt: skip


def test_a_value_outside_the_valid_range_is_set_aside_and_counted(runs):
    clean, planted, _, _ = runs
    with duckdb.connect(str(planted), read_only=True) as con:
        [(out_of_range,)] = con.sql(
            "select out_of_range_measurements from marts.metric_catalogue where metric_id = 'minutes_played'"
        ).fetchall()
    assert out_of_range == 1
    with_outlier, without = (results(db, "playlist_recs", "minutes_played") for db in (planted, clean))
    exact = ["metric_id", "treatment", "n_control", "n_treatment", "status"]
    assert with_outlier.select(exact).equals(without.select(exact)) and without.height == 1
    for column in ("estimate", "std_error", "p_value"):  # equal but for the order of float additions
        assert with_outlier[column].to_list() == pytest.approx(without[column].to_list(), rel=1e-9), column


def test_one_unit_dominating_a_metric_fails_a_health_check(runs):
    clean, planted, _, buyer = runs
    query = "select status, detail from main.experiment_health where experiment_id = ? and check_name = 'dominant_unit' and as_of_date = ?"
    with duckdb.connect(str(planted), read_only=True) as con:
        [(status, detail)] = con.sql(query, params=["checkout_redesign", LOOK]).fetchall()
        [(decision, reason)] = con.sql(
            "select decision, reason from main.experiment_decisions where experiment_id = ? and as_of_date = ? limit 1",
            params=["checkout_redesign", LOOK],
        ).fetchall()
    assert status == "fail" and buyer in detail and "revenue_per_purchase" in detail
    assert decision == "abort" and "dominant_unit" in reason
    with duckdb.connect(str(clean), read_only=True) as con:
        [(clean_status, _)] = con.sql(query, params=["checkout_redesign", LOOK]).fetchall()
    assert clean_status != "fail"

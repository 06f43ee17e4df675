"""The benchmarks' generated inputs are what they claim to be, and the nightly benchmark runs (timings are printed
by `verdict bench stats` and `verdict bench nightly`, never asserted)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipelines.benchmark import (
    BENCH_END, bench_nightly, comparison_frame, sequential_analysis, sequential_frame, variant_frame,
)  # fmt: skip
from pipelines.stats.comparison import analyse, compare


def test_comparison_and_variant_frames_give_the_same_results():
    pairs = comparison_frame(500)
    direct = analyse(pairs).sort("experiment_id", "metric_id")
    paired = compare(variant_frame(pairs)).with_columns(pl.col("experiment_id", "metric_id").cast(pl.Int64))
    assert direct.height == paired.height == 500
    assert (direct["status"] == "ok").all()
    joined = direct.join(paired, on=["experiment_id", "metric_id"], suffix="_paired")
    assert (joined["p_value"] - joined["p_value_paired"]).abs().max() < 1e-12


def test_sequential_frame_has_a_schedule_per_experiment():
    looks = sequential_frame(experiments=20, comparisons_per_experiment=3, looks=14)
    assert looks.height == 20 * 3 * 14
    schedules = looks.group_by("experiment_id", "metric_id").agg(pl.col("information_fraction").sort_by("look"))
    assert schedules.height == 60
    assert all(all(a < b for a, b in zip(s, s[1:])) for s in schedules["information_fraction"])
    result = sequential_analysis(looks)
    assert result["critical_value"].null_count() == 0 and result.height == looks.height


@pytest.mark.slow
def test_the_nightly_benchmark_runs_at_a_small_size(tmp_path, manifest):
    """`verdict bench nightly` at 3,000 users: every figure is there, both nights ran the real job, and the floor
    computed one row per experiment x metric x variant of the look the full night's marts hold."""
    import duckdb

    figures = bench_nightly(tmp_path, units=3_000, experiments=4, metrics=5, activity=0.5, traffic=0.3)
    for key in ("bare_s", "full_s", "incremental_s", "stats_s", "peak_rss_gib", "full_over_bare", "incremental_over_full"):
        assert figures[key] > 0, key
    assert figures["events"] > 10_000 and figures["comparisons"] > 0
    with duckdb.connect(str(tmp_path / "project" / "warehouse.duckdb"), read_only=True) as con:
        cells, latest = con.execute(
            "select count(*) filter (where as_of_date = ?), max(as_of_date) from marts.metric_sufficient_stats",
            [BENCH_END - dt.timedelta(days=1)],
        ).fetchone()  # fmt: skip
    assert figures["floor_rows"] == cells > 0
    assert latest == BENCH_END  # the incremental night added the new day's look

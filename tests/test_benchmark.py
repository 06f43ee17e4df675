"""The benchmark's generated inputs are what they claim to be (timings are printed by `verdict bench stats`)."""

from __future__ import annotations

import polars as pl

from pipelines.benchmark import comparison_frame, sequential_analysis, sequential_frame, variant_frame
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

"""The effect by days since exposure: marts.metric_exposure_day_stats equals a count over the per-unit rows, and the
nightly job tests it into main.experiment_exposure_day_results, exploratory."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.warehouse import read_frame

pytestmark = pytest.mark.e2e

DAYS_SHOWN = 28  # dbt_project.yml: exposure_days_shown

UNITS_QUERY = """
select units.experiment_id, units.metric_id, units.variant, units.unit_id, units.exposure_date,
    cast(units.window_start_at as date) as window_start_date,
    cast(units.window_end_at - interval 1 second as date) as window_last_date, days.last_date
from intermediate.int_unit_metrics as units
inner join (select distinct experiment_id, last_date from intermediate.int_experiment_days) as days using (experiment_id)
where units.analysis_type = 'mean' and units.aggregation in ('sum', 'count') and units.exposure_date <= days.last_date
"""


def brute_force(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """n, sum and sum of squares per experiment x metric x variant x day since exposure, unit by unit."""
    units = read_frame(con, UNITS_QUERY).with_columns(
        first_day=(pl.col("window_start_date") - pl.col("exposure_date")).dt.total_days(),
        last_day=pl.min_horizontal(
            (pl.col("last_date") - pl.col("exposure_date")).dt.total_days(),
            (pl.col("window_last_date") - pl.col("exposure_date")).dt.total_days().fill_null(DAYS_SHOWN - 1),
            pl.lit(DAYS_SHOWN - 1),
        ),
    )
    unit_days = units.with_columns(day=pl.int_ranges("first_day", pl.col("last_day") + 1)).explode("day").drop_nulls("day")
    daily = read_frame(con, "select experiment_id, unit_id, metric_id, measured_date, daily_value from intermediate.int_unit_metric_daily")
    keyed = unit_days.with_columns(measured_date=pl.col("exposure_date") + pl.duration(days="day"))
    values = keyed.join(daily, on=["experiment_id", "unit_id", "metric_id", "measured_date"], how="left")
    return values.group_by("experiment_id", "metric_id", "variant", "day").agg(
        n=pl.len(), sum=pl.col("daily_value").fill_null(0).sum(), sum_sq=(pl.col("daily_value").fill_null(0) ** 2).sum()
    )


def test_the_by_day_statistics_equal_a_count_over_units(nightly_run) -> None:
    database, _ = nightly_run
    with duckdb.connect(str(database), read_only=True) as con:
        expected = brute_force(con)
        mart = read_frame(con, "select * from marts.metric_exposure_day_stats").with_columns(
            day=pl.col("segment").cast(pl.Int64)
        )
    assert set(mart["dimension"]) == {"days_since_exposure"} and mart["day"].is_between(0, DAYS_SHOWN - 1).all()
    assert mart["metric_id"].n_unique() >= 3 and mart["day"].max() >= 14  # several metrics, weeks of days
    key = ["experiment_id", "metric_id", "variant", "day"]
    joined = expected.join(mart, on=key, how="full", coalesce=True, suffix="_mart")
    assert joined.height == expected.height == mart.height
    assert (joined["n"] == joined["n_mart"]).all()
    for column in ("sum", "sum_sq"):
        assert np.allclose(joined[column].to_numpy(), joined[f"{column}_mart"].to_numpy(), rtol=1e-9, atol=1e-9)


def test_the_nightly_job_tests_each_day(nightly_run) -> None:
    database, _ = nightly_run
    with duckdb.connect(str(database), read_only=True) as con:
        results = read_frame(con, "select * from main.experiment_exposure_day_results")
        mart = read_frame(con, "select experiment_id, metric_id, segment, count(*) - 1 as treatments "
                               "from marts.metric_exposure_day_stats group by all")  # fmt: skip
    assert results["exploratory"].all() and set(results["dimension"]) == {"days_since_exposure"}
    per_day = results.group_by("experiment_id", "metric_id", "segment").len()
    assert per_day.join(mart, on=["experiment_id", "metric_id", "segment"])["len"].to_list() == \
        per_day.join(mart, on=["experiment_id", "metric_id", "segment"])["treatments"].to_list()  # fmt: skip
    assert per_day.height == mart.height
    # the planted lift of playlist_recs on minutes played shows on the days after exposure
    lifted = results.filter((pl.col("experiment_id") == "playlist_recs") & (pl.col("metric_id") == "minutes_played"))
    assert lifted.height > 0 and (lifted["relative_estimate"] > 0).mean() > 0.8

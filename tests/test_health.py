"""Health checks on planted problems: each check fails (or warns) on its problem and passes on healthy data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.analysis.health import (
    covariate_imbalance_health,
    daily_sample_ratio_health,
    dominant_unit_health,
    experiment_health,
    exposure_traffic_health,
    invalid_spec_health,
    metric_data_health,
    metric_model_health,
    quarantine_health,
)

START = dt.date(2026, 11, 1)


def counts(daily: dict[str, list[int]], weights: dict[str, float] | None = None) -> pl.DataFrame:
    """Cumulative exposure counts (as in marts.exposure_daily_counts) from new exposures per variant and day."""
    weights = weights or {v: 1 / len(daily) for v in daily}
    return pl.DataFrame(
        [
            {"experiment_id": "exp", "variant": v, "is_control": v == "control", "planned_weight": weights[v],
             "as_of_date": START + dt.timedelta(days=d), "exposed_units": int(np.sum(units[: d + 1]))}
            for v, units in daily.items()
            for d in range(len(units))
        ]
    )  # fmt: skip


def stats(cells: list[tuple[str, str, int, float, float, float, float]]) -> pl.DataFrame:
    """Sufficient statistics rows: (metric, variant, n, sum, sum_sq, cov_sum, cov_sum_sq) at one as-of date."""
    return pl.DataFrame(
        [
            {"experiment_id": "exp", "metric_id": m, "variant": v, "is_control": v == "control", "as_of_date": START,
             "metric_type": "mean", "n": n, "sum": s, "sum_sq": q, "cov_sum": cs, "cov_sum_sq": cq}
            for m, v, n, s, q, cs, cq in cells
        ]
    )  # fmt: skip


def moments_of(values: np.ndarray) -> tuple[float, float]:
    return float(values.sum()), float((values**2).sum())


def test_pre_exposure_imbalance_fails_and_balance_passes():
    rng = np.random.default_rng(1)
    control, treatment = rng.normal(10, 3, 5000), rng.normal(10, 3, 5000)
    shifted = treatment + 0.5  # the treatment group was already different before exposure
    rows = lambda t: stats([  # noqa: E731
        ("m", "control", 5000, 0.0, 1.0, *moments_of(control)), ("m", "treatment", 5000, 0.0, 1.0, *moments_of(t)),
    ])  # fmt: skip
    assert covariate_imbalance_health(rows(treatment))["status"].to_list() == ["pass"]
    failed = covariate_imbalance_health(rows(shifted)).row(0, named=True)
    assert failed["status"] == "fail" and failed["value"] < 1e-6 and "pre-exposure m" in failed["detail"]


def test_an_empty_metric_fails_and_a_waiting_window_passes():
    rows = stats([
        ("ok", "control", 100, 50.0, 80.0, 0.0, 0.0), ("ok", "treatment", 100, 40.0, 60.0, 0.0, 0.0),
        ("broken", "control", 100, 0.0, 0.0, 0.0, 0.0), ("broken", "treatment", 100, 0.0, 0.0, 0.0, 0.0),
        ("windowed", "control", 0, 0.0, 0.0, 0.0, 0.0), ("windowed", "treatment", 0, 0.0, 0.0, 0.0, 0.0),
    ])  # fmt: skip
    row = metric_data_health(rows).row(0, named=True)
    assert row["status"] == "fail" and row["value"] == 1.0 and row["detail"] == "no data among analysed units: broken"
    row = metric_data_health(rows.filter(pl.col("metric_id") != "broken")).row(0, named=True)
    assert row["status"] == "pass" and "windowed" in row["detail"]


def broken(*rows: tuple[str, str]) -> pl.DataFrame:
    """Broken metric models and the experiments that use them: (experiment_id, metric_id)."""
    return pl.DataFrame(rows, schema={"experiment_id": pl.String, "metric_id": pl.String}, orient="row")


def test_a_broken_metric_model_fails_only_the_experiments_that_use_it():
    days = pl.DataFrame({"experiment_id": ["exp", "exp", "other"], "as_of_date": [START, START, START]})
    health = metric_model_health(broken(("exp", "ratio_b"), ("exp", "ratio_a"), ("unlisted", "ratio_a")), days)
    health = health.sort("experiment_id")
    assert health.select("experiment_id", "status", "value").rows() == [
        ("exp", "fail", 2.0), ("other", "pass", 0.0),
    ]  # fmt: skip
    assert "broken metric model" in health["detail"][0] and "ratio_a, ratio_b" in health["detail"][0]
    assert (metric_model_health(broken(), days)["status"] == "pass").all()


def test_a_collapse_of_exposure_traffic_warns():
    steady = [100, 95, 90, 92, 88, 85, 83, 80, 78, 75]
    collapsed = steady[:8] + [9, 8]
    healthy = exposure_traffic_health(counts({"control": steady, "treatment": steady}))
    assert (healthy["status"] == "pass").all()
    warned = exposure_traffic_health(counts({"control": collapsed, "treatment": collapsed}))
    assert sorted(warned.filter(pl.col("status") == "warn")["as_of_date"]) == [START + dt.timedelta(days=d) for d in (8, 9)]


def test_one_day_of_lost_assignments_shows_in_the_daily_split():
    control = [500] * 10
    treatment = [500] * 5 + [350] + [500] * 4  # one arm lost 30% of its logs on day 5
    daily = daily_sample_ratio_health(counts({"control": control, "treatment": treatment}))
    assert sorted(daily.filter(pl.col("status") != "pass")["as_of_date"]) == [START + dt.timedelta(days=5)]
    assert (daily["status"] != "fail").all()  # a single day warns; the cumulative split decides


def test_quarantine_share_thresholds():
    days = pl.DataFrame({"experiment_id": ["exp"], "as_of_date": [START]})
    raw = lambda bad: pl.DataFrame({"source_table": ["events", "assignments"], "raw_rows": [1000, 1000],  # noqa: E731
                                    "clean_rows": [1000 - bad, 1000], "quarantined_rows": [bad, 0]})  # fmt: skip
    assert [quarantine_health(raw(b), days)["status"][0] for b in (5, 50, 200)] == ["pass", "warn", "fail"]


def test_every_check_reports_for_every_look():
    n = [200] * 10
    health = experiment_health(
        counts({"control": n, "treatment": n}),
        pl.DataFrame({"experiment_id": ["exp"], "assigned_units": [4000], "crossover_units": [10],
                      "exposed_units": [3990], "crossover_rate": [0.0025]}),
        stats([("m", "control", 2000, 10.0, 30.0, 5.0, 9.0), ("m", "treatment", 2000, 11.0, 33.0, 5.0, 9.0)]),
        pl.DataFrame({"source_table": ["events"], "raw_rows": [100], "clean_rows": [100], "quarantined_rows": [0]}),
        broken(),
    )  # fmt: skip
    assert set(health["check_name"]) == {
        "sample_ratio_mismatch", "daily_sample_ratio_mismatch", "crossover_rate", "covariate_imbalance",
        "metric_models", "metric_data", "exposure_traffic", "quarantined_rows", "experiment_spec",
    }  # fmt: skip
    assert (health["status"] == "pass").all()


def test_an_invalid_spec_fails_its_experiments_spec_check_at_every_look_of_the_run():
    invalid = pl.DataFrame({"experiment_id": ["exp", None], "problem": ["exp.yml: field 'x'", "Bad Name.yml: ..."]})
    looks = [START, START + dt.timedelta(days=1)]
    health = invalid_spec_health(invalid, looks)
    assert health.select("experiment_id", "as_of_date", "check_name", "status").rows() == [
        ("exp", START, "experiment_spec", "fail"), ("exp", looks[1], "experiment_spec", "fail"),
    ]  # a file not named by an id has no experiment to report on (the registry check names it)
    assert health["detail"].str.contains("field 'x'").all()


@pytest.mark.parametrize(("share", "status"), [(0.005, "pass"), (0.05, "warn"), (0.5, "fail")])
def test_quarantine_check_reads_sql_sums(share: float, status: str) -> None:
    """The row counts as a SQL sum returns them (HUGEINT, read as a decimal) still give the share, not 0."""
    import duckdb

    from pipelines.warehouse import read_frame

    raw = 20_000
    with duckdb.connect() as con:
        con.execute("create table checked as select i, i < ? as bad from range(?) as t(i)", [int(raw * share), raw])
        counts = read_frame(con, """
            select 'events' as source_table, count(*) as raw_rows,
                   sum(case when not bad then 1 else 0 end) as clean_rows,
                   sum(case when bad then 1 else 0 end) as quarantined_rows
            from checked
        """)  # fmt: skip
    days = pl.DataFrame({"experiment_id": ["e"], "as_of_date": [START]})
    [row] = quarantine_health(counts, days).to_dicts()
    assert row["status"] == status and row["value"] == pytest.approx(share)


def test_one_unit_dominating_a_metrics_spread_warns_then_fails():
    largest = pl.DataFrame({
        "experiment_id": ["a", "a", "b", "c", "d"], "metric_id": ["m", "n", "m", "m", "m"],
        "variant": ["control", "control", "control", "control", "control"], "as_of_date": [START] * 5,
        "n": [1000, 1000, 1000, 1000, 10], "largest_unit_share": [0.9, 0.3, 0.3, 0.05, 0.9],
        "largest_unit_id": ["u1", "u2", "u3", "u4", "u5"],
    })  # fmt: skip
    health = {r["experiment_id"]: r for r in dominant_unit_health(largest).iter_rows(named=True)}
    assert {e: r["status"] for e, r in health.items()} == {"a": "fail", "b": "warn", "c": "pass", "d": "pass"}
    assert "u1" in health["a"]["detail"] and "90.0%" in health["a"]["detail"]  # the worst metric of the look
    assert "no metric has 100 units" in health["d"]["detail"]  # 10 units: one unit's share is large by nature

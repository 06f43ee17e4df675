"""The synthetic warehouse: shape, determinism, planted dirt, planted truth and planted effects."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pytest

from pipelines.registry.spec import ExperimentSpec, MetricUse, load_specs
from pipelines.simulation import scenario, simulate
from pipelines.simulation import warehouse as warehouse_module
from pipelines.verdict_project import DEMO_EXPERIMENTS

EXPERIMENTS = DEMO_EXPERIMENTS
END = dt.date(2026, 11, 21)
FIRST = END - dt.timedelta(days=28)

EXPECTED_COLUMNS = {
    "units": [("unit_id", "VARCHAR"), ("country", "VARCHAR"), ("platform", "VARCHAR"), ("signup_date", "DATE")],
    "assignments": [
        ("experiment_id", "VARCHAR"), ("unit_id", "VARCHAR"), ("variant", "VARCHAR"),
        ("assigned_at", "TIMESTAMP"), ("logged_at", "TIMESTAMP"),
    ],
    "events": [
        ("event_id", "VARCHAR"), ("unit_id", "VARCHAR"), ("event_type", "VARCHAR"),
        ("occurred_at", "TIMESTAMP"), ("value", "DOUBLE"), ("logged_at", "TIMESTAMP"),
    ],
    "simulation_truth": [
        ("experiment_id", "VARCHAR"), ("variant", "VARCHAR"), ("metric_id", "VARCHAR"),
        ("true_relative_effect", "DOUBLE"), ("planted_srm", "BOOLEAN"),
    ],
}


# Metrics of the rare event types, listed here for some experiments whether or not their spec files do.
EXTRA_METRICS = {
    "checkout_redesign": [
        MetricUse(metric="premium_upgrade", role="success"),
        MetricUse(metric="crash_rate", role="deterioration", preferred_direction="decrease"),
    ],
    "playlist_recs": [MetricUse(metric="premium_upgrade", role="deterioration")],
}


def _with_metrics(spec: ExperimentSpec, extra: list[MetricUse]) -> ExperimentSpec:
    """The spec with the metrics of `extra` it does not list yet appended."""
    listed = {use.metric for use in spec.metrics}
    metrics = [*spec.metrics, *(use for use in extra if use.metric not in listed)]
    return ExperimentSpec.model_validate(spec.model_dump() | {"metrics": metrics})


@pytest.fixture(scope="module")
def specs() -> list[ExperimentSpec]:
    return [_with_metrics(spec, EXTRA_METRICS.get(spec.id, [])) for spec in load_specs(EXPERIMENTS)]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, specs: list[ExperimentSpec]) -> duckdb.DuckDBPyConnection:
    """A 20,000-unit warehouse (the size the end-to-end test uses)."""
    path = tmp_path_factory.mktemp("sim") / "warehouse.duckdb"
    counts = simulate(path, experiments=specs, units=20_000, seed=11)
    assert counts["units"] == 20_000
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    """All rows of a raw table, sorted (NULLs first), for an order-free comparison."""
    cols = ", ".join(f"{i} NULLS FIRST" for i in range(1, len(EXPECTED_COLUMNS[table]) + 1))
    return con.execute(f"SELECT * FROM raw.{table} ORDER BY {cols}").fetchall()


def test_same_seed_same_tables_other_seed_other_tables(tmp_path: Path, specs: list[ExperimentSpec]) -> None:
    paths = [tmp_path / f"{name}.duckdb" for name in ("a", "b", "c")]
    counts = [simulate(p, experiments=specs, units=1_500, seed=s) for p, s in zip(paths, (3, 3, 4), strict=True)]
    assert counts[0] == counts[1]
    cons = [duckdb.connect(str(p), read_only=True) for p in paths]
    try:
        for table in EXPECTED_COLUMNS:
            assert _rows(cons[0], table) == _rows(cons[1], table), table
        assert _rows(cons[0], "events") != _rows(cons[2], "events")
    finally:
        for con in cons:
            con.close()


def test_chunking_does_not_change_the_data(
    tmp_path: Path, specs: list[ExperimentSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, chunked = tmp_path / "whole.duckdb", tmp_path / "chunked.duckdb"
    simulate(whole, experiments=specs, units=1_200, seed=5)
    monkeypatch.setattr(warehouse_module, "CHUNK_UNITS", 500)
    simulate(chunked, experiments=specs, units=1_200, seed=5)
    with duckdb.connect(str(whole), read_only=True) as a, duckdb.connect(str(chunked), read_only=True) as b:
        for table in EXPECTED_COLUMNS:
            assert _rows(a, table) == _rows(b, table), table


def test_rerun_replaces_raw_and_leaves_other_schemas(tmp_path: Path, specs: list[ExperimentSpec]) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.keep AS SELECT 42 AS answer")
    simulate(path, experiments=specs, units=500, seed=1)
    counts = simulate(path, experiments=specs, units=300, seed=1)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT answer FROM marts.keep").fetchone() == (42,)
        for table, n in counts.items():
            assert con.execute(f"SELECT count(*) FROM raw.{table}").fetchone() == (n,)
    assert counts["units"] == 300


def test_tables_and_column_types(warehouse: duckdb.DuckDBPyConnection) -> None:
    for table, columns in EXPECTED_COLUMNS.items():
        got = warehouse.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        assert got == columns, table


def test_units_look_like_a_population(warehouse: duckdb.DuckDBPyConnection) -> None:
    countries = dict(warehouse.execute("SELECT country, count(*) FROM raw.units GROUP BY ALL").fetchall())
    assert set(countries) == set(scenario.COUNTRIES)
    platforms = dict(warehouse.execute("SELECT platform, count(*) FROM raw.units GROUP BY ALL").fetchall())
    assert set(platforms) == {"ios", "android", "web"}
    first, last, distinct = warehouse.execute(
        "SELECT min(signup_date), max(signup_date), count(DISTINCT unit_id) FROM raw.units"
    ).fetchone()
    assert last < FIRST and first < FIRST - dt.timedelta(days=3 * 365)
    assert distinct == 20_000


def test_events_cover_history_with_realistic_values(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = warehouse.execute(
        f"""
        SELECT event_type, min(occurred_at)::DATE, max(occurred_at)::DATE, min(value), max(value), avg(value),
               count(*)
        FROM raw.events
        WHERE unit_id IS NOT NULL AND occurred_at BETWEEN DATE '{FIRST}' AND DATE '{END}' + 1
        GROUP BY ALL
        """
    ).fetchall()
    stats = {r[0]: r[1:] for r in rows}
    assert set(stats) == {"session", "stream", "click", "purchase", "upgrade", "crash"}
    for first, last, *_ in stats.values():
        assert first == FIRST and last == END
    for event_type in ("session", "click", "upgrade", "crash"):
        assert stats[event_type][2] == stats[event_type][3] == 1, event_type
    assert stats["click"][5] > 1.5 * stats["session"][5]  # several clicks per session
    assert stats["stream"][2] >= 0 and stats["stream"][3] > 5 * stats["stream"][4]  # skewed minutes per session
    assert stats["purchase"][5] < 0.1 * stats["session"][5]  # purchases are rare
    assert stats["purchase"][3] > 10 * stats["purchase"][4]  # heavy-tailed revenue
    assert stats["upgrade"][5] < 0.3 * stats["purchase"][5]  # upgrades are rarer still
    # Per-unit activity persists: pre-period minutes predict post-period minutes (CUPED has something to use).
    corr = warehouse.execute(
        """
        SELECT corr(pre, post) FROM (
            SELECT unit_id, sum(value) FILTER (WHERE occurred_at < DATE '2026-11-01') AS pre,
                   sum(value) FILTER (WHERE occurred_at >= DATE '2026-11-01') AS post
            FROM raw.events WHERE event_type = 'stream' AND unit_id IS NOT NULL
              AND occurred_at BETWEEN DATE '2026-10-24' AND DATE '2026-11-22'
            GROUP BY unit_id)
        """
    ).fetchone()[0]
    assert corr > 0.4


def test_crashes_and_upgrades_happen_in_sessions_at_plausible_rates(warehouse: duckdb.DuckDBPyConnection) -> None:
    # Clean rows only, and sessions at least two days before the end (so that no late row is missing yet).
    rows = warehouse.execute(
        f"""
        WITH ev AS (
            SELECT DISTINCT ON (event_id) regexp_extract(event_id, '^e[0-9]+[.][0-9]+') AS session_key, *
            FROM raw.events
            WHERE unit_id IS NOT NULL AND event_id NOT LIKE '%x' AND occurred_at < DATE '{END}' - 2
        ), s AS (
            SELECT session_key, unit_id, occurred_at FROM ev WHERE event_type = 'session'
        )
        SELECT ev.event_type, count(*), count(DISTINCT ev.session_key), count(DISTINCT ev.unit_id),
               count(*) FILTER (WHERE s.unit_id IS DISTINCT FROM ev.unit_id),
               min(epoch(ev.occurred_at) - epoch(s.occurred_at)), max(epoch(ev.occurred_at) - epoch(s.occurred_at)),
               (SELECT count(*) FROM s), (SELECT count(DISTINCT unit_id) FROM s)
        FROM ev LEFT JOIN s USING (session_key)
        WHERE ev.event_type IN ('upgrade', 'crash')
        GROUP BY ALL
        """
    ).fetchall()
    stats = {r[0]: r[1:] for r in rows}
    for event_type, (events, sessions_with, _, outside, *_) in stats.items():
        assert events == sessions_with and outside == 0, event_type  # at most one per session, always in one
    (crashes, *_, first, last, sessions, active_units) = stats["crash"]
    assert 0.018 * sessions < crashes < 0.022 * sessions  # ~2% of sessions crash
    assert 0 < first and last < 31 * 60  # within the first half hour of the session
    (upgrades, _, upgraders, _, first, last, *_) = stats["upgrade"]
    assert 0.002 * sessions < upgrades < 0.012 * sessions  # a few sessions in a thousand end in an upgrade
    assert 0.02 * active_units < upgraders < 0.15 * active_units  # a few percent of units within four weeks
    assert upgraders < upgrades  # some units upgrade more than once
    assert 5 * 60 <= first and last < 30 * 60  # minutes after the session starts


def test_every_bad_kind_is_present_in_small_numbers(warehouse: duckdb.DuckDBPyConnection, specs) -> None:
    known = {(s.id, v.id) for s in specs for v in s.variants}
    ids = {s.id for s in specs}
    rows = warehouse.execute("SELECT * FROM raw.assignments").fetchall()
    total = len(rows)
    kinds = {
        "null_unit": sum(r[1] is None for r in rows),
        "unknown_experiment": sum(r[0] not in ids for r in rows),
        "unknown_variant": sum(r[0] in ids and (r[0], r[2]) not in known for r in rows),
        "epoch_timestamp": sum(r[3].year == 1970 for r in rows),
        "future_timestamp": sum(r[3] > r[4] + dt.timedelta(days=1) for r in rows),
    }
    for kind, n in kinds.items():
        assert 0 < n < 0.002 * total, (kind, n)
    late = sum(r[4] - r[3] > dt.timedelta(hours=1) for r in rows if 2000 < r[3].year < 2090)
    assert 0.01 * total < late < 0.06 * total
    assert max(r[4] for r in rows) < dt.datetime(END.year, END.month, END.day) + dt.timedelta(days=1)

    events = warehouse.execute(
        f"""
        SELECT count(*) FILTER (WHERE unit_id IS NULL),
               count(*) FILTER (WHERE year(occurred_at) = 1970),
               count(*) FILTER (WHERE occurred_at > logged_at + INTERVAL 1 DAY),
               count(*) - count(DISTINCT event_id),
               count(*) FILTER (WHERE logged_at > occurred_at + INTERVAL 1 HOUR
                                  AND year(occurred_at) BETWEEN 2000 AND 2090),
               count(*), max(logged_at) < DATE '{END}' + 1
        FROM raw.events
        """
    ).fetchone()
    null_unit, epoch, future, duplicates, late_events, n_events, in_time = events
    assert all(0 < n < 0.0005 * n_events for n in (null_unit, epoch, future)), events
    assert 0 < duplicates < 0.005 * n_events
    assert 0.01 * n_events < late_events < 0.06 * n_events
    assert in_time


def test_repeats_and_crossovers(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = warehouse.execute(
        """
        SELECT experiment_id, count(*) AS n_rows, count(DISTINCT unit_id) AS n_units,
               count(DISTINCT unit_id) FILTER (WHERE n_variants > 1) AS crossed
        FROM (SELECT *, count(DISTINCT variant) OVER (PARTITION BY experiment_id, unit_id) AS n_variants
              FROM raw.assignments WHERE unit_id IS NOT NULL AND experiment_id <> 'legacy_paywall_test')
        GROUP BY ALL
        """
    ).fetchall()
    for experiment, n_rows, n_units, crossed in rows:
        assert n_rows > 2 * n_units, experiment  # units are logged again on later active days
        assert 0.001 * n_units < crossed < 0.012 * n_units, (experiment, crossed, n_units)


def test_assignment_respects_windows(warehouse: duckdb.DuckDBPyConnection, specs) -> None:
    for spec in specs:
        first, last = warehouse.execute(
            "SELECT min(assigned_at), max(assigned_at) FROM raw.assignments "
            "WHERE experiment_id = ? AND year(assigned_at) BETWEEN 2000 AND 2090",
            [spec.id],
        ).fetchone()
        assert first.date() == spec.start_date
        assert last.date() <= (spec.end_date or END)


def test_truth_table(warehouse: duckdb.DuckDBPyConnection, specs) -> None:
    truth = {
        (e, v, m): (effect, srm)
        for e, v, m, effect, srm in warehouse.execute("SELECT * FROM raw.simulation_truth").fetchall()
    }
    assert len(truth) == sum(len(s.variants) * len(s.metrics) for s in specs)
    for spec in specs:
        for variant in spec.variants:
            for use in spec.metrics:
                effect, srm = truth[(spec.id, variant.id, use.metric)]
                assert srm is (spec.id == "onboarding_flow")
                if variant.id == spec.control:
                    assert effect == 0
    plants = scenario.SCENARIO
    assert truth[("playlist_recs", "new_model", "minutes_played")][0] == plants["playlist_recs"].minutes["new_model"]
    assert truth[("checkout_redesign", "upsell", "minutes_played")][0] == plants["checkout_redesign"].minutes["upsell"]
    rate = plants["checkout_redesign"].purchase_rate["compact"]
    assert truth[("checkout_redesign", "compact", "purchases")][0] == rate
    assert 0.6 * rate < truth[("checkout_redesign", "compact", "conversion")][0] < rate  # saturation
    upgrade = plants["checkout_redesign"].upgrade_rate["upsell"]
    assert 0.8 * upgrade < truth[("checkout_redesign", "upsell", "premium_upgrade")][0] < upgrade  # saturation
    listed = {(e, m) for e, _, m in truth}
    assert {("checkout_redesign", "premium_upgrade"), ("checkout_redesign", "crash_rate")} <= listed
    assert ("playlist_recs", "premium_upgrade") in listed
    planted = {k for k, (effect, _) in truth.items() if effect != 0}
    assert planted == {
        ("playlist_recs", "new_model", "minutes_played"),
        ("checkout_redesign", "upsell", "minutes_played"),
        ("checkout_redesign", "compact", "purchases"),
        ("checkout_redesign", "compact", "conversion"),
        ("checkout_redesign", "upsell", "premium_upgrade"),
    }


def _chi_square_p(counts: list[int], weights: list[float]) -> float:
    """Pearson chi-square p-value of observed counts against planned weights (df = 1 or 2 in closed form)."""
    n = sum(counts)
    chi2 = sum((c - n * w) ** 2 / (n * w) for c, w in zip(counts, weights, strict=True))
    df = len(counts) - 1
    return math.erfc(math.sqrt(chi2 / 2)) if df == 1 else math.exp(-chi2 / 2)


def test_srm_planted_only_for_onboarding_and_visible_in_raw_counts(warehouse, specs) -> None:
    for spec in specs:
        counts = dict(
            warehouse.execute(
                "SELECT variant, count(*) FROM (SELECT unit_id, arg_min(variant, assigned_at) AS variant "
                "FROM raw.assignments WHERE experiment_id = ? AND unit_id IS NOT NULL GROUP BY unit_id) GROUP BY ALL",
                [spec.id],
            ).fetchall()
        )
        p = _chi_square_p([counts.get(v.id, 0) for v in spec.variants], [v.weight for v in spec.variants])
        if spec.id == "onboarding_flow":
            assert p < 1e-6
            assert counts["short_flow"] / (counts["short_flow"] + counts["control"]) < 0.485
        else:
            assert p > 1e-3, (spec.id, counts)


# Per-unit metrics after first exposure; `crashes` (per unit, not per session) stands in for crash_rate, which is
# never planted.
BRUTE_FORCE_METRICS = ("minutes_played", "purchases", "conversion", "premium_upgrade", "crashes")
BRUTE_FORCE = f"""
WITH a AS (
    SELECT a.experiment_id, a.unit_id, a.variant, a.assigned_at
    FROM raw.assignments a
    JOIN (SELECT DISTINCT experiment_id, variant FROM raw.simulation_truth) t USING (experiment_id, variant)
    WHERE a.unit_id IS NOT NULL AND a.assigned_at >= DATE '{FIRST}' AND a.assigned_at <= a.logged_at + INTERVAL 1 DAY
), u AS (
    SELECT experiment_id, unit_id, min(variant) AS variant, min(assigned_at) AS first_at
    FROM a GROUP BY ALL HAVING count(DISTINCT variant) = 1
), ev AS (
    SELECT DISTINCT ON (event_id) * FROM raw.events
    WHERE unit_id IS NOT NULL AND event_type IN ('stream', 'purchase', 'upgrade', 'crash')
      AND occurred_at >= DATE '{FIRST}' AND occurred_at < DATE '{END}' + 1
), m AS (
    SELECT u.experiment_id, u.variant, u.unit_id,
           coalesce(sum(ev.value) FILTER (WHERE ev.event_type = 'stream'), 0) AS minutes_played,
           count(ev.event_id) FILTER (WHERE ev.event_type = 'purchase') AS purchases,
           (count(ev.event_id) FILTER (WHERE ev.event_type = 'purchase') > 0)::INTEGER AS conversion,
           (count(ev.event_id) FILTER (WHERE ev.event_type = 'upgrade') > 0)::INTEGER AS premium_upgrade,
           count(ev.event_id) FILTER (WHERE ev.event_type = 'crash') AS crashes
    FROM u LEFT JOIN ev ON ev.unit_id = u.unit_id AND ev.occurred_at >= u.first_at
    GROUP BY ALL
)
SELECT experiment_id, variant, count(*),
       avg(minutes_played), var_samp(minutes_played), avg(purchases), var_samp(purchases),
       avg(conversion), var_samp(conversion), avg(premium_upgrade), var_samp(premium_upgrade),
       avg(crashes), var_samp(crashes)
FROM m GROUP BY ALL
"""


def brute_force_stats(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], tuple[int, float, float]]:
    """Units, mean and variance per experiment, variant and metric of `BRUTE_FORCE_METRICS`."""
    return {
        (r[0], r[1], metric): (r[2], r[3 + 2 * i], r[4 + 2 * i])
        for r in con.execute(BRUTE_FORCE).fetchall()
        for i, metric in enumerate(BRUTE_FORCE_METRICS)
    }


def brute_force_z(con: duckdb.DuckDBPyConnection, specs: list[ExperimentSpec]) -> dict[tuple[str, str, str], float]:
    """Welch z of each treatment vs control per metric, from per-unit metrics after first exposure."""
    stats = brute_force_stats(con)
    z = {}
    for spec in specs:
        for treatment in spec.treatments:
            for metric in BRUTE_FORCE_METRICS:
                n_t, mean_t, var_t = stats[(spec.id, treatment, metric)]
                n_c, mean_c, var_c = stats[(spec.id, spec.control, metric)]
                z[(spec.id, treatment, metric)] = (mean_t - mean_c) / math.sqrt(var_t / n_t + var_c / n_c)
    return z


def test_planted_effects_are_visible_and_nothing_else(warehouse, specs) -> None:
    truth = {
        (e, v, m): effect for e, v, m, effect, _ in warehouse.execute("SELECT * FROM raw.simulation_truth").fetchall()
    }
    for key, z in brute_force_z(warehouse, specs).items():
        effect = truth.get(key, 0.0)
        if effect:
            assert z * math.copysign(1, effect) > 4, (key, z)
        else:
            assert abs(z) < 3.5, (key, z)


def test_upgrade_effect_in_raw_data_matches_the_truth(warehouse, specs) -> None:
    """The share of exposed units that upgrade after exposure rises by the planted amount for checkout_redesign's
    upsell arm (relative to control), and nowhere else."""
    stats = brute_force_stats(warehouse)
    truth = {
        (e, v): effect
        for e, v, m, effect, _ in warehouse.execute("SELECT * FROM raw.simulation_truth").fetchall()
        if m == "premium_upgrade"
    }
    for spec in specs:
        n_c, p_c, _ = stats[(spec.id, spec.control, "premium_upgrade")]
        for treatment in spec.treatments:
            n_t, p_t, _ = stats[(spec.id, treatment, "premium_upgrade")]
            log_ratio, se = math.log(p_t / p_c), math.sqrt((1 - p_t) / (n_t * p_t) + (1 - p_c) / (n_c * p_c))
            expected = truth.get((spec.id, treatment), 0.0)
            shares = (spec.id, treatment, round(p_t, 4), spec.control, round(p_c, 4), expected)
            assert abs(log_ratio - math.log1p(expected)) < 3.5 * se, shares
            if (spec.id, treatment) == ("checkout_redesign", "upsell"):
                assert expected > 0.4 and log_ratio > 4 * se, shares
            else:
                assert expected == 0, shares

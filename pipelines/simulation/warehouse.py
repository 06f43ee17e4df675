"""Generate the raw tables of the synthetic warehouse in DuckDB SQL.

All randomness is a function of (seed, stream tag, unit, day, ...) through DuckDB's `hash`, mapped to uniforms
and transformed by inverse CDFs (Box-Muller for normals). Nothing depends on row order, threads or chunking, so a
seed gives the same table contents every time. Units are generated in chunks to bound memory.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.build_state import forget_build
from pipelines.registry.spec import ExperimentSpec
from pipelines.simulation import scenario as sc
from pipelines.warehouse import duckdb_memory_limit

CHUNK_UNITS = 400_000
DAY_SECONDS = 86_400
FUTURE_YEARS = 73  # an impossible timestamp: the event year plus this (2099 for 2026)
Plants = Callable[[str], sc.Plant]  # an experiment id's planted story

TABLES: dict[str, str] = {
    "units": "unit_id VARCHAR, country VARCHAR, platform VARCHAR, signup_date DATE",
    "assignments": (
        "experiment_id VARCHAR, unit_id VARCHAR, variant VARCHAR, assigned_at TIMESTAMP, logged_at TIMESTAMP"
    ),
    "events": (
        "event_id VARCHAR, unit_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMP, value DOUBLE, "
        "logged_at TIMESTAMP"
    ),
    "simulation_truth": (
        "experiment_id VARCHAR, variant VARCHAR, metric_id VARCHAR, true_relative_effect DOUBLE, "
        "planted_srm BOOLEAN"
    ),
}


@dataclass(frozen=True)
class Window:
    """The calendar of the simulated data: day 0 is the first day of history, `days` days in all."""

    first_day: dt.date
    days: int

    @property
    def t0(self) -> int:
        """Epoch seconds at the start of day 0."""
        return _epoch(self.first_day)

    @property
    def t_end(self) -> int:
        """Epoch seconds at the end of the last day (rows logged at or after it are not in the tables yet)."""
        return self.t0 + self.days * DAY_SECONDS

    def day_of(self, date: dt.date) -> int:
        """Day index of a calendar date (may fall outside the window)."""
        return (date - self.first_day).days


def _epoch(date: dt.date) -> int:
    """Epoch seconds at midnight of a date."""
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp())


def _tag(experiment_id: str) -> int:
    """A stable random-stream tag per experiment (independent of which other experiments exist)."""
    return 1_000 + (zlib.crc32(experiment_id.encode()) & 0xFFFFFF) * 16


def _lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _typo(variant: str, taken: set[str]) -> str:
    """A misspelling of a variant id that is not a real variant of the experiment."""
    candidates = [variant[:-2] + variant[-1] + variant[-2]] if len(variant) > 2 else []
    candidates += [variant + variant[-1], variant + "_old", variant + "_x"]
    return next(c for c in candidates if c not in taken and c != variant)


def _case(draw: str, weights: dict[str, float]) -> str:
    """SQL CASE picking a key of `weights` from a uniform draw by cumulative weight."""
    total, acc, arms = sum(weights.values()), 0.0, []
    for key, weight in list(weights.items())[:-1]:
        acc += weight / total
        arms.append(f"WHEN {draw} < {acc!r} THEN {_lit(key)}")
    return f"CASE {' '.join(arms)} ELSE {_lit(list(weights)[-1])} END"


# Stream tags in use (pick new, unused ones for new draws): 1-3 and 10-17 unit traits, 20-23 activity, 30-45 events,
# 50 and 60 logging, and from 1000 on, 16 per experiment (`_tag`).
def create_macros(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Define the seeded draws: uniform `rnd(tag, a, b, c)`, normal `nrm` (uses tags t, t+1), raw 64 bits `h64`."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO rnd(t, a, b, c) AS
            ((hash(hash({int(seed)}::BIGINT, t::BIGINT, a::BIGINT, b::BIGINT, c::BIGINT)) >> 11)::DOUBLE + 0.5)
            / 9007199254740992.0;
        CREATE OR REPLACE TEMP MACRO h64(t, a, b, c) AS
            hash(hash({int(seed)}::BIGINT, t::BIGINT, a::BIGINT, b::BIGINT, c::BIGINT));
        CREATE OR REPLACE TEMP MACRO nrm(t, a, b, c) AS
            sqrt(-2.0 * ln(rnd(t, a, b, c))) * cos(6.283185307179586 * rnd(t + 1, a, b, c));
        """
    )


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop and recreate the raw tables (other objects, in raw or elsewhere, are left alone)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for name, columns in TABLES.items():
        con.execute(f"DROP TABLE IF EXISTS raw.{name}")
        con.execute(f"CREATE TABLE raw.{name} ({columns})")


def create_design_tables(
    con: duckdb.DuckDBPyConnection, experiments: list[ExperimentSpec], window: Window, plants: Plants
) -> None:
    """Experiments `_x` (window in day indices, traffic) and their variants `_xv` (split, multipliers, loss)."""
    x_rows, xv_rows = [], []
    last_day = window.days - 1
    for e, spec in enumerate(experiments):
        plant = plants(spec.id)
        start = max(0, window.day_of(spec.start_date))
        stop = min(last_day, window.day_of(spec.end_date) if spec.end_date else last_day)
        t_stop = window.t0 + (stop + 1) * DAY_SECONDS
        x_rows.append(
            f"({e}, {_lit(spec.id)}, {_tag(spec.id)}, {start}, {stop}, {t_stop}, {plant.traffic!r}, {len(spec.variants)})"
        )
        taken = {v.id for v in spec.variants}
        acc = 0.0
        for v, variant in enumerate(spec.variants):
            low = acc
            acc += variant.weight
            high = 2.0 if v == len(spec.variants) - 1 else acc
            xv_rows.append(
                f"({e}, {v}, {_lit(variant.id)}, {_lit(_typo(variant.id, taken))}, {low!r}, {high!r}, "
                f"{1 + plant.minutes.get(variant.id, 0.0)!r}, {1 + plant.purchase_rate.get(variant.id, 0.0)!r}, "
                f"{1 + plant.upgrade_rate.get(variant.id, 0.0)!r}, {plant.srm_loss.get(variant.id, 0.0)!r}, "
                f"{variant.id == spec.control})"
            )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _x (e INTEGER, experiment_id VARCHAR, tag BIGINT, s INTEGER, t INTEGER, "
        "t_stop BIGINT, share DOUBLE, nv INTEGER)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _xv (e INTEGER, v INTEGER, variant VARCHAR, typo VARCHAR, lo DOUBLE, "
        "hi DOUBLE, m_min DOUBLE, m_pur DOUBLE, m_upg DOUBLE, loss DOUBLE, is_control BOOLEAN)"
    )
    if x_rows:
        con.execute(f"INSERT INTO _x VALUES {', '.join(x_rows)}")
        con.execute(f"INSERT INTO _xv VALUES {', '.join(xv_rows)}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _d AS
        SELECT range::INTEGER AS day,
               {window.t0} + range * {DAY_SECONDS} AS t_day,
               CASE WHEN dayofweek(DATE '{window.first_day}' + range::INTEGER) IN (0, 6)
                    THEN {sc.WEEKEND_LIFT!r} ELSE 1.0 END AS f
        FROM range({window.days})
        """
    )


def generate_units(con: duckdb.DuckDBPyConnection, lo: int, hi: int, window: Window, width: int = 8) -> None:
    """Units `lo..hi-1` (ids zero-padded to `width` digits) with attributes and latent traits into `_u` and
    raw.units."""
    ios = _case_map("country", sc.IOS_SHARE)
    platform_factor = _case_map("platform", sc.PLATFORM_PURCHASE)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _u AS
        WITH b AS (
            SELECT idx, {_case('rnd(1, idx, 0, 0)', sc.COUNTRIES)} AS country,
                   rnd(2, idx, 0, 0) AS u_platform, rnd(3, idx, 0, 0) AS u_signup,
                   nrm(10, idx, 0, 0) AS z_act, nrm(12, idx, 0, 0) AS z_min, nrm(14, idx, 0, 0) AS z_pur,
                   nrm(16, idx, 0, 0) AS z_upg
            FROM range({lo}, {hi}) r(idx)
        ), p AS (
            SELECT *, CASE WHEN u_platform < {ios} THEN 'ios'
                           WHEN u_platform < {ios} + (1 - {ios}) * 0.75 THEN 'android'
                           ELSE 'web' END AS platform
            FROM b
        )
        SELECT idx, 'u' || lpad(idx::VARCHAR, {width}, '0') AS unit_id, country, platform,
               DATE '{window.first_day}' - (1 + floor({sc.SIGNUP_YEARS * 365} * pow(u_signup, 1.5)))::INTEGER
                   AS signup_date,
               1.0 / (1.0 + exp(-({sc.ACTIVITY_LOGIT_MEAN!r} + {sc.ACTIVITY_LOGIT_SD!r} * z_act))) AS p_act,
               ln({sc.MINUTES_MEDIAN!r}) + {sc.MINUTES_UNIT_SD!r} * z_min
                   + {sc.MINUTES_ACTIVITY_LOADING!r} * z_act AS mu,
               least({sc.PURCHASE_P_CAP!r},
                     {sc.PURCHASE_P_MEDIAN!r} * exp({sc.PURCHASE_P_SD!r} * z_pur) * {platform_factor}) AS q,
               least({sc.UPGRADE_P_CAP!r}, {sc.UPGRADE_P_MEDIAN!r} * exp({sc.UPGRADE_P_SD!r} * z_upg)) AS q_upg
        FROM p
        """
    )
    con.execute("INSERT INTO raw.units SELECT unit_id, country, platform, signup_date FROM _u")


def _case_map(column: str, values: dict[str, float]) -> str:
    """SQL CASE mapping a column's values to numbers (1.0 for anything unlisted)."""
    arms = " ".join(f"WHEN {_lit(k)} THEN {v!r}" for k, v in values.items())
    return f"(CASE {column} {arms} ELSE 1.0 END)"


def generate_activity(con: duckdb.DuckDBPyConnection, activity: float = 1.0) -> None:
    """Active unit-days `_ud`: number of sessions, first session time and gap between sessions (epoch seconds).
    `activity` scales every unit's daily probability of being active (so the events per unit)."""
    extra = sc.EXTRA_SESSION_P
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ud AS
        SELECT u.idx, d.day,
               1 + least({sc.MAX_SESSIONS - 1}, floor(ln(rnd(21, u.idx, d.day, 0)) / ln({extra!r})))::INTEGER AS n_s,
               d.t_day + 21600 + floor(rnd(22, u.idx, d.day, 0) * 28800)::BIGINT AS t0,
               3600 + floor(rnd(23, u.idx, d.day, 0) * 5400)::BIGINT AS gap
        FROM _u u CROSS JOIN _d d
        WHERE rnd(20, u.idx, d.day, 0) < least(0.98, u.p_act * d.f * {float(activity)!r})
        """
    )


def generate_exposures(con: duckdb.DuckDBPyConnection, effect_experiments: list[int]) -> None:
    """First exposure `_ue` per unit and experiment (targeted units, first active day in the window), and `_uw`,
    the same pivoted wide for the experiments that plant an effect."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ue AS
        WITH el AS (
            SELECT u.idx, x.e, x.tag, x.s, x.t FROM _u u CROSS JOIN _x x
            WHERE x.s <= x.t AND rnd(x.tag, u.idx, 0, 0) < x.share
        ), f AS (
            SELECT el.idx, el.e, el.tag, min(ud.day) AS d
            FROM el JOIN _ud ud ON ud.idx = el.idx AND ud.day BETWEEN el.s AND el.t
            GROUP BY ALL
        ), r AS (
            SELECT *, rnd(tag + 2, idx, 0, 0) AS u_v FROM f
        )
        SELECT r.idx, r.e, r.tag, r.d, xv.v,
               rnd(r.tag + 4, r.idx, 0, 0) < xv.loss AS lost,
               rnd(r.tag + 5, r.idx, 0, 0) < {sc.CROSSOVER_P!r} AS crossed
        FROM r JOIN _xv xv ON xv.e = r.e AND r.u_v >= xv.lo AND r.u_v < xv.hi
        """
    )
    cols = ", ".join(
        f"max(CASE WHEN e = {e} THEN d END) AS d_{e}, max(CASE WHEN e = {e} THEN v END) AS v_{e}"
        for e in effect_experiments
    )
    if cols:
        keep = ", ".join(str(e) for e in effect_experiments)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _uw AS SELECT idx, {cols} FROM _ue WHERE e IN ({keep}) GROUP BY idx")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _uw AS SELECT NULL::BIGINT AS idx WHERE false")


def _multiplier(con: duckdb.DuckDBPyConnection, column: str, effect_experiments: list[int]) -> str:
    """SQL for a session's product of planted multipliers (`m_min`, `m_pur` or `m_upg`) over the unit's exposures
    so far."""
    factors = []
    for e in effect_experiments:
        rows = con.execute(f"SELECT v, {column} FROM _xv WHERE e = {e} AND {column} <> 1.0 ORDER BY v").fetchall()
        if rows:
            arms = " ".join(f"WHEN {v} THEN {m!r}" for v, m in rows)
            factors.append(f"(CASE WHEN ud.day >= w.d_{e} THEN (CASE w.v_{e} {arms} ELSE 1.0 END) ELSE 1.0 END)")
    return " * ".join(factors) if factors else "1.0"


def generate_sessions(con: duckdb.DuckDBPyConnection, effect_experiments: list[int]) -> None:
    """Sessions `_s`: one row per session with its start time, the unit's traits and the planted multipliers."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _s AS
        WITH k AS (
            SELECT ud.idx, ud.day, ud.t0, ud.gap, unnest(range(ud.n_s)) AS k,
                   {_multiplier(con, 'm_min', effect_experiments)} AS m_min,
                   {_multiplier(con, 'm_pur', effect_experiments)} AS m_pur,
                   {_multiplier(con, 'm_upg', effect_experiments)} AS m_upg
            FROM _ud ud LEFT JOIN _uw w ON w.idx = ud.idx
        )
        SELECT k.idx, u.unit_id, k.day, k.k, k.day * 8 + k.k AS dk, k.t0 + k.k * k.gap AS t,
               u.mu, u.q, u.q_upg, k.m_min, k.m_pur, k.m_upg
        FROM k JOIN _u u ON u.idx = k.idx
        """
    )


def _logging(source: str, key: str, tag: int, bad_total: float) -> str:
    """SQL adding to the rows of `source`, from one 64-bit draw `h`: a logging delay in seconds (LATE_P of rows 1 h
    to 2 days late, the rest seconds), a uniform `u_bad` picking corrupted copies, and `copy` (1 for a copy)."""
    late, hi, lo = sc.LATE_P, "((h >> 32)::DOUBLE + 0.5) / 4294967296.0", "((h & 16777215)::DOUBLE + 0.5) / 16777216.0"
    return f"""
        SELECT *,
            CASE WHEN u_d < {late!r} THEN 3600 + floor(u_d / {late!r} * {2 * DAY_SECONDS - 3600})::BIGINT
                 ELSE floor(-ln(greatest(1e-12, (u_d - {late!r}) / {1 - late!r})) * 20)::BIGINT END AS delay,
            unnest(CASE WHEN u_bad < {bad_total!r} THEN [0, 1] ELSE [0] END) AS copy
        FROM (SELECT *, {hi} AS u_d, {lo} AS u_bad FROM (SELECT *, h64({tag}, {key}) AS h FROM {source}))"""


def _codes(probabilities: dict[str, float]) -> dict[str, int]:
    """Integer codes of the bad kinds (0 is a clean row)."""
    return {kind: code for code, kind in enumerate(probabilities, start=1)}


def _kind(probabilities: dict[str, float]) -> str:
    """SQL giving the bad-kind code of a row from its `u_bad` draw (0 for the original row)."""
    acc, arms = 0.0, []
    for kind, code in _codes(probabilities).items():
        acc += probabilities[kind]
        arms.append(f"WHEN u_bad < {acc!r} THEN {code}")
    return f"CASE WHEN copy = 0 THEN 0 {' '.join(arms)} ELSE 0 END"


def _timestamp(seconds: str) -> str:
    """SQL TIMESTAMP from epoch seconds."""
    return f"make_timestamp(({seconds}) * 1000000)"


def _shift(window: Window, codes: dict[str, int]) -> str:
    """SQL seconds to add to a timestamp to make it impossible: back to 1970, or on to 2099."""
    future = _epoch(dt.date(window.first_day.year + FUTURE_YEARS, 1, 1)) - _epoch(dt.date(window.first_day.year, 1, 1))
    return (
        f"CASE kind WHEN {codes['epoch_timestamp']} THEN {-window.t0} "
        f"WHEN {codes['future_timestamp']} THEN {future} ELSE 0 END"
    )


def generate_events(con: duckdb.DuckDBPyConnection, window: Window) -> None:
    """Append the chunk's events (sessions, streams, clicks, purchases, upgrades, crashes, plus duplicates and bad
    rows) to raw.events."""
    bad = {"duplicate": sc.EVENT_DUPLICATE_P, **sc.EVENT_BAD_P}
    codes = _codes(bad)
    click_scale = 1.0 / math.log(1.0 + 1.0 / sc.CLICKS_MEAN)
    con.execute(
        f"""
        INSERT INTO raw.events
        WITH ev AS (
            SELECT idx, unit_id, dk, 0 AS typ, 0 AS c, 's' AS sfx, 'session' AS event_type, t AS t_occ, 1.0 AS value
            FROM _s
            UNION ALL
            SELECT idx, unit_id, dk, 1, 0, 'm', 'stream', t + 5 + floor(rnd(31, idx, dk, 0) * 25)::BIGINT,
                   round(exp(mu + {sc.MINUTES_SESSION_SD!r} * nrm(32, idx, dk, 0)) * m_min, 2)
            FROM _s WHERE rnd(30, idx, dk, 0) < {sc.STREAM_P!r}
            UNION ALL
            SELECT idx, unit_id, dk, 2, c, concat('c', c), 'click',
                   t + 30 + c * 120 + floor(rnd(36, idx, dk, c) * 100)::BIGINT, 1.0
            FROM (SELECT *, unnest(range(least(8, floor(-ln(rnd(34, idx, dk, 0)) * {click_scale!r}))::BIGINT)) AS c
                  FROM _s)
            UNION ALL
            SELECT idx, unit_id, dk, 3, 0, 'p', 'purchase', t + 600 + floor(rnd(38, idx, dk, 0) * 900)::BIGINT,
                   round(exp(ln({sc.REVENUE_MEDIAN!r}) + {sc.REVENUE_SD!r} * nrm(40, idx, dk, 0)), 2)
            FROM _s WHERE rnd(37, idx, dk, 0) < q * m_pur
            UNION ALL
            SELECT idx, unit_id, dk, 4, 0, 'u', 'upgrade', t + 300 + floor(rnd(43, idx, dk, 0) * 1500)::BIGINT, 1.0
            FROM _s WHERE rnd(42, idx, dk, 0) < q_upg * m_upg
            UNION ALL
            SELECT idx, unit_id, dk, 5, 0, 'k', 'crash', t + 10 + floor(rnd(45, idx, dk, 0) * 1800)::BIGINT, 1.0
            FROM _s WHERE rnd(44, idx, dk, 0) < {sc.CRASH_P!r}
        ), lg AS (
            {_logging("ev", "idx, dk, typ * 16 + c", 50, sum(bad.values()))}
        ), k AS (
            SELECT *, {_kind(bad)} AS kind FROM lg
        ), o AS (
            SELECT *, t_occ + delay + CASE WHEN kind = {codes['duplicate']} THEN 1 + ((h >> 20) & 4095)::BIGINT ELSE 0 END
                      AS t_log
            FROM k
        )
        SELECT concat('e', idx, '.', dk, sfx, CASE WHEN kind > {codes['duplicate']} THEN 'x' ELSE '' END),
               CASE WHEN kind = {codes['null_unit']} THEN NULL ELSE unit_id END,
               event_type,
               {_timestamp('t_occ + ' + _shift(window, codes))},
               value,
               {_timestamp('t_log')}
        FROM o WHERE t_log < {window.t_end}
        """
    )


def generate_assignments(con: duckdb.DuckDBPyConnection, window: Window, unknown_experiment: str) -> None:
    """Append the chunk's assignment log rows (first, repeated, crossovers, late, bad copies) to raw.assignments."""
    bad = sc.ASSIGNMENT_BAD_P
    codes = _codes(bad)
    con.execute(
        f"""
        INSERT INTO raw.assignments
        WITH r AS (
            SELECT ue.idx, ue.e, ue.tag, ue.v, ud.t0 AS t, 0 AS kind0
            FROM _ue ue JOIN _x x ON x.e = ue.e
                 JOIN _ud ud ON ud.idx = ue.idx AND ud.day >= ue.d AND ud.day <= x.t
            WHERE NOT ue.lost AND (ud.day = ue.d OR rnd(ue.tag + 6, ue.idx, ud.day, 0) < {sc.REPEAT_LOG_P!r})
            UNION ALL
            SELECT ue.idx, ue.e, ue.tag, (ue.v + 1) % x.nv,
                   ud.t0 + 600 + floor(rnd(ue.tag + 7, ue.idx, 0, 0) * 172800)::BIGINT, 1
            FROM _ue ue JOIN _x x ON x.e = ue.e JOIN _ud ud ON ud.idx = ue.idx AND ud.day = ue.d
            WHERE NOT ue.lost AND ue.crossed
              AND ud.t0 + 600 + floor(rnd(ue.tag + 7, ue.idx, 0, 0) * 172800)::BIGINT < x.t_stop
        ), lg AS (
            {_logging("r", "idx, tag + kind0, t", 60, sum(bad.values()))}
        ), k AS (
            SELECT *, {_kind(bad)} AS kind FROM lg
        )
        SELECT
            CASE WHEN k.kind = {codes['unknown_experiment']} THEN {_lit(unknown_experiment)} ELSE x.experiment_id END,
            CASE WHEN k.kind = {codes['null_unit']} THEN NULL ELSE u.unit_id END,
            CASE WHEN k.kind = {codes['unknown_variant']} THEN xv.typo ELSE xv.variant END,
            {_timestamp('k.t + ' + _shift(window, codes))},
            {_timestamp('k.t + k.delay')}
        FROM k JOIN _x x ON x.e = k.e JOIN _xv xv ON xv.e = k.e AND xv.v = k.v JOIN _u u ON u.idx = k.idx
        WHERE k.t + k.delay < {window.t_end}
        """
    )


def conversion_sums(
    con: duckdb.DuckDBPyConnection, experiments: list[int], probability: str, multiplier: str
) -> dict[tuple[int, int], int]:
    """Per (experiment, arm): sum over exposed, logged units of P(>= 1 event from exposure to the end) had the unit
    been in that arm, for per-session event probabilities `probability` * `multiplier` (columns of `_s`; the
    multiplier also names the arm's column in `_xv`), in units of 1e-12 (integers, so sums do not depend on order)."""
    if not experiments:
        return {}
    keep = ", ".join(str(e) for e in experiments)
    rows = con.execute(
        f"""
        WITH b AS (
            SELECT ue.e, ue.idx, s.{probability} * s.{multiplier} / own.{multiplier} AS q0
            FROM _ue ue JOIN _xv own ON own.e = ue.e AND own.v = ue.v
                 JOIN _s s ON s.idx = ue.idx AND s.day >= ue.d
            WHERE ue.e IN ({keep}) AND NOT ue.lost
        ), a AS (
            SELECT b.e, xv.v, b.idx, sum(round(ln(1.0 - b.q0 * xv.{multiplier}) * 1e12)::BIGINT) AS lp
            FROM b JOIN _xv xv ON xv.e = b.e
            GROUP BY ALL
        )
        SELECT e, v, sum(round((1.0 - exp(lp / 1e12)) * 1e12)::HUGEINT)::VARCHAR FROM a GROUP BY ALL
        """
    ).fetchall()
    return {(e, v): int(total) for e, v, total in rows}


# Proportion metrics "at least one event from first exposure on": metric id -> (the `Plant` multipliers that move
# it, per-session probability column, multiplier column).
AT_LEAST_ONCE: dict[str, tuple[str, str, str]] = {
    "conversion": ("purchase_rate", "q", "m_pur"),
    "premium_upgrade": ("upgrade_rate", "q_upg", "m_upg"),
}


def _relative(sums: dict[tuple[int, int], int], e: int, v: int, control: int) -> float:
    """Relative change of arm `v`'s sum over the control arm's (0 if the control has none)."""
    return sums.get((e, v), 0) / sums[(e, control)] - 1.0 if sums.get((e, control)) else 0.0


def write_truth(
    con: duckdb.DuckDBPyConnection,
    experiments: list[ExperimentSpec],
    at_least_once: dict[str, dict[tuple[int, int], int]],
    plants: Plants = sc.plant_for,
) -> None:
    """One truth row per experiment x variant x metric of its spec (see `scenario` for how effects map), given the
    `conversion_sums` of each metric in `AT_LEAST_ONCE`."""
    rows = []
    for e, spec in enumerate(experiments):
        plant = plants(spec.id)
        control = next(v for v, variant in enumerate(spec.variants) if variant.id == spec.control)
        for v, variant in enumerate(spec.variants):
            effects = {
                "minutes_played": plant.minutes.get(variant.id, 0.0),
                "purchases": plant.purchase_rate.get(variant.id, 0.0),
                "crash_rate": 0.0,
            }
            for metric, (rate, _, _) in AT_LEAST_ONCE.items():
                planted = getattr(plant, rate).get(variant.id, 0.0)
                effects[metric] = _relative(at_least_once.get(metric, {}), e, v, control) if planted else 0.0
            if variant.id == spec.control:
                effects = {}
            for use in spec.metrics:
                effect = round(effects.get(use.metric, 0.0), 6)
                rows.append((spec.id, variant.id, use.metric, effect, plant.planted_srm))
    if rows:
        con.executemany("INSERT INTO raw.simulation_truth VALUES (?, ?, ?, ?, ?)", rows)


def unknown_experiment_id(experiments: list[ExperimentSpec]) -> str:
    """An experiment id for bad rows that no spec uses."""
    ids, candidate = {spec.id for spec in experiments}, sc.UNKNOWN_EXPERIMENT_ID
    while candidate in ids:
        candidate += "_x"
    return candidate


def build(
    database: Path | str,
    experiments: list[ExperimentSpec],
    units: int,
    seed: int,
    end_date: dt.date,
    history_days: int,
    activity: float = 1.0,
    plants: Plants = sc.plant_for,
) -> dict[str, int]:
    """Write the raw schema of a synthetic warehouse into `database`; return row counts per table. `activity` scales
    how often units are active; `plants` gives each experiment's planted story (default: the demo's scenario)."""
    if units < 1 or history_days < 0:
        raise ValueError("need at least one unit and a non-negative history")
    window = Window(first_day=end_date - dt.timedelta(days=history_days), days=history_days + 1)
    con = duckdb.connect(str(database), config={"memory_limit": duckdb_memory_limit()})
    try:
        con.execute("SET preserve_insertion_order = false")
        create_macros(con, seed)
        create_raw_tables(con)
        create_design_tables(con, experiments, window, plants)
        effect_exps = [
            e for e, spec in enumerate(experiments)
            if (p := plants(spec.id)).minutes or p.purchase_rate or p.upgrade_rate
        ]
        planted_exps = {
            metric: [e for e, spec in enumerate(experiments) if getattr(plants(spec.id), rate)]
            for metric, (rate, _, _) in AT_LEAST_ONCE.items()
        }
        unknown = unknown_experiment_id(experiments)
        sums: dict[str, dict[tuple[int, int], int]] = {metric: {} for metric in AT_LEAST_ONCE}
        for lo in range(0, units, CHUNK_UNITS):
            generate_units(con, lo, min(units, lo + CHUNK_UNITS), window, width=max(8, len(str(units - 1))))
            generate_activity(con, activity)
            generate_exposures(con, effect_exps)
            generate_sessions(con, effect_exps)
            generate_events(con, window)
            generate_assignments(con, window, unknown)
            for metric, (_, probability, multiplier) in AT_LEAST_ONCE.items():
                for key, total in conversion_sums(con, planted_exps[metric], probability, multiplier).items():
                    sums[metric][key] = sums[metric].get(key, 0) + total
        write_truth(con, experiments, sums, plants)
        forget_build(con)  # the raw tables were rewritten: incremental models start again
        for table in ("_s", "_uw", "_ue", "_ud", "_u", "_d", "_xv", "_x"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        counts = {name: con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] for name in TABLES}
        con.execute("CHECKPOINT")
        return counts
    finally:
        con.close()

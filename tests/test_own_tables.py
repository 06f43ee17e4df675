"""README, "Analyse your own tables", followed literally: a team's warehouse with its own names in its own schema
(an assignment log `user_id, test_name, arm, ts`, a per-user outcome table and an events Parquet file), data from
2024, a project folder made
by `verdict init` in a temporary directory, the real nightly job through the CLI, and every estimate, interval and
p-value checked against scipy computed directly from the raw rows."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import stats

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # two minutes or more

START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 14)
USERS = 3000

VERDICT_YML = """\
name: checkout_team
warehouse: warehouse/verdict.duckdb
sources:
  assignments:
    table: analytics.assignment_log
    columns: {unit_id: user_id, experiment_id: test_name, variant: arm, assigned_at: ts}
  units:
    table: analytics.users
    columns: {unit_id: user_id}
    dimensions: [plan]
  facts:
    app_events:
      file: data/app_events.parquet
    user_outcomes:
      table: analytics.user_outcomes
"""

LIFETIME_VALUE = """\
-- A unit-level metric: one value per user, no time (measured at the user's exposure).
select
    user_id as unit_id,
    lifetime_value as value
from {{ source('facts', 'user_outcomes') }}
"""

PURCHASE_AMOUNT = """\
-- Money spent per user after exposure.
select
    user_id as unit_id,
    event_ts as measured_at,
    amount as value
from {{ source('facts', 'app_events') }}
where event_name = 'purchase'
"""

SESSIONS = """\
-- Sessions per user after exposure.
select
    user_id as unit_id,
    event_ts as measured_at,
    1 as value
from {{ source('facts', 'app_events') }}
where event_name = 'session'
"""

METRICS_YML = """\
version: 2
models:
  - name: purchase_amount
    description: Money spent per user after exposure.
    config: {meta: {metric: {type: mean, aggregation: sum, preferred_direction: increase}}}
    columns: &measurement_columns
      - name: unit_id
        description: The unit measured.
      - name: measured_at
        description: When.
      - name: value
        description: The amount.
        data_tests: [measurements_are_readable]
  - name: sessions
    description: Sessions per user after exposure.
    config: {meta: {metric: {type: count, aggregation: count, preferred_direction: increase}}}
    columns: *measurement_columns
  - name: lifetime_value
    description: The user's lifetime value, from the outcome table.
    config: {meta: {metric: {type: mean, aggregation: sum, preferred_direction: increase}}}
    columns:
      - name: unit_id
        description: The unit measured.
      - name: value
        description: Its lifetime value.
        data_tests: [measurements_are_readable]
"""

SPEC = f"""\
id: checkout_button
name: A bigger checkout button
owner: checkout
unit_type: user
start_date: {START}
end_date: {END}
variants:
  - {{id: control, weight: 0.5}}
  - {{id: big_button, weight: 0.5}}
control: control
metrics:
  - {{metric: purchase_amount, role: success, alternative: two_sided, minimum_detectable_effect: 0.05}}
  - {{metric: sessions, role: success, alternative: two_sided, minimum_detectable_effect: 0.05}}
  - {{metric: lifetime_value, role: guardrail, non_inferiority_margin: 0.05}}
segments: [plan]
alpha: 0.05
power: 0.8
sequential: none
"""


def team_warehouse(database: Path, parquet: Path) -> None:
    """The team's own data: an assignment log in `analytics` (users logged repeatedly) and an events file."""
    rng = np.random.default_rng(2024)
    users = [f"user_{i:05d}" for i in range(USERS)]
    arms = rng.choice(["control", "big_button"], size=USERS)
    assigned = [dt.datetime(2024, 3, 1) + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 7 * 24 * 60, USERS)]
    log = pl.DataFrame({"user_id": users, "test_name": "checkout_button", "arm": arms, "ts": assigned})
    repeats = log.sample(n=USERS // 3, seed=1).with_columns(pl.col("ts") + pl.duration(hours=5))
    rows = []
    for user, arm, at in zip(users, arms, assigned):
        lift = 1.3 if arm == "big_button" else 1.0
        for _ in range(rng.poisson(3)):
            rows.append((user, "session", at + dt.timedelta(hours=float(rng.uniform(0, 20 * 24))), 1.0))
        for _ in range(rng.poisson(0.6)):
            rows.append((user, "purchase", at + dt.timedelta(hours=float(rng.uniform(0, 20 * 24))),
                         float(rng.exponential(20.0 * lift))))  # fmt: skip
    events = pl.DataFrame(rows, schema=["user_id", "event_name", "event_ts", "amount"], orient="row")
    outcomes = pl.DataFrame({"user_id": users, "lifetime_value": rng.gamma(2.0, 30.0, USERS)})
    parquet.parent.mkdir(parents=True)
    events.write_parquet(parquet)
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        con.register("log", pl.concat([log, repeats]).to_arrow())
        con.register("outcomes", outcomes.to_arrow())
        con.execute("create schema analytics; create table analytics.assignment_log as select * from log")
        con.execute("create table analytics.user_outcomes as select * from outcomes")
        con.register("users", pl.DataFrame({"user_id": users, "plan": rng.choice(["free", "pro"], USERS)}).to_arrow())
        con.execute("create table analytics.users as select * from users")


def verdict(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def z_test(control: np.ndarray, treatment: np.ndarray) -> dict[str, float]:
    """The two-sided fixed-horizon z test of the difference in means (Welch's standard error), with scipy."""
    estimate = treatment.mean() - control.mean()
    std_error = np.sqrt(stats.tvar(treatment) / len(treatment) + stats.tvar(control) / len(control))
    half_width = stats.norm.ppf(0.975) * std_error
    return {
        "n_control": len(control), "n_treatment": len(treatment), "mean_control": control.mean(),
        "estimate": estimate, "std_error": std_error, "p_value": 2 * stats.norm.sf(abs(estimate) / std_error),
        "ci_lower": estimate - half_width, "ci_upper": estimate + half_width,
    }  # fmt: skip


def expected(project: Path, event_name: str) -> dict[str, float]:
    """The test of an event metric at the experiment's last day, from the raw rows."""
    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb"), read_only=True) as con:
        per_unit = con.sql(
            f"""
            with exposures as (
                select user_id, min(arm) as arm, min(ts) as exposed_at from analytics.assignment_log group by user_id
            )
            select exposures.arm, coalesce(sum(events.amount), 0) as value
            from exposures
            left join read_parquet('{project / "data" / "app_events.parquet"}') as events
                on events.user_id = exposures.user_id and events.event_name = ?
                and events.event_ts >= exposures.exposed_at and events.event_ts < timestamp '{END + dt.timedelta(days=1)}'
            group by exposures.user_id, exposures.arm
            """,
            params=[event_name],
        ).pl()
    arms = per_unit.partition_by("arm", as_dict=True)
    return z_test(arms[("control",)]["value"].to_numpy(), arms[("big_button",)]["value"].to_numpy())


def expected_outcome(project: Path) -> dict[str, float]:
    """The unit-level metric: each exposed user's value from the outcome table, as it stands."""
    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb"), read_only=True) as con:
        per_unit = con.sql(
            """
            select min(log.arm) as arm, min(outcomes.lifetime_value) as value
            from analytics.assignment_log as log
            inner join analytics.user_outcomes as outcomes on log.user_id = outcomes.user_id
            group by log.user_id
            """
        ).pl()
    arms = per_unit.partition_by("arm", as_dict=True)
    return z_test(arms[("control",)]["value"].to_numpy(), arms[("big_button",)]["value"].to_numpy())


def test_a_team_project_on_its_own_tables_reaches_a_decision(tmp_path: Path) -> None:
    project = tmp_path / "checkout_team"
    env = {**os.environ, "VERDICT_PROJECT": str(project)}
    env.pop("VERDICT_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    verdict("init", str(project), env=env)
    (project / "verdict.yml").write_text(VERDICT_YML)
    for example in (project / "metrics").glob("*"):
        example.unlink()
    (project / "experiments" / "example_experiment.yml").unlink()
    (project / "metrics" / "purchase_amount.sql").write_text(PURCHASE_AMOUNT)
    (project / "metrics" / "sessions.sql").write_text(SESSIONS)
    (project / "metrics" / "lifetime_value.sql").write_text(LIFETIME_VALUE)
    (project / "metrics" / "_metrics.yml").write_text(METRICS_YML)
    (project / "experiments" / "checkout_button.yml").write_text(SPEC)
    team_warehouse(project / "warehouse" / "verdict.duckdb", project / "data" / "app_events.parquet")

    ran = verdict("run", env=env)
    assert "nightly_analysis succeeded" in ran.stdout
    shown = verdict("results", "--experiment", "checkout_button", env={**env, "COLUMNS": "250"})
    assert "big_button" in shown.stdout

    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb"), read_only=True) as con:
        results = con.sql(f"select * from main.experiment_results where as_of_date = '{END}'").pl()
        [(looks,)] = con.sql("select count(distinct as_of_date) from main.experiment_results").fetchall()
        plans = con.sql(
            "select distinct segment from main.experiment_segment_results where dimension = 'plan'"
        ).fetchall()
        dimensions = con.sql("select distinct dimension from main.experiment_segment_results").fetchall()
        [(decision,)] = con.sql(
            f"select decision from main.experiment_decisions where as_of_date = '{END}'"
        ).fetchall()
    assert sorted(plans) == [("free",), ("pro",)]  # the team's own dimension breaks the results down
    assert dimensions == [("plan",)]  # and only it: the units table has no country or platform
    assert looks == (END - START).days + 1  # one look a day, from the data's first day (2024) to the end date
    for metric, event_name in (("purchase_amount", "purchase"), ("sessions", "session")):
        want = expected(project, event_name)
        [got] = results.filter(pl.col("metric_id") == metric).to_dicts()
        assert got["method"] == "z" and got["status"] == "ok"
        assert (got["n_control"], got["n_treatment"]) == (want["n_control"], want["n_treatment"])
        for field in ("mean_control", "estimate", "std_error", "ci_lower", "ci_upper", "p_value"):
            assert got[field] == pytest.approx(want[field], rel=1e-9), (metric, field, got[field], want[field])
    # the outcome table's metric: its raw difference (a guardrail's test is one-sided against its margin)
    want = expected_outcome(project)
    [got] = results.filter(pl.col("metric_id") == "lifetime_value").to_dicts()
    assert (got["n_control"], got["n_treatment"]) == (want["n_control"], want["n_treatment"])
    for field in ("mean_control", "unadjusted_estimate", "unadjusted_std_error"):
        assert got[field] == pytest.approx(want[field.removeprefix("unadjusted_")], rel=1e-9), field
    assert decision == "ship", results.select("metric_id", "estimate", "p_value", "adjusted_p_value", "status")

    # an outcome table is filled in later (a lifetime value revised, for users exposed weeks ago): the next night
    # reads every unit-level value again, whatever the incremental scope
    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb")) as con:
        con.execute("update analytics.user_outcomes set lifetime_value = lifetime_value * 3 where user_id < 'user_01000'")
    verdict("run", "--date", str(END), env=env)
    want = expected_outcome(project)
    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb"), read_only=True) as con:
        [(revised,)] = con.sql(
            f"select mean_control from main.experiment_results where metric_id = 'lifetime_value' and as_of_date = '{END}'"
        ).fetchall()
    assert revised == pytest.approx(want["mean_control"], rel=1e-9)


PLAYERS_YML = """\
name: mobile_games
sources:
  assignments:                  # one row per player: the variant, and no time
    table: games.players
    experiment: gate_position
    columns: {unit_id: userid, variant: version}
  facts:
    players: {table: games.players}
"""

PLAYERS_METRICS = {
    "retained_d7.sql": "select userid as unit_id, cast(retention_7 as integer) as value\n"
                       "from {{ source('facts', 'players') }}\n",
    "game_rounds.sql": "select userid as unit_id, sum_gamerounds as value\nfrom {{ source('facts', 'players') }}\n",
    "_metrics.yml": """\
version: 2
models:
  - name: retained_d7
    description: Whether the player came back on day 7.
    config: {meta: {metric: {type: proportion, aggregation: max, preferred_direction: increase}}}
    columns: [{name: value, description: retained, data_tests: [measurements_are_readable]}]
  - name: game_rounds
    description: Rounds played in the first two weeks.
    config: {meta: {metric: {type: mean, aggregation: sum, preferred_direction: increase}}}
    columns: [{name: value, description: rounds, data_tests: [measurements_are_readable]}]
""",
}  # fmt: skip

PLAYERS_SPEC = """\
id: gate_position
name: The first gate at level 40 instead of 30
owner: games
unit_type: user
start_date: 2024-01-01
end_date: 2024-01-01            # the analysis date: the data has no times
variants: [{id: gate_30, weight: 0.5}, {id: gate_40, weight: 0.5}]
control: gate_30
metrics:
  - {metric: retained_d7, role: success, alternative: two_sided, minimum_detectable_effect: 0.02}
  - {metric: game_rounds, role: success, alternative: two_sided, minimum_detectable_effect: 0.02}
alpha: 0.05
power: 0.8
sequential: none
"""


def test_one_row_per_player_without_timestamps(tmp_path: Path) -> None:
    """A public A/B test as it is published (one row per player: id, variant, rounds played, retained on day 7; no
    times, no experiment column) analysed as it stands: no invented events, one look at the spec's analysis date."""
    project = tmp_path / "mobile_games"
    env = {**os.environ, "VERDICT_PROJECT": str(project)}
    env.pop("VERDICT_WAREHOUSE", None)
    env.pop("DAGSTER_HOME", None)
    verdict("init", str(project), env=env)
    for example in [*(project / "metrics").glob("*"), *(project / "experiments").glob("*")]:
        example.unlink()
    (project / "verdict.yml").write_text(PLAYERS_YML)
    for name, text in PLAYERS_METRICS.items():
        (project / "metrics" / name).write_text(text)
    (project / "experiments" / "gate_position.yml").write_text(PLAYERS_SPEC)
    rng = np.random.default_rng(30)
    players = pl.DataFrame({
        "userid": np.arange(6000), "version": rng.choice(["gate_30", "gate_40"], 6000),
        "sum_gamerounds": rng.negative_binomial(2, 0.04, 6000), "retention_7": rng.random(6000) < 0.19,
    })  # fmt: skip
    (project / "warehouse").mkdir()
    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb")) as con:
        con.register("players", players.to_arrow())
        con.execute("create schema games; create table games.players as select * from players")

    verdict("run", env=env)
    with duckdb.connect(str(project / "warehouse" / "verdict.duckdb"), read_only=True) as con:
        results = con.sql("select * from main.experiment_results").pl()
        health = dict(con.sql("select check_name, status from main.experiment_health").fetchall())
    assert set(results["as_of_date"]) == {dt.date(2024, 1, 1)}  # one look, at the analysis date
    assert health["daily_sample_ratio_mismatch"] == health["exposure_traffic"] == "not_applicable"
    assert health["sample_ratio_mismatch"] == "pass"
    arms = players.partition_by("version", as_dict=True)
    for metric, column in (("game_rounds", "sum_gamerounds"), ("retained_d7", "retention_7")):
        want = z_test(*(arms[(arm,)][column].cast(pl.Float64).to_numpy() for arm in ("gate_30", "gate_40")))
        [got] = results.filter(pl.col("metric_id") == metric).to_dicts()
        assert (got["n_control"], got["n_treatment"]) == (want["n_control"], want["n_treatment"])
        for field in ("mean_control", "estimate"):
            assert got[field] == pytest.approx(want[field], rel=1e-9), (metric, field)
        if metric == "game_rounds":  # a proportion's test has its own variance; the mean's is Welch's
            for field in ("std_error", "ci_lower", "ci_upper", "p_value"):
                assert got[field] == pytest.approx(want[field], rel=1e-9), (metric, field)

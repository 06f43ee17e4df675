"""The analytics engineer's workflow end to end: in a copy of the demo project, add a metric model and its YAML entry
(nothing else: no list of models to edit),
reference it from an experiment, run the nightly DAG, and find the metric in the results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import copy_demo_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # two minutes or more

# Streams logged with more than 120 minutes are treated as broken: their value is null.
MODEL = """\
select
    unit_id,
    occurred_at as measured_at,
    case when value <= 120 then value end as value
from {{ ref('stg_events') }}
where event_type = 'stream'
"""

# The longest stream, and the same plus 1e12 (values large against their spread, as an epoch time in ms is).
LONGEST = """\
select unit_id, occurred_at as measured_at, {offset} + value as value
from {{{{ ref('stg_events') }}}}
where event_type = 'stream' and value is not null
"""
LONGEST_ENTRY = """
  - name: {name}
    description: The unit's longest stream in its first 7 days after exposure{plus}.
    config:
      meta:
        metric:
          type: mean
          aggregation: max
          window_days: 7
    columns: *measurement_columns
"""
EPOCH = 1e12
# A metric model whose join fans out: every stream twice (a warning, counted; the metric is not broken)
DOUBLED = """\
select streams.unit_id, streams.occurred_at as measured_at, streams.value
from {{ ref('stg_events') }} as streams
cross join (select 1 as copy union all select 2) as copies
where streams.event_type = 'stream'
"""
DOUBLED_ENTRY = """
  - name: doubled_streams
    description: Streams per unit, each counted twice by a join that fans out.
    config:
      meta:
        metric:
          type: mean
          aggregation: count
    columns: *measurement_columns
"""

ENTRIES = """
  - name: heavy_listener
    description: Whether the unit listened for at least 60 minutes in its first 7 days after exposure.
    config:
      meta:
        metric:
          type: threshold
          aggregation: sum
          threshold: 60
          window_days: 7
          null_values: skip
          preferred_direction: increase
    columns: *measurement_columns

  - name: plausible_streams
    description: Streams per unit, a broken stream counting as a stream of 0 minutes.
    config:
      meta:
        metric:
          type: mean
          aggregation: count
          null_values: zero
    columns: *measurement_columns
"""


def verdict(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the `verdict` CLI on the project that `env` names."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_a_new_metric_model_reaches_the_results(tmp_path: Path) -> None:
    repo = copy_demo_project(tmp_path / "project")
    metrics = repo / "metrics"
    for name in ("heavy_listener", "plausible_streams"):
        (metrics / f"{name}.sql").write_text(MODEL)
    (metrics / "longest_stream.sql").write_text(LONGEST.format(offset=0))
    (metrics / "doubled_streams.sql").write_text(DOUBLED)
    (metrics / "longest_stream_at_epoch.sql").write_text(LONGEST.format(offset=f"{EPOCH:.0f}"))
    (metrics / "_metrics.yml").write_text(
        (metrics / "_metrics.yml").read_text() + ENTRIES + LONGEST_ENTRY.format(name="longest_stream", plus="")
        + LONGEST_ENTRY.format(name="longest_stream_at_epoch", plus=", plus 1e12") + DOUBLED_ENTRY
    )  # fmt: skip
    spec = repo / "experiments" / "playlist_recs.yml"
    spec.write_text(spec.read_text().replace("metrics:\n", "metrics:\n  - metric: heavy_listener\n    role: deterioration\n"
                                         "  - metric: plausible_streams\n    role: deterioration\n"
                                         "  - metric: longest_stream\n    role: deterioration\n"
                                         "  - metric: longest_stream_at_epoch\n    role: deterioration\n", 1))

    env = {**os.environ, "VERDICT_WAREHOUSE": str(tmp_path / "verdict.duckdb"), "VERDICT_PROJECT": str(repo)}
    env.pop("DAGSTER_HOME", None)
    verdict(repo, "simulate", "--units", "4000", env=env)
    listed = verdict(repo, "metrics", env={**env, "COLUMNS": "300"})
    assert "heavy_listener" in listed.stdout and "threshold=60" in listed.stdout
    ran = verdict(repo, "run", env={**env, "COLUMNS": "1000"})
    # the fanned-out model warns (its measurements_are_distinct check), and the others do not
    [summary] = [line for line in ran.stdout.splitlines() if line.startswith("nightly_analysis succeeded")]
    assert "measurements_are_distinct_doubled_streams_unit_id" in summary
    assert "measurements_are_distinct_longest_stream_unit_id" not in summary

    with duckdb.connect(str(tmp_path / "verdict.duckdb"), read_only=True) as con:
        rows = con.sql(
            """
            select metric_type, role, n_control + n_treatment, mean_control, status
            from main.experiment_results
            where experiment_id = 'playlist_recs' and metric_id = 'heavy_listener'
            order by as_of_date desc limit 1
            """
        ).fetchall()
        catalogue = {
            r[0]: r[1:] for r in con.sql(
                "select metric_id, metric_type, measurements, skipped_measurements from marts.metric_catalogue"
            ).fetchall()
        }  # fmt: skip
        [(streams, broken)] = con.sql(
            "select count(*), count(*) filter (where value > 120) from staging.stg_events where event_type = 'stream'"
        ).fetchall()
        [(plausible,)] = con.sql(
            """
            select n_control + n_treatment from main.experiment_results
            where experiment_id = 'playlist_recs' and metric_id = 'plausible_streams' and status = 'ok'
            order by as_of_date desc limit 1
            """
        ).fetchall()
        longest = con.sql(
            """
            select metric_id, as_of_date, status, mean_control, unadjusted_estimate, unadjusted_std_error
            from main.experiment_results
            where experiment_id = 'playlist_recs' and metric_id like 'longest_stream%'
            order by metric_id, as_of_date, treatment
            """
        ).pl()
        [(shift,)] = con.sql(
            "select distinct value_shift from marts.metric_sufficient_stats where metric_id = 'longest_stream_at_epoch'"
        ).fetchall()
    # values 1e12 + a few minutes: summed from a shift, the tests equal those of the minutes themselves
    assert shift == EPOCH
    plain, epoch = (longest.filter(pl.col("metric_id") == m) for m in ("longest_stream", "longest_stream_at_epoch"))
    assert epoch["status"].to_list() == plain["status"].to_list() and "ok" in epoch["status"]
    plain, epoch = (frame.filter(pl.col("status") == "ok") for frame in (plain, epoch))
    # (the CUPED-adjusted means differ a little: a unit without history has covariate 0, 1e12 from the others)
    assert epoch["mean_control"].to_numpy() == pytest.approx(plain["mean_control"].to_numpy() + EPOCH, rel=1e-11)
    for column in ("unadjusted_estimate", "unadjusted_std_error"):
        assert epoch[column].to_numpy() == pytest.approx(plain[column].to_numpy(), rel=1e-6, abs=1e-9), column
    assert broken > 0
    assert catalogue["heavy_listener"] == ("threshold", streams, broken)  # null values skipped, and counted
    assert catalogue["plausible_streams"] == ("mean", streams, 0)  # null values count as 0
    assert plausible > 0
    [(kind, role, units, share, status)] = rows
    assert (kind, role, status) == ("proportion", "deterioration", "ok")
    assert units > 0 and 0 < share < 1  # a share of units reached the threshold

"""One writer: two runs of the nightly job launched together on one instance both succeed, and their warehouse
steps never overlap (the `duckdb` pool of dagster.yaml admits one step at a time; the second run waits)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import partition_range_tags
from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.registry.spec import load_specs
from pipelines.verdict_project import REPO_ROOT
from pipelines.warehouse import WAREHOUSE_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IN_PROCESS = "execution:\n  config:\n    in_process: {}\n"


def launch(home: Path, env: dict[str, str]) -> subprocess.Popen:
    """`dagster job execute` of nightly_analysis, as the schedule or the UI would start it, in its own process."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "pipelines.definitions",
         "-j", "nightly_analysis", "-c", str(home / "in_process.yaml"),
         "--tags", json.dumps(partition_range_tags(dt.date(2026, 11, 1), dt.date(2026, 11, 21)))],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Start and end time of every step of a run."""
    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = entry.timestamp
    return {step: (starts[step], ends[step]) for step in starts}


def test_two_launches_wait_for_each_other_and_both_succeed(tmp_path: Path, manifest: Path):
    from pipelines.simulation import simulate

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    (home / "in_process.yaml").write_text(IN_PROCESS)
    database = tmp_path / "verdict.duckdb"
    simulate(database, experiments=load_specs(DEMO_EXPERIMENTS), units=3000, seed=3)
    env = {**os.environ, "DAGSTER_HOME": str(home), WAREHOUSE_ENV: str(database)}

    first = launch(home, env)
    time.sleep(2)  # the nightly run is going when the second one (a launch from the UI) starts
    second = launch(home, env)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert any("blocked by limit for pool duckdb" in o for o in outputs)

    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs()
    assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    a, b = (step_windows(instance, r.run_id) for r in runs)
    assert len(a) == len(b) >= 5  # registry, dbt, results, segments, health, decisions
    overlaps = [(s, t) for s, (s0, s1) in a.items() for t, (t0, t1) in b.items() if s0 < t1 and t0 < s1]
    assert overlaps == []

"""The terminal: `verdict list` and `verdict results EXPERIMENT` read without colour, and `verdict run` shows its
steps and a summary instead of dbt's log, which goes to a file."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines import cli
from pipelines.cli import app

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough for every table row on one line (a narrower one wraps the long cells)."""
    monkeypatch.setattr(cli.console, "width", 240)


def verdict(*args: str, database: Path):
    """The command on `database`, with no Dagster home (each run on its own ephemeral instance, as a user's first run)."""
    return CliRunner().invoke(app, list(args), env={"VERDICT_WAREHOUSE": str(database), "DAGSTER_HOME": None})


def latest(database: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(query).fetchall()


def test_list_shows_every_experiment_and_the_program(nightly_run) -> None:
    database, _ = nightly_run
    shown = verdict("list", database=database)
    assert shown.exit_code == 0, shown.output
    assert "\x1b[" not in shown.output  # no colour codes off a terminal: the words carry the meaning
    decisions = latest(database, "select experiment_id, treatment, decision from main.experiment_decisions "
                                 "qualify as_of_date = max(as_of_date) over (partition by experiment_id)")  # fmt: skip
    for experiment_id, treatment, decision in decisions:
        assert experiment_id in shown.output and f"{treatment}: {decision}" in shown.output
    assert "experiments with learning" in shown.output and "median days to a decision" in shown.output


def test_results_of_one_experiment_say_what_each_number_is(nightly_run) -> None:
    database, _ = nightly_run
    shown = verdict("results", "checkout_redesign", database=database)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    for heading in ("Recommendation", "Health checks", "Metrics", "difference", "relative", "level", "outcome"):
        assert heading in out
    [(upsell,)] = latest(database, "select decision from main.experiment_decisions where treatment = 'upsell' "
                                   "order by as_of_date desc limit 1")  # fmt: skip
    assert upsell.upper() in out
    rows = latest(database, "select metric_id, treatment, ci_level from main.experiment_results "
                            "where experiment_id = 'checkout_redesign' "
                            "qualify as_of_date = max(as_of_date) over ()")  # fmt: skip
    cells = [[cell.strip() for cell in line.split("│")] for line in out.splitlines() if line.startswith("│")]
    for metric_id, treatment, level in rows:
        [row] = [c for c in cells if c[1:4:2] == [metric_id, treatment]]
        assert f"{level * 100:.4g}%" in row
        assert row[-2] in ("better", "worse", "non-inferior", "inconclusive")
    assert "aa_homepage_copy" not in out  # one experiment only


def test_results_of_an_unknown_experiment_name_the_known_ones(nightly_run) -> None:
    database, _ = nightly_run
    shown = verdict("results", "nope", database=database)
    assert shown.exit_code == 1
    assert "no results for experiment 'nope'" in shown.output and "checkout_redesign" in shown.output


def test_run_shows_a_summary_and_keeps_dbts_log_in_a_file(nightly_run, tmp_path: Path) -> None:
    database, _ = nightly_run
    copy = tmp_path / "verdict.duckdb"
    shutil.copy2(database, copy)
    ran = verdict("run", "--date", "2026-11-21", database=copy)
    assert ran.exit_code == 0, ran.output
    assert "nightly_analysis succeeded" in ran.output
    assert "looks computed: 1, 2026-11-21 to 2026-11-21" in ran.output
    assert "Running with dbt" not in ran.output and "OK created" not in ran.output
    [log_line] = [line for line in ran.output.splitlines() if line.startswith("dbt's and the job's log: ")]
    log = Path(log_line.split(": ", 1)[1].strip())
    assert log.parent == tmp_path / "logs" and "Running with dbt" in log.read_text()

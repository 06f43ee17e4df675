"""Verdict's dbt unit tests (the `unit_tests:` of models/*/_*.yml) and its invariant data tests (tag:invariant: keys
and columns of its per-unit tables): they check Verdict's SQL, not a night's data, so the nightly build leaves them
out and the suite runs them here, on the end-to-end warehouse (dbt reads the column types of each input from it)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pipelines.assets.dbt import INVARIANT_TESTS, UNIT_TESTS
from pipelines.project import DBT_PROJECT_DIR, dbt_executable
from pipelines.verdict_project import REPO_ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("selector", "at_least"), [(UNIT_TESTS, 10), (INVARIANT_TESTS, 30)])
def test_every_unit_and_invariant_test_passes(nightly_run, tmp_path, selector, at_least):
    database, _ = nightly_run
    result = subprocess.run(
        [dbt_executable(), "test", "--select", selector, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(REPO_ROOT), "--target-path", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "VERDICT_WAREHOUSE": str(database)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    results = json.loads((tmp_path / "run_results.json").read_text())["results"]
    assert len(results) >= at_least and {r["status"] for r in results} == {"pass"}

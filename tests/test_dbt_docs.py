"""dbt docs: every model, and every column a model builds, is documented; every mart is tested."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.project import DBT_PROJECT_DIR, dbt_executable
from pipelines.verdict_project import REPO_ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def docs(nightly_run, tmp_path_factory) -> tuple[dict, dict]:
    """`dbt docs generate` against the end-to-end warehouse: (manifest, catalog)."""
    database, _ = nightly_run
    target = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [dbt_executable(), "docs", "generate", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(REPO_ROOT),
         "--target-path", str(target)],
        capture_output=True, text=True, env={**os.environ, "VERDICT_WAREHOUSE": str(database)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads((target / "manifest.json").read_text()), json.loads((target / "catalog.json").read_text())


def test_every_model_has_a_description(docs):
    manifest, _ = docs
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) > 20
    assert [m["name"] for m in models if not m["description"].strip()] == []


def test_every_built_column_is_documented(docs):
    manifest, catalog = docs
    undocumented = []
    for unique_id, entry in catalog["nodes"].items():
        node = manifest["nodes"][unique_id]
        documented = {name.lower() for name, column in node["columns"].items() if column.get("description", "").strip()}
        undocumented += [f"{node['name']}.{c}" for c in entry["columns"] if c.lower() not in documented]
    assert undocumented == []


def test_every_source_table_and_column_is_documented(docs):
    manifest, _ = docs
    missing = [
        f"{s['source_name']}.{s['name']}" + (f".{c}" if c else "")
        for s in manifest["sources"].values()
        for c in ["", *s["columns"]]
        if not (s["columns"][c]["description"] if c else s["description"]).strip()
    ]
    assert missing == []


def test_every_mart_has_data_tests(docs):
    manifest, _ = docs
    marts = {n["unique_id"]: n["name"] for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")}
    tested = {parent for n in manifest["nodes"].values() if n["resource_type"] == "test"
              for parent in n["depends_on"]["nodes"]}
    assert len(marts) >= 6
    assert sorted(name for unique_id, name in marts.items() if unique_id not in tested) == []

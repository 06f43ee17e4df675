"""Security: values from specs reach SQL only as validated identifiers or bound parameters; no secrets in the
repository; the UI listens on this machine only unless told otherwise."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.cli import BASELINES_QUERY
from pipelines.registry.spec import SpecError, parse_spec
from pipelines.verdict_project import REPO_ROOT
from pipelines.warehouse import read_frame
from test_registry_asset import materialize_registry, spec_check

INJECTIONS = ["x'; drop table raw.events; --", "conversion') or ('1'='1", 'minutes"; delete from raw.units; --']
VALID = {
    "id": "exp_one", "name": "Experiment one", "start_date": "2026-11-01",
    "variants": [{"id": "control", "weight": 0.5}, {"id": "treatment", "weight": 0.5}],
    "control": "control", "metrics": [{"metric": "conversion"}],
}  # fmt: skip


def warehouse_with_events(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw; create table raw.events as select 1 as event_id")


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize(
    ("place", "field"),
    [
        (lambda v: {"metrics": [{"metric": v}]}, "metrics.0.metric"),
        (lambda v: {"exposure_filter": {"metric": v}}, "exposure_filter.metric"),
        (lambda v: {"segments": [v]}, "segments.0"),
        (lambda v: {"variants": [{"id": "control", "weight": 0.5}, {"id": v, "weight": 0.5}]}, "variants.1.id"),
        (lambda v: {"control": v}, "control"),
    ],
)
def test_injection_through_a_spec_field_is_refused(tmp_path: Path, injection: str, place, field: str):
    path = tmp_path / "exp_one.yml"
    path.write_text(yaml.safe_dump({**VALID, **place(injection)}))
    with pytest.raises(SpecError) as error:
        parse_spec(path)
    assert f"field '{field}'" in str(error.value)


def test_injection_through_an_experiment_id_is_refused_and_touches_nothing(tmp_path: Path, manifest: Path):
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    injection = INJECTIONS[0]
    spec = experiments / f"{injection.replace('/', '_')}.yml"
    spec.write_text(yaml.safe_dump({**VALID, "id": injection}))
    database = tmp_path / "w.duckdb"
    warehouse_with_events(database)
    result = materialize_registry(experiments, database)
    check = spec_check(result)
    assert not check.passed and "field 'id'" in check.description and "not a valid identifier" in check.description
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.sql("select count(*) from raw.events").fetchall() == [(1,)]
        assert con.sql("select count(*) from registry.experiments").fetchall() == [(0,)]


def test_cli_values_are_bound_parameters(tmp_path: Path):
    """`verdict plan --experiment` reads the warehouse with the id as a bound parameter, never spliced in."""
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(
            "create schema marts; create table marts.metric_sufficient_stats as select 'exp' as experiment_id,"
            " 'm' as metric_id, true as is_control, date '2026-11-01' as as_of_date, 'mean' as analysis_type,"
            " 10 as n, 5.0 as sum, 9.0 as sum_sq, 0.0 as value_shift, null::double as den_sum, null::double as den_sum_sq,"
            " null::double as value_den_cross_sum"
        )
        assert read_frame(con, BASELINES_QUERY, ["exp"]).height == 1
        assert read_frame(con, BASELINES_QUERY, ["x' or '1'='1"]).height == 0
        assert con.sql("select count(*) from marts.metric_sufficient_stats").fetchall() == [(1,)]


SECRET_PATTERNS = [
    r"(?i)(password|passwd|secret|api[_-]?key|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+_-]{8,}",
    r"AKIA[0-9A-Z]{16}",  # an AWS access key id
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
]


def test_no_secret_lives_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    found = []
    for name in tracked.splitlines():
        path = REPO_ROOT / name
        if path.suffix in {".py", ".yml", ".yaml", ".toml", ".sql", ".md", ".cfg", ".ini", ""} and path.is_file():
            text = path.read_text(errors="ignore")
            found += [f"{name}: {m.group(0)[:40]}" for p in SECRET_PATTERNS for m in re.finditer(p, text)]
    assert found == []


def test_profiles_read_their_settings_from_the_environment():
    profile = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text())["verdict"]
    assert "env_var('VERDICT_DBT_TARGET'" in profile["target"]
    for output in profile["outputs"].values():
        assert not {"password", "user", "token"} & set(output)  # no credential lives in the file
        if output["type"] == "duckdb":
            assert "env_var('VERDICT_WAREHOUSE'" in output["path"]
        else:  # Spark: where it runs comes from the environment too
            assert "env_var('VERDICT_SPARK_MASTER'" in output["host"]
            assert "env_var('VERDICT_SPARK_WAREHOUSE'" in output["server_side_parameters"]["spark.sql.warehouse.dir"]


def test_the_ui_listens_on_localhost_unless_told_otherwise():
    default = subprocess.run(["make", "-n", "ui"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert "dagster dev --host 127.0.0.1 --port 3000" in default
    told = subprocess.run(["make", "-n", "ui", "UI_HOST=0.0.0.0"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert "--host 0.0.0.0" in told

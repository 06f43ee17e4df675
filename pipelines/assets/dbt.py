"""The dbt models and their data tests, as Dagster assets and asset checks.

A night's dbt work is two builds. The first builds the metric models, everything they read and the tests on those
alone; a metric model that fails to build or fails a data test there is broken, and only its own experiments
suffer: the second build, of everything else, leaves it out of the measurements (dbt var `broken_metrics`), and
the warehouse records it (`is_broken` in the metric catalogue), so that the statistics assets hold back the looks
of the experiments that use it. Any other failure fails the step, as one failed build would.

Both builds respect the run's selection: dagster-dbt adds the run's dbt selection to each command with `--select`,
and several `--select`s are a union in dbt, so a build narrows the selection with `--exclude` only.
"""

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from pydantic import Field

from pipelines.sources import source_problems
from pipelines.build_state import (
    Build, backdated_rows, fingerprint, needs_full_refresh, record_build, unit_level_metrics,
)  # fmt: skip
from pipelines.project import verdict_dbt_project
from pipelines.registry.catalogue import is_metric_model
from pipelines.resources import WarehouseResource
from pipelines.verdict_project import current_project

UNIT_TESTS = "resource_type:unit_test"
INVARIANT_TESTS = "tag:invariant"  # tests of Verdict's own SQL on its large tables (dbt_project.yml)
BUILT = ("model", "seed", "snapshot")  # the nodes `dbt build` materialises
FAILED = ("error", "fail")  # run result statuses of a node that failed (a warning does not)
TARGET_DIR = verdict_dbt_project.project_dir / verdict_dbt_project.target_path  # where dbt writes its artifacts
KEPT_INVOCATIONS = 20  # dbt artifacts of the last ten nights' two builds stay in dbt_project/target for debugging


class VerdictTranslator(DagsterDbtTranslator):
    """Group dbt assets by layer (the models' folder) so the UI shows the flow."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return dbt_resource_props["source_name"]
        if is_metric_model(dbt_resource_props):
            return "metrics"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetCheckSpec | None:
        """A dbt test as an asset check. One on a metric model does not block the step when it fails: the build
        leaves the broken model out and holds back only the experiments that use it."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or not metric_models(manifest) & set(manifest["nodes"][unique_id]["depends_on"]["nodes"]):
            return spec
        return dg.AssetCheckSpec(
            spec.name, asset=spec.asset_key, description=spec.description, additional_deps=spec.additional_deps,
            metadata=spec.metadata, blocking=False,
        )  # fmt: skip


@dataclass(frozen=True)
class BuildOutcome:
    """What the metric build left broken: metric model -> why; and the failures of anything else (node -> why)."""

    broken_metrics: dict[str, str]
    other_failures: dict[str, str]


def metric_models(manifest: Mapping[str, Any]) -> set[str]:
    """The unique ids of the metric models (the Verdict project's metrics folder)."""
    return {unique_id for unique_id, node in manifest["nodes"].items() if is_metric_model(node)}


def metric_build(manifest: Mapping[str, Any]) -> set[str]:
    """What the first build runs: the metric models, every node upstream of them, and the tests whose models are all
    among those (a test that also reads a later model runs in the second build, after it)."""
    nodes = manifest["nodes"]
    built, pending = set(), list(metric_models(manifest))
    while pending:
        unique_id = pending.pop()
        if unique_id in nodes and unique_id not in built:
            built.add(unique_id)
            pending += nodes[unique_id]["depends_on"]["nodes"]
    tests = {
        unique_id for unique_id, node in nodes.items()
        if node["resource_type"] == "test" and all(p in built for p in node["depends_on"]["nodes"] if p in nodes)
    }  # fmt: skip
    return built | tests


def selection(manifest: Mapping[str, Any], unique_ids: set[str]) -> list[str]:
    """dbt selectors (`fqn:`) of the built nodes and tests among `unique_ids`, sorted."""
    return sorted(
        "fqn:" + ".".join(manifest["nodes"][u]["fqn"]) for u in unique_ids
        if manifest["nodes"][u]["resource_type"] in (*BUILT, "test")
    )  # fmt: skip


def dbt_build_args(
    exclude: Sequence[str],
    broken_metrics: Sequence[str] = (),
    indirect_selection: str | None = None,
    *,
    full_refresh: bool = False,
) -> list[str]:
    """`dbt build` arguments: leave out `exclude`, the unit tests and the invariant tests, tell the metric macros which
    metric models are broken, set how tests follow the models the run selects, and rebuild the incremental models from
    all raw rows if asked. Unit tests and the invariant tests check Verdict's SQL, not the night's data: the test suite runs them
    (tests/test_dbt_unit_tests.py)."""
    args = ["build", *(["--full-refresh"] if full_refresh else [])]
    args += ["--exclude", " ".join([*exclude, UNIT_TESTS, INVARIANT_TESTS])]
    if indirect_selection:
        args += ["--indirect-selection", indirect_selection]
    if broken_metrics:  # only then: a var that differs from the parsed manifest's makes dbt parse the project again
        args += ["--vars", json.dumps({"broken_metrics": sorted(broken_metrics)})]
    return args


def _one_line(message: str | None) -> str:
    """A dbt message on one line."""
    return " ".join((message or "").split())


def build_outcome(run_results: Mapping[str, Any], manifest: Mapping[str, Any]) -> BuildOutcome:
    """Sort the first build's failures: a metric model that failed, was skipped after a failure upstream, or has a
    failed (or erroring) data test is broken; any other failed node is a failure of the build."""
    metrics = metric_models(manifest)
    tested = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    broken: dict[str, list[str]] = {}
    others: dict[str, str] = {}
    for result in run_results["results"]:
        unique_id, status = result["unique_id"], result["status"]
        node = tested[unique_id]
        if unique_id in metrics and status in (*FAILED, "skipped"):
            why = _one_line(result["message"]) if status != "skipped" else "skipped after a failure upstream"
            broken.setdefault(node["name"], []).append(why)
        elif status in FAILED and metrics & set(node["depends_on"]["nodes"]):
            for parent in sorted(metrics & set(node["depends_on"]["nodes"])):
                name = manifest["nodes"][parent]["name"]
                broken.setdefault(name, []).append(f"test {node['name']}: {_one_line(result['message'])}")
        elif status in FAILED:
            others[node["name"]] = _one_line(result["message"])
    return BuildOutcome({name: "; ".join(why) for name, why in sorted(broken.items())}, others)


def broken_metric_observations(outcome: BuildOutcome, manifest: Mapping[str, Any]) -> list[dg.AssetObservation]:
    """An observation on each broken metric model's asset: left out of the measurements, and why."""
    translator = VerdictTranslator()
    metrics = {manifest["nodes"][u]["name"]: manifest["nodes"][u] for u in metric_models(manifest)}
    return [
        dg.AssetObservation(
            asset_key=translator.get_asset_key(metrics[name]),
            metadata={"broken": True, "left_out_of": "int_metric_measurements", "reason": why},
        )
        for name, why in outcome.broken_metrics.items()
    ]


def second_build_indirect_selection(context: dg.AssetExecutionContext) -> str | None:
    """How tests follow the models in the second build: `buildable`, so that excluding the first build's models
    does not drop a test that also reads a model of the second; unless the run leaves out some tests of the models
    it selects, when dagster-dbt names every test to run and turns indirect selection off itself."""
    specs = context.assets_def.node_check_specs_by_output_name.values()
    selected, checks = context.selected_asset_keys, context.selected_asset_check_keys
    return None if any(s.asset_key in selected and s.key not in checks for s in specs) else "buildable"


def prune_invocation_targets(target: Path, keep: int = KEPT_INVOCATIONS) -> list[Path]:
    """Delete all but the newest `keep` invocation folders (dagster-dbt writes one per dbt command, with its
    artifacts, and never deletes them); return the deleted ones."""
    folders = sorted((p for p in target.glob(f"{verdict_dbt_models.op.name}-*") if p.is_dir()),
                     key=lambda p: p.stat().st_mtime, reverse=True)  # fmt: skip
    for folder in folders[keep:]:
        shutil.rmtree(folder, ignore_errors=True)
    return folders[keep:]


def load_manifest() -> dict[str, Any]:
    """The prepared dbt manifest, as the assets were defined from it."""
    return json.loads(verdict_dbt_project.manifest_path.read_text())


class DbtBuildConfig(dg.Config):
    """How the night's dbt build runs."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental models from all raw rows. Without it, a build is a full refresh only "
        "when the dbt project, the registry or the broken metric models changed since the last complete build.",
    )


@dbt_assets(
    manifest=verdict_dbt_project.manifest_path,
    project=verdict_dbt_project,
    dagster_dbt_translator=VerdictTranslator(),
    pool="duckdb",
)
def verdict_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, config: DbtBuildConfig
):
    """Build the selected models and run their tests (`dbt build`): first the metric models and what they read, then
    the rest without the metric models that broke; incrementally, unless something besides the raw data changed."""
    manifest = load_manifest()
    with warehouse.connect() as con:
        problems = source_problems(con, current_project())
        if problems:
            raise dg.Failure(description="\n".join(problems), metadata={"source_problems": len(problems)})
        current = fingerprint(con, verdict_dbt_project.project_dir)
        backdated = backdated_rows(con, current_project())
        unit_level = unit_level_metrics(con)
        full_refresh = config.full_refresh or needs_full_refresh(con, current) or bool(backdated) or bool(unit_level)
    if unit_level:
        context.log.info(f"unit-level metrics ({', '.join(unit_level)}): a full refresh reads their values again")
    if backdated:
        context.log.warning(
            "raw rows logged before the last build's scope arrived since ("
            + ", ".join(f"{table}: {count}" for table, count in backdated.items())
            + "): a full refresh reads them"
        )
    context.log.info(f"dbt build: {'full refresh' if full_refresh else 'incremental'} (fingerprint {current[:12]})")
    first_build = metric_build(manifest)
    rest = selection(manifest, set(manifest["nodes"]) - first_build)
    first = dbt.cli(dbt_build_args(rest, full_refresh=full_refresh), context=context, raise_on_error=False)
    yield from first.stream()
    if first.process.returncode not in (0, 1):  # 1: some nodes failed; anything else: dbt itself failed
        raise first.get_error()
    outcome = build_outcome(first.get_artifact("run_results.json"), manifest)
    if outcome.other_failures:
        raise dg.Failure(
            description="dbt build failed: " + "; ".join(f"{n}: {why}" for n, why in outcome.other_failures.items()),
            metadata={"failed_nodes": sorted(outcome.other_failures)},
        )
    for name, why in outcome.broken_metrics.items():
        context.log.warning(f"metric model {name} is broken and left out of the measurements: {why}")
    yield from broken_metric_observations(outcome, manifest)
    build = Build(current, tuple(sorted(outcome.broken_metrics)))
    with warehouse.connect() as con:
        full_refresh = full_refresh or needs_full_refresh(con, current, build.broken_metrics)
    args = dbt_build_args(
        selection(manifest, first_build), build.broken_metrics, second_build_indirect_selection(context),
        full_refresh=full_refresh,
    )  # fmt: skip
    yield from dbt.cli(args, context=context).stream()
    if not context.is_subset:  # a build of part of the project does not vouch for the rest
        with warehouse.connect() as con:
            record_build(con, build, full_refresh=full_refresh)
    prune_invocation_targets(TARGET_DIR)

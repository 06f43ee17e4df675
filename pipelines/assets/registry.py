"""The experiment registry: the Verdict project's specs (experiments/*.yml) validated and loaded as the dbt `registry` source."""

import json
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.project import verdict_dbt_project
from pipelines.registry.spec import DEFAULT_SEGMENTS, ExperimentSpec, SpecError, read_specs
from pipelines.registry.catalogue import metric_catalogue, resolve_each, unit_dimensions
from pipelines.registry.tables import SCHEMA, registry_frames
from pipelines.resources import WarehouseResource
from pipelines.verdict_project import current_project
from pipelines.warehouse import replace_table

REGISTRY_TABLES = ("experiments", "experiment_variants", "experiment_metrics", "experiment_segments")


class RegistryConfig(dg.Config):
    """Where the experiment specs live (the Verdict project's experiments/ unless a run says otherwise)."""

    experiments_dir: str = ""


SPECS_CHECK = "experiment_specs_are_valid"
# The specs left out, by the experiment each file is named after: their history is kept and their looks get a
# failed experiment_spec health check.
INVALID_SPECS = "invalid_specs"


def invalid_specs_frame(errors: list[SpecError]) -> pl.DataFrame:
    """One row per invalid spec file: experiment_id (null when the file name is not an id) and the problem."""
    return pl.DataFrame(
        {"experiment_id": [e.experiment_id for e in errors], "problem": [str(e) for e in errors]},
        schema={"experiment_id": pl.String, "problem": pl.String},
    )


def registry_tables(directory: Path) -> tuple[list[ExperimentSpec], list[SpecError], dict[str, pl.DataFrame]]:
    """The valid specs of `directory` resolved against the metric catalogue, the errors of the others, and the
    registry tables (with the default breakdowns the project's units map) and the invalid specs, by table name."""
    manifest = json.loads(verdict_dbt_project.manifest_path.read_text())
    specs, invalid = read_specs(directory)
    units = current_project().config.sources.units
    dimensions = unit_dimensions(manifest, units.dimensions if units is not None else ())
    resolved, unresolved = resolve_each(specs, metric_catalogue(manifest), directory, dimensions)
    errors = invalid + unresolved
    have = units.mapped() if units is not None else {}
    frames = registry_frames(resolved, [d for d in DEFAULT_SEGMENTS if have.get(d) is not None])
    return resolved, errors, {**frames, INVALID_SPECS: invalid_specs_frame(errors)}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey([SCHEMA, table]),
            description=f"Registry table {SCHEMA}.{table}, from the experiment specs.",
            group_name="registry",
            kinds={"duckdb"},
        )
        for table in REGISTRY_TABLES
    ],
    check_specs=[
        dg.AssetCheckSpec(
            SPECS_CHECK,
            asset=dg.AssetKey([SCHEMA, "experiments"]),
            description="Every spec file is valid; an invalid one is left out of the analysis with its file, field and fix.",
        )
    ],
    pool="duckdb",
)
def experiment_registry(config: RegistryConfig, warehouse: WarehouseResource):
    """Validate every spec and replace the registry tables with the valid ones. An invalid spec (file, field and fix)
    leaves only its own experiment out of the analysis and fails the `experiment_specs_are_valid` check."""
    directory = Path(config.experiments_dir) if config.experiments_dir else current_project().experiments_dir
    resolved, errors, frames = registry_tables(directory)
    with warehouse.connect() as con:
        for table, frame in frames.items():
            replace_table(con, SCHEMA, table, frame)
    for table in REGISTRY_TABLES:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey([SCHEMA, table]),
            metadata={"rows": len(frames[table]), "experiments": [s.id for s in resolved], "invalid_specs": len(errors)},
        )
    yield dg.AssetCheckResult(
        check_name=SPECS_CHECK,
        asset_key=dg.AssetKey([SCHEMA, "experiments"]),
        passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join(str(e) for e in errors)
        or (f"all {len(resolved)} specs are valid" if resolved else f"no experiment specs in {directory}: nothing to analyse"),
        metadata={"invalid_specs": len(errors), "valid_specs": len(resolved)},
    )

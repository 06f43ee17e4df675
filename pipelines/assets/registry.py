"""The experiment registry: specs in experiments/*.yml validated and loaded as the dbt `registry` source."""

import json
from pathlib import Path

import dagster as dg

from pipelines.project import EXPERIMENTS_DIR, verdict_dbt_project
from pipelines.registry.spec import SpecError, load_specs
from pipelines.registry.catalogue import metric_catalogue, resolve_specs, unit_dimensions
from pipelines.registry.tables import SCHEMA, registry_frames
from pipelines.resources import WarehouseResource
from pipelines.warehouse import replace_table

REGISTRY_TABLES = ("experiments", "experiment_variants", "experiment_metrics", "experiment_segments")


class RegistryConfig(dg.Config):
    """Where the experiment specs live (the repository's experiments/ unless a run says otherwise)."""

    experiments_dir: str = str(EXPERIMENTS_DIR)


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
    pool="duckdb",
)
def experiment_registry(config: RegistryConfig, warehouse: WarehouseResource):
    """Validate every spec (file, field and fix on error) and replace the registry tables."""
    directory = Path(config.experiments_dir)
    manifest = json.loads(verdict_dbt_project.manifest_path.read_text())
    try:
        specs = resolve_specs(load_specs(directory), metric_catalogue(manifest), directory, unit_dimensions(manifest))
    except SpecError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    frames = registry_frames(specs)
    with warehouse.connect() as con:
        for table, frame in frames.items():
            replace_table(con, SCHEMA, table, frame)
    for table in REGISTRY_TABLES:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey([SCHEMA, table]),
            metadata={"rows": len(frames[table]), "experiments": [s.id for s in specs]},
        )

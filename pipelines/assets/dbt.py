"""The dbt models and their data tests, as Dagster assets and asset checks."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.project import verdict_dbt_project


class VerdictTranslator(DagsterDbtTranslator):
    """Group dbt assets by layer (the models' folder) so the UI shows the flow."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return dbt_resource_props["source_name"]
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


@dbt_assets(
    manifest=verdict_dbt_project.manifest_path,
    project=verdict_dbt_project,
    dagster_dbt_translator=VerdictTranslator(),
    pool="duckdb",
)
def verdict_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build the selected models and run their tests (`dbt build`)."""
    yield from dbt.cli(["build"], context=context).stream()

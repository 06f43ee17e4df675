"""The metric catalogue as dbt declares it: models in models/metrics and their `meta.metric` settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.registry.spec import ExperimentSpec, SpecError


def metric_catalogue(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric name -> settings for every model under models/metrics in a dbt manifest."""
    return {
        node["name"]: node.get("config", {}).get("meta", {}).get("metric", {})
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/metrics/")
    }


def check_metrics_exist(specs: Sequence[ExperimentSpec], catalogue: Mapping[str, Any], directory: Path) -> None:
    """Fail, naming file and field, when a spec references a metric that has no model."""
    errors = []
    for spec in specs:
        problems = [
            (
                f"metrics.{i}.metric",
                f"unknown metric {use.metric!r}: use one of {sorted(catalogue)} "
                f"or add a model dbt_project/models/metrics/{use.metric}.sql with its YAML entry",
            )
            for i, use in enumerate(spec.metrics)
            if use.metric not in catalogue
        ]
        if problems:
            errors.append(str(SpecError.of(directory / f"{spec.id}.yml", problems)))
    if errors:
        raise SpecError("\n".join(errors))

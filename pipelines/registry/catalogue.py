"""The metric catalogue as dbt declares it: the project's metric models and their `meta.metric` settings.

dbt validates the settings when it builds (`macros/metric_catalogue.sql`); here the registry resolves each
experiment's metrics against the catalogue: names must exist, and what a spec leaves open (preferred direction,
minimum detectable effect, non-inferiority margin) comes from the metric's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.registry.spec import Direction, ExperimentSpec, MetricUse, Role, SpecError

Catalogue = Mapping[str, Mapping[str, Any]]


def is_metric_model(node: Mapping[str, Any]) -> bool:
    """Whether a manifest node is a metric model: a model in the Verdict project's metrics folder (as
    macros/metric_catalogue.sql's is_metric_model decides)."""
    return node["resource_type"] == "model" and node["original_file_path"].startswith("metrics/")


def metric_catalogue(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric name -> settings for every metric model in a dbt manifest."""
    return {
        node["name"]: node.get("config", {}).get("meta", {}).get("metric", {})
        for node in manifest["nodes"].values()
        if is_metric_model(node)
    }


def unit_dimensions(manifest: Mapping[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """The unit dimensions results can be broken down by: the documented columns of `stg_units` but its id, and the
    project's own (`extra`: the units source's dimensions)."""
    [units] = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["name"] == "stg_units"]
    documented = [column for column in units["columns"] if column != "unit_id"]
    return documented + [column for column in extra if column not in documented]


def _unknown(name: str, catalogue: Catalogue) -> str:
    return (
        f"unknown metric {name!r}: use one of {sorted(catalogue)} "
        f"or add a model metrics/{name}.sql to the Verdict project, with its YAML entry"
    )


def resolve_metric(use: MetricUse, settings: Mapping[str, Any]) -> MetricUse:
    """A spec's use of a metric with the catalogue's defaults filled in where the spec is silent."""
    guardrail = use.role is Role.GUARDRAIL
    return use.model_copy(
        update={
            "preferred_direction": use.preferred_direction
            or Direction(settings.get("preferred_direction") or Direction.INCREASE),
            "minimum_detectable_effect": use.minimum_detectable_effect
            or settings.get("minimum_detectable_effect"),
            "non_inferiority_margin": use.non_inferiority_margin
            or (settings.get("non_inferiority_margin") if guardrail else None),
        }
    )


def resolve_spec(
    spec: ExperimentSpec, catalogue: Catalogue, directory: Path, dimensions: Sequence[str] | None = None
) -> ExperimentSpec:
    """A spec with its metrics resolved against the catalogue; fail naming file, field and fix when it names a
    metric that has no model, leaves a guardrail without a margin, or (when `dimensions` are given) breaks results
    down by a unit dimension that does not exist."""
    problems: list[tuple[str, str]] = []
    uses = []
    for i, use in enumerate(spec.metrics):
        if use.metric not in catalogue:
            problems.append((f"metrics.{i}.metric", _unknown(use.metric, catalogue)))
            continue
        use = resolve_metric(use, catalogue[use.metric])
        if use.role is Role.GUARDRAIL and use.non_inferiority_margin is None:
            problems.append((
                f"metrics.{i}.non_inferiority_margin",
                f"guardrail metric {use.metric!r} needs a non_inferiority_margin (relative to the control mean, "
                "e.g. 0.02 for 2%): set it here or as meta.metric.non_inferiority_margin of the metric",
            ))  # fmt: skip
        uses.append(use)
    if spec.exposure_filter and spec.exposure_filter.metric not in catalogue:
        problems.append(("exposure_filter.metric", _unknown(spec.exposure_filter.metric, catalogue)))
    problems += [
        (f"segments.{i}", f"unknown unit dimension {dimension!r}: use one of {list(dimensions)} or add the "
         "column to dbt_project/models/staging/stg_units.sql and document it in _staging.yml")
        for i, dimension in enumerate(spec.segments)
        if dimensions is not None and dimension not in dimensions
    ]  # fmt: skip
    if problems:
        raise SpecError.of(directory / f"{spec.id}.yml", problems)
    return spec.model_copy(update={"metrics": uses})


def resolve_each(
    specs: Sequence[ExperimentSpec], catalogue: Catalogue, directory: Path, dimensions: Sequence[str] | None = None
) -> tuple[list[ExperimentSpec], list[SpecError]]:
    """Every spec that resolves (`resolve_spec`), and the error of each one that does not."""
    resolved, errors = [], []
    for spec in specs:
        try:
            resolved.append(resolve_spec(spec, catalogue, directory, dimensions))
        except SpecError as exc:
            errors.append(exc)
    return resolved, errors


def resolve_specs(
    specs: Sequence[ExperimentSpec], catalogue: Catalogue, directory: Path, dimensions: Sequence[str] | None = None
) -> list[ExperimentSpec]:
    """Every spec resolved (`resolve_spec`); all problems are reported together."""
    resolved, errors = resolve_each(specs, catalogue, directory, dimensions)
    if errors:
        raise SpecError("\n".join(str(e) for e in errors))
    return resolved

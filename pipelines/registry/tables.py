"""Registry tables: validated experiment specs as rows that dbt reads as the `registry` source."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipelines.registry.spec import DEFAULT_SEGMENTS, ExperimentSpec

SCHEMA = "registry"


def experiments_frame(specs: Sequence[ExperimentSpec]) -> pl.DataFrame:
    """One row per experiment."""
    return pl.DataFrame(
        [
            {
                "experiment_id": s.id,
                "name": s.name,
                "owner": s.owner,
                "unit_type": s.unit_type,
                "start_date": s.start_date,
                "end_date": s.end_date,
                "control_variant": s.control,
                "alpha": s.alpha,
                "power": s.power,
                "correction": s.correction.value,
                "sequential_method": s.sequential.value,
                "planned_units": s.planned_units,
                "spending": s.spending.value,
                "spending_rho": s.spending_rho,
                "sequential_tuning": s.confidence_sequence_tuning,
                "exposure_filter_metric": s.exposure_filter.metric if s.exposure_filter else None,
                "spec_file": f"experiments/{s.id}.yml",
            }
            for s in specs
        ],
        schema={
            "experiment_id": pl.String, "name": pl.String, "owner": pl.String, "unit_type": pl.String,
            "start_date": pl.Date, "end_date": pl.Date, "control_variant": pl.String, "alpha": pl.Float64,
            "power": pl.Float64, "correction": pl.String, "sequential_method": pl.String, "planned_units": pl.Int64,
            "spending": pl.String, "spending_rho": pl.Float64, "sequential_tuning": pl.Float64,
            "exposure_filter_metric": pl.String, "spec_file": pl.String,
        },
    )


def variants_frame(specs: Sequence[ExperimentSpec]) -> pl.DataFrame:
    """One row per experiment and variant with its planned weight."""
    return pl.DataFrame(
        [
            {"experiment_id": s.id, "variant": v.id, "planned_weight": v.weight, "is_control": v.id == s.control}
            for s in specs
            for v in s.variants
        ],
        schema={"experiment_id": pl.String, "variant": pl.String, "planned_weight": pl.Float64, "is_control": pl.Boolean},
    )


def metrics_frame(specs: Sequence[ExperimentSpec]) -> pl.DataFrame:
    """One row per experiment and metric with its role, MDE, non-inferiority margin, preferred direction and
    alternative (null: the default test)."""
    return pl.DataFrame(
        [
            {
                "experiment_id": s.id,
                "metric_id": m.metric,
                "role": m.role.value,
                "minimum_detectable_effect": m.minimum_detectable_effect,
                "non_inferiority_margin": m.non_inferiority_margin,
                "preferred_direction": m.preferred_direction and m.preferred_direction.value,
                "alternative": m.alternative and m.alternative.value,
            }
            for s in specs
            for m in s.metrics
        ],
        schema={
            "experiment_id": pl.String, "metric_id": pl.String, "role": pl.String,
            "minimum_detectable_effect": pl.Float64, "non_inferiority_margin": pl.Float64,
            "preferred_direction": pl.String, "alternative": pl.String,
        },
    )


def segments_frame(specs: Sequence[ExperimentSpec], defaults: Sequence[str] = DEFAULT_SEGMENTS) -> pl.DataFrame:
    """One row per experiment and unit dimension its results are broken down by."""
    return pl.DataFrame(
        [{"experiment_id": s.id, "dimension": d} for s in specs for d in s.segment_dimensions(defaults)],
        schema={"experiment_id": pl.String, "dimension": pl.String},
    )


def registry_frames(
    specs: Sequence[ExperimentSpec], default_segments: Sequence[str] = DEFAULT_SEGMENTS
) -> dict[str, pl.DataFrame]:
    """Every registry table by name (`default_segments`: the default breakdowns the project's units have)."""
    return {
        "experiments": experiments_frame(specs),
        "experiment_variants": variants_frame(specs),
        "experiment_metrics": metrics_frame(specs),
        "experiment_segments": segments_frame(specs, default_segments),
    }

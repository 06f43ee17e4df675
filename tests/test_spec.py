"""Experiment specs: the demo specs load; invalid specs name the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from pipelines.verdict_project import DEMO_EXPERIMENTS
from pipelines.registry.catalogue import metric_catalogue, resolve_specs, unit_dimensions
from pipelines.registry.spec import Alternative, SpecError, load_specs, parse_spec
from pipelines.registry.tables import registry_frames

VALID = {
    "id": "exp_one",
    "name": "An experiment",
    "start_date": "2026-11-01",
    "variants": [{"id": "control", "weight": 0.5}, {"id": "treatment", "weight": 0.5}],
    "control": "control",
    "metrics": [{"metric": "conversion", "role": "success"}],
}


def write(tmp_path: Path, spec: dict, name: str = "exp_one") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def with_changes(**changes) -> dict:
    return {**VALID, **changes}


def test_demo_specs_load():
    specs = load_specs(DEMO_EXPERIMENTS)
    assert {s.id for s in specs} == {"aa_homepage_copy", "playlist_recs", "checkout_redesign", "onboarding_flow"}
    checkout = next(s for s in specs if s.id == "checkout_redesign")
    assert checkout.treatments == ["compact", "upsell"]


def test_registry_frames_have_one_row_per_thing():
    specs = load_specs(DEMO_EXPERIMENTS)
    frames = registry_frames(specs)
    assert frames["experiments"].height == len(specs)
    assert frames["experiment_variants"].height == sum(len(s.variants) for s in specs)
    assert frames["experiment_metrics"].height == sum(len(s.metrics) for s in specs)
    assert frames["experiment_variants"].filter("is_control").height == len(specs)


@pytest.mark.parametrize(
    ("spec", "field", "fix"),
    [
        ({k: v for k, v in VALID.items() if k != "start_date"}, "start_date", "is required"),
        (with_changes(start_date="01/11/2026"), "start_date", "YYYY-MM-DD"),
        (with_changes(control="baseline"), "control", "control 'baseline' is not one of the variants"),
        (with_changes(variants=[{"id": "control", "weight": 0.5}, {"id": "treatment", "weight": 0.6}]), "variants", "must sum to 1"),
        (with_changes(variants=[{"id": "control", "weight": 1.0}]), "variants", "at least 2"),
        (with_changes(metrics=[{"metric": "conversion", "non_inferiority_margin": 0.1}]), "metrics.0", "set role: guardrail or remove the margin"),
        (with_changes(metrics=[{"metric": "conversion", "role": "winner"}]), "metrics.0.role", "'success', 'guardrail' or 'deterioration'"),
        (with_changes(alpha=0.7), "alpha", "less than 0.5"),
        (with_changes(end_date="2026-10-01"), "end_date", "before start_date"),
        (with_changes(metrics=[{"metric": "conversion"}, {"metric": "conversion"}]), "metrics", "listed once"),
        (with_changes(sequential="bayesian"), "sequential", "group_sequential"),
        (with_changes(colour="blue"), "colour", "not a known field"),
        (with_changes(sequential="group_sequential"), "(file)", "needs planned_units"),
        (with_changes(correction="tukey"), "correction", "'risk_aware', 'bonferroni', 'holm' or 'benjamini_hochberg'"),
        (with_changes(metrics=[{"metric": "conversion", "preferred_direction": "up"}]), "metrics.0.preferred_direction", "'increase' or 'decrease'"),
        (with_changes(id="Exp-One"), "id", "lower-case letters"),
        (with_changes(id="exp_two"), "id", "rename the file to exp_two.yml"),
        (with_changes(metrics=[{"metric": "x; drop table raw.events"}]), "metrics.0.metric", "not a valid identifier"),
        (with_changes(control="control\n", variants=[{"id": "control\n", "weight": 0.5}, {"id": "treatment", "weight": 0.5}]),
         "variants.0.id", "not a valid identifier"),
        (with_changes(metrics=[{"metric": "conversion\n"}]), "metrics.0.metric", "not a valid identifier"),
        (with_changes(control="control\n"), "control", "not a valid identifier"),
    ],
)
def test_invalid_spec_names_file_field_and_fix(tmp_path: Path, spec: dict, field: str, fix: str):
    path = write(tmp_path, spec)
    with pytest.raises(SpecError) as error:
        parse_spec(path)
    message = str(error.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert fix in message


def test_not_yaml_mapping(tmp_path: Path):
    path = tmp_path / "exp_one.yml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        parse_spec(path)


def test_every_bad_file_is_reported_together(tmp_path: Path):
    write(tmp_path, with_changes(alpha=2), "exp_one")
    write(tmp_path, {**with_changes(id="exp_two"), "control": "nobody"}, "exp_two")
    with pytest.raises(SpecError) as error:
        load_specs(tmp_path)
    assert "exp_one.yml" in str(error.value) and "exp_two.yml" in str(error.value)


def manifest_of(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def catalogue_of(manifest: Path) -> dict:
    return metric_catalogue(manifest_of(manifest))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"metrics": [{"metric": "conversion"}, {"metric": "happiness"}]}, "metrics.1.metric", "unknown metric 'happiness'"),
        ({"exposure_filter": {"metric": "checkout_views"}}, "exposure_filter.metric", "unknown metric 'checkout_views'"),
        ({"metrics": [{"metric": "conversion", "role": "guardrail"}]}, "metrics.0.non_inferiority_margin", "needs a non_inferiority_margin"),
        ({"segments": ["platform", "shoe_size"]}, "segments.1", "unknown unit dimension 'shoe_size'"),
    ],
)
def test_metrics_resolve_against_the_catalogue_or_name_the_field(tmp_path: Path, manifest: Path, changes, field, message):
    path = write(tmp_path, with_changes(**changes))
    with pytest.raises(SpecError) as error:
        resolve_specs([parse_spec(path)], catalogue_of(manifest), tmp_path, unit_dimensions(manifest_of(manifest)))
    assert str(path) in str(error.value) and f"field '{field}'" in str(error.value) and message in str(error.value)


def test_a_spec_takes_the_metric_defaults_it_leaves_open(tmp_path: Path, manifest: Path):
    catalogue = catalogue_of(manifest)
    assert catalogue["premium_upgrade"]["non_inferiority_margin"] == 0.10
    assert catalogue["crash_rate"]["preferred_direction"] == "decrease"
    uses = [
        {"metric": "conversion"},
        {"metric": "premium_upgrade", "role": "guardrail"},
        {"metric": "minutes_played", "role": "guardrail", "non_inferiority_margin": 0.05},
        {"metric": "crash_rate", "role": "deterioration"},
        {"metric": "sessions_per_user", "minimum_detectable_effect": 0.07, "preferred_direction": "decrease"},
    ]
    [spec] = resolve_specs([parse_spec(write(tmp_path, with_changes(metrics=uses)))], catalogue, tmp_path)
    rows = {r["metric_id"]: r for r in registry_frames([spec])["experiment_metrics"].iter_rows(named=True)}
    assert rows["conversion"]["minimum_detectable_effect"] == 0.05 and rows["conversion"]["non_inferiority_margin"] is None
    assert rows["premium_upgrade"]["non_inferiority_margin"] == 0.10
    assert rows["minutes_played"]["non_inferiority_margin"] == 0.05  # the spec wins over the metric's 0.02
    assert rows["crash_rate"]["preferred_direction"] == "decrease"
    assert rows["sessions_per_user"]["preferred_direction"] == "decrease"
    assert rows["sessions_per_user"]["minimum_detectable_effect"] == 0.07
    assert rows["sessions_per_user"]["non_inferiority_margin"] is None


def test_sequential_settings_reach_the_registry(tmp_path: Path):
    spec = parse_spec(write(tmp_path, with_changes(sequential="group_sequential", planned_units=40000)))
    experiments = registry_frames([spec])["experiments"].row(0, named=True)
    assert experiments["planned_units"] == 40000 and experiments["spending"] == "power"
    assert experiments["sequential_tuning"] == 40000.0 and experiments["correction"] == "risk_aware"


@pytest.mark.parametrize("correction", ["holm", "benjamini_hochberg"])
@pytest.mark.parametrize("sequential", ["group_sequential", "confidence_sequence"])
def test_a_step_wise_correction_is_refused_with_a_sequential_method(tmp_path: Path, correction: str, sequential: str):
    path = write(tmp_path, with_changes(correction=correction, sequential=sequential, planned_units=40000))
    with pytest.raises(SpecError) as error:
        parse_spec(path)
    message = str(error.value)
    assert str(path) in message and "field '(file)'" in message
    assert f"correction {correction!r} cannot be combined with sequential {sequential!r}" in message
    assert "use correction: risk_aware or bonferroni, or sequential: none" in message


@pytest.mark.parametrize(
    ("correction", "sequential"),
    [
        ("risk_aware", "group_sequential"),
        ("risk_aware", "confidence_sequence"),
        ("bonferroni", "group_sequential"),
        ("bonferroni", "confidence_sequence"),
        ("holm", "none"),
        ("benjamini_hochberg", "none"),
    ],
)
def test_other_corrections_and_sequential_methods_combine(tmp_path: Path, correction: str, sequential: str):
    spec = parse_spec(write(tmp_path, with_changes(correction=correction, sequential=sequential, planned_units=40000)))
    assert (spec.correction.value, spec.sequential.value) == (correction, sequential)


def test_a_metric_may_ask_for_its_alternative(tmp_path: Path):
    uses = [
        {"metric": "conversion"},
        {"metric": "minutes_played", "alternative": "two_sided"},
        {"metric": "crash_rate", "role": "deterioration", "alternative": "two_sided"},
        {"metric": "premium_upgrade", "role": "guardrail", "non_inferiority_margin": 0.1, "alternative": "one_sided"},
    ]
    spec = parse_spec(write(tmp_path, with_changes(metrics=uses)))
    assert [m.alternative for m in spec.metrics] == [None, Alternative.TWO_SIDED, Alternative.TWO_SIDED, Alternative.ONE_SIDED]
    rows = registry_frames([spec])["experiment_metrics"]
    assert rows.schema["alternative"] == pl.String
    assert rows["alternative"].to_list() == [None, "two_sided", "two_sided", "one_sided"]


@pytest.mark.parametrize(
    ("use", "field", "fix"),
    [
        ({"metric": "premium_upgrade", "role": "guardrail", "alternative": "two_sided"}, "metrics.0",
         "a guardrail's non-inferiority test is one-sided: remove alternative or change the role"),
        ({"metric": "conversion", "alternative": "both"}, "metrics.0.alternative", "'one_sided' or 'two_sided'"),
    ],
)
def test_a_bad_alternative_names_file_field_and_fix(tmp_path: Path, use: dict, field: str, fix: str):
    path = write(tmp_path, with_changes(metrics=[use]))
    with pytest.raises(SpecError) as error:
        parse_spec(path)
    message = str(error.value)
    assert str(path) in message and f"field '{field}'" in message and fix in message


def test_a_resolved_metric_keeps_its_alternative(tmp_path: Path, manifest: Path):
    uses = [{"metric": "conversion", "alternative": "two_sided"}, {"metric": "minutes_played"}]
    [spec] = resolve_specs([parse_spec(write(tmp_path, with_changes(metrics=uses)))], catalogue_of(manifest), tmp_path)
    assert registry_frames([spec])["experiment_metrics"]["alternative"].to_list() == ["two_sided", None]

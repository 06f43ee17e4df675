"""Experiment specs: one YAML file per experiment, validated with pydantic."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.functional_validators import AfterValidator

DEFAULT_SEQUENTIAL_TUNING = 5000.0
DEFAULT_SEGMENTS = ("country", "platform")  # every experiment's results are also broken down by these
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")  # whole strings only: use fullmatch (`$` accepts a final newline)


def _identifier(value: str) -> str:
    """Accept lower-case SQL-safe identifiers only (they name tables, columns and rows)."""
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid identifier: use lower-case letters, digits and underscores, "
            "starting with a letter (at most 63 characters)"
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


class Role(StrEnum):
    """How a metric enters the decision (Confidence's success / guardrail / deterioration-only)."""

    SUCCESS = "success"
    GUARDRAIL = "guardrail"
    DETERIORATION = "deterioration"


class SequentialMethod(StrEnum):
    """How often-peeked results are protected; `none` is a fixed-horizon analysis."""

    NONE = "none"
    GROUP_SEQUENTIAL = "group_sequential"
    CONFIDENCE_SEQUENCE = "confidence_sequence"


class Direction(StrEnum):
    """Which way a metric should move."""

    INCREASE = "increase"
    DECREASE = "decrease"


class Correction(StrEnum):
    """Multiple-testing correction over an experiment's metrics x treatments."""

    RISK_AWARE = "risk_aware"  # Spotify's: alpha over success metrics only, power raised for guardrails
    BONFERRONI = "bonferroni"
    HOLM = "holm"
    BENJAMINI_HOCHBERG = "benjamini_hochberg"


STEP_WISE_CORRECTIONS = (Correction.HOLM, Correction.BENJAMINI_HOCHBERG)  # alpha depends on the other p-values


class Alternative(StrEnum):
    """Which test a metric gets; unset: a success metric one-sided in its preferred direction."""

    ONE_SIDED = "one_sided"
    TWO_SIDED = "two_sided"  # e.g. an exploratory metric; not a guardrail (non-inferiority is one-sided)


class Spending(StrEnum):
    """Lan-DeMets alpha-spending function of a group-sequential test."""

    POWER = "power"  # alpha t^rho
    OBF = "obf"  # O'Brien-Fleming type
    POCOCK = "pocock"  # Pocock type


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(Strict):
    id: Identifier
    weight: float = Field(gt=0, le=1, description="planned share of traffic")


class MetricUse(Strict):
    metric: Identifier = Field(description="name of a metric model in dbt_project/models/metrics")
    role: Role = Role.SUCCESS
    minimum_detectable_effect: float | None = Field(default=None, gt=0, description="relative MDE")
    non_inferiority_margin: float | None = Field(default=None, gt=0, description="relative NIM")
    preferred_direction: Direction | None = Field(default=None, description="default: the metric's, else increase")
    alternative: Alternative | None = Field(
        default=None, description="default: one-sided in the preferred direction (guardrails: always one-sided)"
    )

    @model_validator(mode="after")
    def _margins_are_for_guardrails(self) -> Self:
        if self.role is not Role.GUARDRAIL and self.non_inferiority_margin is not None:
            raise ValueError(
                f"metric {self.metric!r} has a non_inferiority_margin but role {self.role.value!r}: "
                "set role: guardrail or remove the margin"
            )
        if self.role is Role.GUARDRAIL and self.alternative is Alternative.TWO_SIDED:
            raise ValueError(
                f"metric {self.metric!r} has alternative 'two_sided' but role 'guardrail': "
                "a guardrail's non-inferiority test is one-sided: remove alternative or change the role"
            )
        return self


class ExposureFilter(Strict):
    metric: Identifier = Field(
        description="a metric whose first measurement after exposure starts the unit's analysis (triggered analysis)"
    )


class ExperimentSpec(Strict):
    id: Identifier
    name: str = Field(min_length=1)
    owner: str | None = None
    unit_type: Identifier = "user"
    start_date: dt.date
    end_date: dt.date | None = None
    variants: list[Variant] = Field(min_length=2)
    control: Identifier
    metrics: list[MetricUse] = Field(min_length=1)
    exposure_filter: ExposureFilter | None = None
    segments: list[Identifier] = Field(
        default_factory=list, description="unit dimensions to break results down by, besides country and platform"
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    correction: Correction = Correction.RISK_AWARE
    sequential: SequentialMethod = SequentialMethod.NONE
    planned_units: int | None = Field(default=None, gt=1, description="total units the design expects")
    spending: Spending = Spending.POWER
    spending_rho: float = Field(default=2.0, gt=0, description="exponent of the power spending function")
    sequential_tuning: float | None = Field(default=None, gt=0, description="confidence sequence tuning, in units")

    @model_validator(mode="after")
    def _sequential_design(self) -> Self:
        if self.sequential is SequentialMethod.GROUP_SEQUENTIAL and self.planned_units is None:
            raise ValueError(
                "a group_sequential experiment needs planned_units (the total units the design expects, "
                "from `verdict plan`): the information fraction of each look is units so far / planned_units"
            )
        return self

    @model_validator(mode="after")
    def _step_wise_correction_is_fixed_horizon(self) -> Self:
        if self.correction in STEP_WISE_CORRECTIONS and self.sequential is not SequentialMethod.NONE:
            raise ValueError(
                f"correction {self.correction.value!r} cannot be combined with sequential {self.sequential.value!r}: "
                "a step-wise correction's alpha depends on the other p-values at each look, so the alpha a "
                "sequential test spends would change between looks; use correction: risk_aware or bonferroni, "
                "or sequential: none"
            )
        return self

    @field_validator("end_date")
    @classmethod
    def _ends_after_start(cls, end_date: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if end_date is not None and start is not None and end_date < start:
            raise ValueError(f"end_date {end_date} is before start_date {start}: fix one of them")
        return end_date

    @field_validator("variants")
    @classmethod
    def _variants_add_up(cls, variants: list[Variant]) -> list[Variant]:
        ids = [v.id for v in variants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"variant ids must be unique, got {ids}")
        total = sum(v.weight for v in variants)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"variant weights must sum to 1, got {total:g}: adjust the weights")
        return variants

    @field_validator("control")
    @classmethod
    def _control_is_a_variant(cls, control: str, info: ValidationInfo) -> str:
        ids = [v.id for v in info.data.get("variants", [])]
        if ids and control not in ids:
            raise ValueError(f"control {control!r} is not one of the variants {ids}: name one of them")
        return control

    @field_validator("metrics")
    @classmethod
    def _metrics_once(cls, metrics: list[MetricUse]) -> list[MetricUse]:
        names = [m.metric for m in metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"each metric may be listed once, got {names}")
        return metrics

    @property
    def confidence_sequence_tuning(self) -> float:
        """Units at which the confidence sequence is tightest: as set, else the planned units, else 5,000 (gbstats)."""
        return float(self.sequential_tuning or self.planned_units or DEFAULT_SEQUENTIAL_TUNING)

    def segment_dimensions(self, defaults: Sequence[str] = DEFAULT_SEGMENTS) -> list[str]:
        """The unit dimensions the results are broken down by: the defaults (those the project's units have), then
        the spec's own."""
        return list(dict.fromkeys([*defaults, *self.segments]))

    @property
    def treatments(self) -> list[str]:
        return [v.id for v in self.variants if v.id != self.control]


class SpecError(ValueError):
    """Spec files that cannot be used, each with the file, the field and how to fix it."""

    path: Path | None = None  # the file, when the error is one file's

    @classmethod
    def of(cls, path: Path, problems: list[tuple[str, str]]) -> SpecError:
        lines = [f"{path}: invalid experiment spec"]
        lines += [f"  - field '{field}': {message}" for field, message in problems]
        error = cls("\n".join(lines))
        error.path = path
        return error

    @property
    def experiment_id(self) -> str | None:
        """The experiment the file is named after (a spec's id must match its file name), if a valid id."""
        return self.path.stem if self.path is not None and IDENTIFIER.fullmatch(self.path.stem) else None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def _fix(error: dict) -> str:
    """Say what is wrong and how to fix it, in the words of the spec author."""
    kind, msg = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return "is required: add it to the file"
    if kind == "extra_forbidden":
        return "is not a known field: remove it or check its spelling"
    if kind == "enum":
        return f"{msg} (got {error['input']!r})"
    if kind.startswith("date"):
        return f"{msg}: write the date as YYYY-MM-DD (got {error['input']!r})"
    return msg


def parse_spec(path: Path) -> ExperimentSpec:
    """Read and validate one spec file; raise SpecError naming the file, field and fix."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError.of(path, [("(file)", f"is not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise SpecError.of(path, [("(file)", "must be a YAML mapping of field: value")])
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError.of(path, [(_field(e["loc"]), _fix(e)) for e in exc.errors()]) from None
    if spec.id != path.stem:
        raise SpecError.of(path, [("id", f"{spec.id!r} must match the file name: rename the file to {spec.id}.yml")])
    return spec


def read_specs(directory: Path) -> tuple[list[ExperimentSpec], list[SpecError]]:
    """Validate every `*.yml` spec in a directory: the valid specs, and one error per invalid file (a file whose id
    another file already uses is invalid)."""
    paths = sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml"))
    specs: list[ExperimentSpec] = []
    errors: list[SpecError] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            spec = parse_spec(path)
        except SpecError as exc:
            errors.append(exc)
            continue
        if spec.id in seen:
            errors.append(SpecError.of(path, [("id", f"{spec.id!r} is already used by {seen[spec.id]}: pick another id")]))
            continue
        seen[spec.id] = path
        specs.append(spec)
    return specs, errors


def load_specs(directory: Path) -> list[ExperimentSpec]:
    """Every spec in a directory; all problems are reported together."""
    specs, errors = read_specs(directory)
    if errors:
        raise SpecError("\n".join(str(e) for e in errors))
    return specs

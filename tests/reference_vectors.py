"""The reference vectors in ../shared/reference: where they are, how to read them, how close is close enough.

`VERDICT_REFERENCE_FILE` overrides the spotify-confidence 4.1.0 file, `VERDICT_GBSTATS_REFERENCE_FILE` the gbstats
0.8.0 file; any file of the same format works. A missing file fails the reference tests, never skips them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
from pathlib import Path

import polars as pl
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
CONFIDENCE_ENV, GBSTATS_ENV = "VERDICT_REFERENCE_FILE", "VERDICT_GBSTATS_REFERENCE_FILE"
CONFIDENCE = Path(os.environ.get(CONFIDENCE_ENV, SHARED / "confidence_4_1_0.jsonl"))
GBSTATS = Path(os.environ.get(GBSTATS_ENV, SHARED / "gbstats_0_8_0.jsonl"))
REL_TOL, ABS_TOL = 1e-6, 1e-9  # the README's tolerances for closed-form quantities
DATE = dt.date(2024, 1, 1)
INFINITE = {"inf": math.inf, "-inf": -math.inf}


def require(path: Path) -> None:
    """Fail (not skip) when a reference file is missing, naming the variable that points to it."""
    if not path.is_file():
        env = CONFIDENCE_ENV if path == CONFIDENCE else GBSTATS_ENV
        pytest.fail(f"reference file not found: {path} (set {env} or provide ../shared/reference next to the repository)")


@functools.cache
def records(path: Path) -> tuple[dict, ...]:
    """Every JSON line of a reference file."""
    with path.open() as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def of_kind(path: Path, *kinds: str) -> list[dict]:
    """The families (or cases) of the given kinds."""
    return [r for r in records(path) if r["kind"] in kinds]


def params(path: Path, *kinds: str) -> list:
    """One pytest param per family (or case) of the kinds, or one failing param when the file is missing."""
    if not path.is_file():
        return [pytest.param(None, id="reference-file-missing")]
    return [pytest.param(r, id=r.get("family_id") or r["case_id"]) for r in of_kind(path, *kinds)]


def close(got: float | None, want: float | str | None, rel: float = REL_TOL, abs_: float = ABS_TOL) -> bool:
    """Within tolerance; "inf"/"-inf" (open ends of one-sided intervals) must match exactly."""
    want = INFINITE.get(want, want) if isinstance(want, str) else want
    if got is None or want is None:
        return got is None and want is None
    if math.isinf(want) or math.isinf(got):
        return got == want
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


def confidence_variant_rows(family: dict) -> pl.DataFrame:
    """A spotify-confidence family's input as the engine's variant rows (one experiment per family; the
    family's margins as hypothesis columns; covariate sums for `cuped`; `day` kept for `gst`)."""
    margins = family["non_inferiority_margins"] or {}
    optional = ("cov_sum", "cov_sum_sq", "cross_sum", "day", "final_expected_sample_size")
    return pl.DataFrame(
        {
            "experiment_id": family["family_id"],
            "metric_id": r["metric"],
            "as_of_date": DATE + dt.timedelta(days=r.get("day", 0)),
            "variant": r["group"],
            "is_control": r["group"] == "control",
            "metric_type": "proportion" if family["metrics"][r["metric"]] == "binary" else "mean",
            "n": r["n"],
            "sum": float(r["sum"]),
            "sum_sq": float(r["sum_sq"]),
            "preferred_direction": margins.get(r["metric"], {}).get("preferred_direction"),
            "non_inferiority_margin": margins.get(r["metric"], {}).get("margin"),
            **{k: r[k] for k in optional if k in r},
        }
        for r in family["input"]
    )

"""The reference vectors in ../shared/reference: where they are, how to read them, how close is close enough, and
how their inputs become the engine's (`pipelines.stats.compare`, the function the nightly job calls).

`VERDICT_REFERENCE_FILE` overrides the spotify-confidence 4.1.0 file, `VERDICT_GBSTATS_REFERENCE_FILE` the gbstats
0.8.0 file; any file of the same format works (see tests/test_reference_files.py). A missing file fails the
reference tests, never skips them. tests/reference_data holds extra vectors of the same format for cases the
shared files lack (computed with the same libraries by tests/reference_data/generate.py).

Every check here takes the families or cases it is given: no check assumes that a kind, a family or a case is in
a file.
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

from pipelines.stats import compare

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
CONFIDENCE_ENV, GBSTATS_ENV = "VERDICT_REFERENCE_FILE", "VERDICT_GBSTATS_REFERENCE_FILE"
CONFIDENCE = Path(os.environ.get(CONFIDENCE_ENV, SHARED / "confidence_4_1_0.jsonl"))
GBSTATS = Path(os.environ.get(GBSTATS_ENV, SHARED / "gbstats_0_8_0.jsonl"))
EXTRA = Path(__file__).resolve().parent / "reference_data"
GBSTATS_ERRORS = EXTRA / "gbstats_0_8_0_errors.jsonl"  # degenerate cases: gbstats reports an error
CONFIDENCE_BINARY_CUPED = EXTRA / "confidence_4_1_0_binary_cuped.jsonl"  # z-test-linreg with a binary metric
REL_TOL, ABS_TOL = 1e-6, 1e-9  # the README's tolerances for closed-form quantities
DATE = dt.date(2024, 1, 1)
INFINITE = {"inf": math.inf, "-inf": -math.inf}
POWER = 0.8

# The kinds the README documents.
CONFIDENCE_KINDS = ("z", "t", "nim", "cuped", "gst", "spot1")
GBSTATS_KINDS = ("mean", "proportion", "ratio", "cuped", "cuped_proportion", "sequential", "one_sided")
CONFIDENCE_METHODS = {"z-test": "z", "t-test": "t", "z-test-linreg": "z"}
# compare()'s arguments for each library's conventions.
GBSTATS_CONVENTION = dict(method="t", correction="none", relative_method="delta", cuped="gbstats", zero_variance="either")


def confidence_convention(family: dict) -> dict:
    """compare()'s arguments for a spotify-confidence family (its alpha, test, correction and conventions)."""
    return dict(
        alpha=family["alpha"], method=CONFIDENCE_METHODS[family["method"]], power=POWER, powered_effect="confidence",
        correction=family["correction_method"], relative_method="simple", non_inferiority="plug_in",
        cuped="confidence",
    )  # fmt: skip


def require(path: Path) -> None:
    """Fail (not skip) when a reference file is missing, naming the variable that points to it."""
    if not path.is_file():
        env = GBSTATS_ENV if path == GBSTATS else CONFIDENCE_ENV
        pytest.fail(f"reference file not found: {path} (set {env} or provide ../shared/reference next to the repository)")


@functools.cache
def records(path: Path) -> tuple[dict, ...]:
    """Every JSON line of a reference file."""
    with path.open() as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def of_kind(path: Path, *kinds: str) -> list[dict]:
    """The families (or cases) of the given kinds."""
    return [r for r in records(path) if r["kind"] in kinds]


def record_id(record: dict) -> str:
    return record.get("family_id") or record["case_id"]


def params(path: Path, *kinds: str, prefix: str = "") -> list:
    """One pytest param per family (or case) of the kinds, one failing param when the file is missing, or one
    skipped param (with the reason) when the file holds none of the kinds."""
    if not path.is_file():
        return [pytest.param(None, id=f"{prefix}reference-file-missing")]
    found = [pytest.param(r, id=prefix + record_id(r)) for r in of_kind(path, *kinds)]
    reason = f"no family or case of kind {' / '.join(kinds)} in {path}"
    return found or [pytest.param(None, id=f"{prefix}no-{'-'.join(kinds)}", marks=pytest.mark.skip(reason=reason))]


def path_params(path: Path, *kinds: str, prefix: str = "") -> list:
    """`params` as (path, record) pairs, for a test over several files."""
    return [pytest.param(path, *p.values, id=p.id, marks=p.marks) for p in params(path, *kinds, prefix=prefix)]


def check_known_kinds(path: Path, known: tuple[str, ...]) -> None:
    """A valid file: every record of a documented kind, ids unique."""
    found = [r["kind"] for r in records(path)]
    assert set(found) <= set(known), f"undocumented kinds {set(found) - set(known)} in {path}"
    ids = [record_id(r) for r in records(path)]
    assert len(ids) == len(set(ids)), f"repeated ids in {path}"


def number(value) -> float | None:
    """A field as a float: "inf" / "-inf" are the open ends of one-sided intervals, null stays None."""
    return None if value is None else float(value)


def close(got: float | None, want: float | str | None, rel: float = REL_TOL, abs_: float = ABS_TOL) -> bool:
    """Within tolerance; "inf"/"-inf" (open ends of one-sided intervals) must match exactly."""
    want = INFINITE.get(want, want) if isinstance(want, str) else want
    if got is None or want is None:
        return got is None and want is None
    if math.isinf(want) or math.isinf(got):
        return got == want
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


# ---------------------------------------------------------------------------------------------------------------
# spotify-confidence families


def confidence_variant_rows(family: dict) -> pl.DataFrame:
    """A spotify-confidence family's input as the engine's variant rows (one experiment per family; the
    family's margins as hypothesis columns; covariate sums for `cuped`; `day` kept for `gst`)."""
    margins = family["non_inferiority_margins"] or {}
    optional = ("cov_sum", "cov_sum_sq", "cross_sum", "day", "final_expected_sample_size")
    return pl.DataFrame(
        [
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
        ],
        schema_overrides={"preferred_direction": pl.String, "non_inferiority_margin": pl.Float64},
        infer_schema_length=None,
    )


def confidence_compare(family: dict) -> pl.DataFrame:
    """compare() on a fixed-horizon family (z, t, nim, spot1, cuped) with the library's conventions."""
    return compare(confidence_variant_rows(family), **confidence_convention(family))


# Expected fields and the engine's: divided by the control mean when the family has `absolute: false` (the
# library's simple relative convention), or compared as they are.
RELATIVE_FIELDS = {"difference": "relative_estimate", "ci_lower": "relative_ci_lower", "ci_upper": "relative_ci_upper"}
ABSOLUTE_FIELDS = {"difference": "estimate", "ci_lower": "ci_lower", "ci_upper": "ci_upper"}
SCALED_FIELDS = ("adjusted_ci_lower", "adjusted_ci_upper", "powered_effect", "null_hypothesis")
DIRECT_FIELDS = ("p_value", "adjusted_p_value", "adjusted_alpha", "adjusted_power", "required_sample_size")


def confidence_mismatches(family: dict, out: pl.DataFrame, direct: tuple[str, ...] = ()) -> list[tuple]:
    """Every expected row of a fixed-horizon family against compare()'s output: one tuple per disagreement
    (`direct`: extra fields compared as they are, e.g. `variance_reduction_rate`)."""
    rows = {(r["metric_id"], r["treatment"]): r for r in out.to_dicts()}
    bad: list[tuple] = []
    if len(rows) != len(family["expected"]) or out.height != len(family["expected"]):
        bad.append(("row count", out.height, len(family["expected"])))
    for exp in family["expected"]:
        where = (exp["metric"], exp["treatment"])
        got = rows.get(where)
        if got is None:
            bad.append((*where, "missing row"))
            continue
        if got["status"] != "ok":
            bad.append((*where, "status", got["status"], got["status_reason"]))
            continue
        if got["control"] != exp["control"]:
            bad.append((*where, "control", got["control"], exp["control"]))
        scale = 1.0 if family["absolute"] else got["mean_control"]
        actual = {name: got[col] for name, col in (ABSOLUTE_FIELDS if family["absolute"] else RELATIVE_FIELDS).items()}
        actual |= {name: None if got[name] is None else got[name] / scale for name in SCALED_FIELDS}
        actual |= {name: got[name] for name in (*DIRECT_FIELDS, *direct)}
        for name, value in actual.items():
            # null: the library gives no value (powered_effect of the t-test; required_sample_size without an
            # alternative hypothesis): neither may the engine.
            if not close(value, exp[name]):
                bad.append((*where, name, value, exp[name]))
        for name in ("is_significant", "preference"):
            if got[name] != exp[name]:
                bad.append((*where, name, got[name], exp[name]))
    return bad


# ---------------------------------------------------------------------------------------------------------------
# gbstats cases

SIDE = {"greater": 1, "lesser": -1}


def gbstats_variant_rows(cases: list[dict]) -> pl.DataFrame:
    """gbstats cases as the engine's variant rows, one experiment per case (experiment_id = case_id).

    Metric type from the sums: `den_sum` -> ratio, else proportion (`binary`) or mean; covariate sums make it a
    CUPED row. A one-sided test becomes the row's `preferred_direction`: gbstats tests the side of the reported
    effect, so a relative effect of a negative control mean, which has the opposite sign of the difference,
    tests the opposite direction of the difference."""
    rows = []
    for c in cases:
        side = SIDE.get(c["options"]["test"], 0)
        den = c["control"].get("den_sum", c["control"]["n"])
        base = c["control"]["sum"] / den if den else 0.0  # the control's (unadjusted) mean
        if side and c["options"]["difference_type"] == "relative" and base < 0:
            side = -side
        for group in ("control", "treatment"):
            sums = c[group]
            rows.append({
                "experiment_id": c["case_id"], "metric_id": "m", "as_of_date": DATE, "variant": group,
                "is_control": group == "control",
                "metric_type": "ratio" if "den_sum" in sums else "proportion" if c["binary"] else "mean",
                "alpha": float(c["options"]["alpha"]),
                "preferred_direction": {1: "increase", -1: "decrease"}.get(side),
                **{k: float(v) for k, v in sums.items()},
            })  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"preferred_direction": pl.String}, infer_schema_length=None)


def gbstats_compare(cases: list[dict]) -> pl.DataFrame:
    """compare() with gbstats 0.8.0's conventions on every case at once."""
    return compare(gbstats_variant_rows(cases), **GBSTATS_CONVENTION)


def gbstats_status_mismatch(case: dict, row: dict) -> tuple | None:
    """gbstats reported an error <=> the engine gives no result (a non-ok status or no estimate); never a crash."""
    failed = row["status"] != "ok" or row["estimate"] is None
    if case["expected"]["error"] is not None and not failed:
        return ("gbstats error without an engine status", case["expected"]["error"], row["status"])
    if case["expected"]["error"] is None and row["status"] != "ok":
        return ("engine status without a gbstats error", row["status"], row["status_reason"])
    return None

"""Agreement with GrowthBook gbstats 0.8.0 reference vectors: mean, proportion, ratio, CUPED and one-sided tests.

Reference file: $VERDICT_GBSTATS_REFERENCE_FILE, default ../shared/reference/gbstats_0_8_0.jsonl next to the
repository. Kind `sequential` is covered elsewhere; its cases are read but not asserted on here.
All cases are analysed in one vectorised call per kind; each case is then checked as its own test id.
"""

from __future__ import annotations

import functools
import math

import polars as pl
import pytest

import reference_vectors as ref
from pipelines.stats.ratio import metric_group_moments, ratio_group_moments
from pipelines.stats.relative import DELTA, effect_tests, pair_with_control, pairing_status
from pipelines.stats.variance_reduction import GBSTATS, cuped_pairs

pytestmark = pytest.mark.reference

KINDS = ("mean", "proportion", "ratio", "cuped", "cuped_proportion", "one_sided")
OTHER_KINDS = ("sequential",)  # checked in test_reference_sequential.py
FIELDS = ("estimate", "ci_lower", "ci_upper", "p_value")
KEY = ["experiment_id", "metric_id", "as_of_date"]


def _cases() -> tuple[dict, ...]:
    return ref.records(ref.GBSTATS)


def _params() -> list:
    if not ref.GBSTATS.is_file():
        return [pytest.param(None, id="reference-file-missing")]
    return [pytest.param(c["case_id"], id=c["case_id"]) for c in ref.of_kind(ref.GBSTATS, *KINDS)]


def _groups(cases: list[dict], metric_type) -> pl.DataFrame:
    """One row per case x group in the engine's input layout (experiment_id = case_id)."""
    return pl.DataFrame(
        {
            "experiment_id": c["case_id"],
            "metric_id": "m",
            "as_of_date": 0,
            "variant": g,
            "is_control": g == "control",
            "metric_type": metric_type(c),
            **{k: float(v) for k, v in c[g].items()},
        }
        for c in cases
        for g in ("control", "treatment")
    )


def _options(cases: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "experiment_id": c["case_id"],
            "alpha": c["options"]["alpha"],
            "alternative": c["options"]["test"],
            "relative": c["options"]["difference_type"] == "relative",
        }
        for c in cases
    )


def _moment_pairs(groups: pl.DataFrame) -> pl.DataFrame:
    """Pairs frame from groups that carry `mean`, `variance`, `input_problem`."""
    pairs = pairing_status(pair_with_control(groups, KEY, ("n", "mean", "variance", "input_problem")))
    bad_c, bad_t = pl.col("input_problem_control").is_not_null(), pl.col("input_problem_treatment").is_not_null()
    return pairs.rename({"variance_control": "var_control", "variance_treatment": "var_treatment"}).with_columns(
        status=pl.when(bad_c | bad_t).then(pl.lit("invalid_input")).otherwise(pl.col("status")),
        status_reason=pl.when(bad_c).then(pl.col("input_problem_control"))
        .when(bad_t).then(pl.col("input_problem_treatment")).otherwise(pl.col("status_reason")),
    )  # fmt: skip


@functools.cache
def _results() -> dict[str, dict]:
    """Engine output per case_id, computed once for all cases (vectorised per kind)."""
    cases = [c for c in _cases() if c["kind"] in KINDS]
    simple = [c for c in cases if c["kind"] in ("mean", "proportion", "one_sided")]
    ratio = [c for c in cases if c["kind"] == "ratio"]
    cuped = [c for c in cases if c["kind"] in ("cuped", "cuped_proportion")]
    kind_of = lambda c: "proportion" if c["binary"] else "mean"  # noqa: E731

    frames = []
    if simple:
        frames.append(_moment_pairs(metric_group_moments(_groups(simple, kind_of))))
    if ratio:
        frames.append(_moment_pairs(ratio_group_moments(_groups(ratio, lambda c: "ratio"))))
    if cuped:
        frames.append(cuped_pairs(_groups(cuped, kind_of), convention=GBSTATS))
    cols = ["experiment_id", "n_control", "n_treatment", "mean_control", "mean_treatment", "var_control",
            "var_treatment", "status", "status_reason"]  # fmt: skip
    pairs = pl.concat(
        [
            f.with_columns(
                unadjusted_mean_control=pl.col("unadjusted_mean_control") if "unadjusted_mean_control" in f.columns else pl.col("mean_control"),
                unadjusted_mean_treatment=pl.col("unadjusted_mean_treatment") if "unadjusted_mean_treatment" in f.columns else pl.col("mean_treatment"),
            ).select(*cols, "unadjusted_mean_control", "unadjusted_mean_treatment")
            for f in frames
        ]
    ).join(_options(cases), on="experiment_id")  # fmt: skip
    out = effect_tests(pairs, method="t", relative_method=DELTA)
    results = {}
    for row in out.to_dicts():
        pre = "relative_" if row["relative"] else ""
        results[row["experiment_id"]] = {
            "estimate": row[f"{pre}estimate"],
            "ci_lower": row[f"{pre}ci_lower"],
            "ci_upper": row[f"{pre}ci_upper"],
            "p_value": row[f"{pre}p_value"],
            "status": row["status"],
            "reason": row["relative_status_reason"] if row["relative"] else row["status_reason"],
        }
    return results


def _number(value) -> float | None:
    return None if value is None else float(value)  # "inf" / "-inf" are open interval ends


def test_reference_file_kinds_are_known() -> None:
    ref.require(ref.GBSTATS)
    kinds = {c["kind"] for c in _cases()}
    assert kinds <= set(KINDS) | set(OTHER_KINDS), kinds - set(KINDS) - set(OTHER_KINDS)
    assert set(KINDS) <= kinds
    ids = [c["case_id"] for c in _cases()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case_id", _params())
def test_case_matches_gbstats(case_id: str | None) -> None:
    ref.require(ref.GBSTATS)
    case = next(c for c in _cases() if c["case_id"] == case_id)
    got = _results()[case_id]
    want = case["expected"]
    if want.get("error"):
        # gbstats returned an error (e.g. zero baseline or zero variance): the engine must not claim a result.
        assert got["status"] != "ok" or got["reason"] is not None, (got, want["error"])
        return
    assert got["status"] == "ok", got["reason"]
    assert got["reason"] is None
    mismatches = []
    for field in FIELDS:
        expected = _number(want[field])
        if expected is None:  # `lesser` tests: gbstats 0.8.0's upper bound is wrong and left out of the file
            assert case["options"]["test"] == "lesser" and field == "ci_upper"
            continue
        if not ref.close(got[field], expected):
            mismatches.append((field, got[field], expected))
    assert not mismatches, mismatches


@pytest.mark.parametrize("kind", ["mean", "proportion", "ratio"])
def test_engine_default_path_matches_gbstats(kind: str) -> None:
    """`compare` itself (Welch t, delta-method relative interval, no correction) reproduces gbstats' two-sided
    mean, proportion and ratio cases: the nightly engine and the reference agree, not only the helper functions."""
    ref.require(ref.GBSTATS)
    from pipelines.stats import compare

    cases = [c for c in _cases() if c["kind"] == kind and c["options"]["test"] == "two-sided"]
    assert cases
    rows = [
        {"experiment_id": c["case_id"], "metric_id": "m", "as_of_date": 0, "variant": group,
         "is_control": group == "control",
         "metric_type": "ratio" if kind == "ratio" else "proportion" if c["binary"] else "mean",
         "n": c[group]["n"], "sum": float(c[group]["sum"]), "sum_sq": float(c[group]["sum_sq"]),
         "alpha": c["options"]["alpha"],
         **{k: float(c[group][k]) for k in ("den_sum", "den_sum_sq", "cross_sum") if k in c[group]}}
        for c in cases for group in ("control", "treatment")
    ]  # fmt: skip
    out = compare(pl.DataFrame(rows), method="t", correction="none", relative_method="delta")
    got = {r["experiment_id"]: r for r in out.to_dicts()}
    for case in cases:
        relative = case["options"]["difference_type"] == "relative"
        row = got[case["case_id"]]
        names = ("relative_estimate", "relative_ci_lower", "relative_ci_upper") if relative else (
            "estimate", "ci_lower", "ci_upper")  # fmt: skip
        for field, name in zip(("estimate", "ci_lower", "ci_upper"), names):
            assert math.isclose(row[name], case["expected"][field], rel_tol=ref.REL_TOL, abs_tol=ref.ABS_TOL), (case["case_id"], field)
        if not relative:
            assert math.isclose(row["p_value"], case["expected"]["p_value"], rel_tol=ref.REL_TOL, abs_tol=ref.ABS_TOL)

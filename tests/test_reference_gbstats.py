"""Agreement with GrowthBook gbstats 0.8.0 reference vectors: mean, proportion, ratio, CUPED and one-sided tests,
through `pipelines.stats.compare` (the function the nightly job calls) with gbstats' conventions
(`reference_vectors.GBSTATS_CONVENTION`: Welch t, no correction, delta-method relative effect with its own
p-value, gbstats CUPED moments, no test when a group has no variance).

Reference file: $VERDICT_GBSTATS_REFERENCE_FILE, default ../shared/reference/gbstats_0_8_0.jsonl next to the
repository, and tests/reference_data/gbstats_0_8_0_errors.jsonl (cases where gbstats reports an error). Kind
`sequential` is checked in test_reference_sequential.py. All cases of a file are analysed in one call; each case
is then checked as its own test id. `check_file` runs the same checks on any file of the format.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

import reference_vectors as ref

pytestmark = pytest.mark.reference

KINDS = ("mean", "proportion", "ratio", "cuped", "cuped_proportion", "one_sided")  # fixed-horizon kinds
FIELDS = ("estimate", "ci_lower", "ci_upper", "p_value")


@functools.cache
def results(path: Path) -> dict[str, dict]:
    """compare()'s row per case_id for every fixed-horizon case of a file, from one call."""
    cases = ref.of_kind(path, *KINDS)
    if not cases:
        return {}
    return {r["experiment_id"]: r for r in ref.gbstats_compare(cases).to_dicts()}


def case_mismatches(case: dict, got: dict) -> list[tuple]:
    """A case against its engine row: the error contract, then (no error) every field gbstats reports, on the
    scale of `difference_type` (relative: the delta-method columns and their own p-value)."""
    status = ref.gbstats_status_mismatch(case, got)
    if status is not None or case["expected"]["error"] is not None:
        return [status] if status else []
    pre = "relative_" if case["options"]["difference_type"] == "relative" else ""
    bad = []
    for field in FIELDS:
        want = ref.number(case["expected"][field])
        if want is None:  # `lesser` tests: gbstats 0.8.0's upper bound is wrong and left out of the file
            if not (case["options"]["test"] == "lesser" and field == "ci_upper"):
                bad.append((field, "null in the file"))
            continue
        if not ref.close(got[pre + field], want):
            bad.append((field, got[pre + field], want))
    return bad


def check_file(path: Path) -> int:
    """Every fixed-horizon case of a file agrees with the engine; returns how many were checked."""
    ref.check_known_kinds(path, ref.GBSTATS_KINDS)
    got = results(path)
    bad = {}
    for case in ref.of_kind(path, *KINDS):
        problems = case_mismatches(case, got[case["case_id"]])
        if problems:
            bad[case["case_id"]] = problems
    assert not bad, bad
    return len(got)


def test_reference_file_is_valid() -> None:
    ref.require(ref.GBSTATS)
    ref.check_known_kinds(ref.GBSTATS, ref.GBSTATS_KINDS)


@pytest.mark.parametrize(
    ("path", "case"),
    ref.path_params(ref.GBSTATS, *KINDS) + ref.path_params(ref.GBSTATS_ERRORS, *KINDS, prefix="error-"),
)
def test_case_matches_gbstats(path: Path, case: dict | None) -> None:
    ref.require(path)
    problems = case_mismatches(case, results(path)[case["case_id"]])
    assert not problems, problems


def test_degenerate_cases_are_statuses() -> None:
    """Every gbstats error (zero or negative variance, zero baseline) is a non-ok status, never an exception, and
    every case without one is ok: over the shared file and the degenerate cases of tests/reference_data."""
    ref.require(ref.GBSTATS)
    assert any(c["expected"]["error"] for c in ref.records(ref.GBSTATS_ERRORS)), "no degenerate case to check"
    for path in (ref.GBSTATS, ref.GBSTATS_ERRORS):
        assert check_statuses(path) == len(ref.records(path))


def check_statuses(path: Path) -> int:
    """The error contract over every case of a file (all kinds, sequential too); returns how many were checked."""
    cases = list(ref.records(path))
    if not cases:
        return 0
    out = {r["experiment_id"]: r for r in ref.gbstats_compare(cases).to_dicts()}
    bad = {c["case_id"]: m for c in cases if (m := ref.gbstats_status_mismatch(c, out[c["case_id"]]))}
    assert not bad, bad
    return len(cases)

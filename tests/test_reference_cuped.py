"""Agreement with spotify-confidence 4.1.0 `z-test-linreg` (CUPED) reference families, through
`pipelines.stats.compare` (the function the nightly job calls) with the covariate sums on the variant rows and the
library's conventions (`cuped="confidence"`, `relative_method="simple"`, its correction and powered effect).

Reference files: $VERDICT_REFERENCE_FILE, default ../shared/reference/confidence_4_1_0.jsonl next to the
repository, and tests/reference_data/confidence_4_1_0_binary_cuped.jsonl (families with a binary metric, which the
shared file lacks). Besides the library's fields (variance_reduction_rate included), compare() keeps the
unadjusted test beside the adjusted one: unadjusted_std_error^2 (1 - variance_reduction_rate) is the adjusted
std_error^2. absolute: false divides the difference, its bounds and the powered effect by the (CUPED-adjusted)
control mean, the library's simple relative convention.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import reference_vectors as ref

pytestmark = pytest.mark.reference

KIND = "cuped"


def check_family(family: dict) -> None:
    """compare() reproduces every expected field of a CUPED family, and its unadjusted figures are consistent."""
    out = ref.confidence_compare(family)
    bad = ref.confidence_mismatches(family, out, direct=("variance_reduction_rate",))
    rows = {(r["metric_id"], r["treatment"]): r for r in out.to_dicts()}
    for exp in family["expected"]:
        got = rows.get((exp["metric"], exp["treatment"]))
        if got is None or got["status"] != "ok":
            continue  # reported above
        where = (exp["metric"], exp["treatment"])
        unadjusted = got["unadjusted_std_error"]
        if unadjusted is None or not unadjusted > 0 or got["unadjusted_estimate"] is None:
            bad.append((*where, "unadjusted test missing", got["unadjusted_estimate"], unadjusted))
        elif not ref.close(got["std_error"] ** 2 / unadjusted**2, 1.0 - exp["variance_reduction_rate"]):
            bad.append((*where, "variance reduction", got["std_error"] ** 2 / unadjusted**2, exp["variance_reduction_rate"]))
    assert not bad, "\n".join(map(str, bad))


def check_file(path: Path) -> int:
    """Every CUPED family of a file; returns how many were checked."""
    ref.check_known_kinds(path, ref.CONFIDENCE_KINDS)
    families = ref.of_kind(path, KIND)
    for family in families:
        assert family["method"] == "z-test-linreg", family["family_id"]
        check_family(family)
    return len(families)


@pytest.mark.parametrize(
    "family",
    ref.params(ref.CONFIDENCE, KIND) + ref.params(ref.CONFIDENCE_BINARY_CUPED, KIND, prefix="binary-"),
)
def test_cuped_family_matches_confidence(family: dict | None) -> None:
    ref.require(ref.CONFIDENCE)
    assert family["method"] == "z-test-linreg"
    check_family(family)


def test_binary_cuped_families_have_a_binary_metric() -> None:
    """The extra file covers what the shared one lacks: a CUPED-adjusted proportion."""
    families = ref.of_kind(ref.CONFIDENCE_BINARY_CUPED, KIND)
    assert families and all("binary" in f["metrics"].values() for f in families)

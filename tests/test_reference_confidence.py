"""Agreement with spotify-confidence 4.1.0 reference vectors (families of kind z, t, nim and spot1), through
`pipelines.stats.compare` with the library's conventions (`reference_vectors.confidence_convention`).

Reference file: $VERDICT_REFERENCE_FILE, default ../shared/reference/confidence_4_1_0.jsonl next to the repository.
Every check is parametrized over what the file holds (`check_file` runs them on any file of the format).

Conventions of the library read from the data (and its source, `multiple_comparison.py`, `nims_and_mdes.py`,
`z_test_computer.py`) and reproduced by the engine:
- nim (Bonferroni): a margin m with preferred direction `increase` tests H0 delta <= -m * control_mean one-sided
  (`null_hypothesis` = -m mu; interval [lower, inf)); `decrease` mirrors it. Alpha is split over all
  comparisons, one-sided rows alike. Powered effect and required sample size use z_{1-alpha/m} (one-sided) and,
  for binary metrics too, the control variance for the treatment (means assumed equal under non-inferiority);
  the required sample size is powered for the margin: ceil(n_t (1 + kappa)), n_t = ceil(((z_a + z_b)/(m mu))^2
  (var_c/kappa + var_c)), kappa = n_control / n_treatment.
- spot1 (`spot-1-bonferroni`): m = treatments x success metrics (guardrails with a margin not counted). The
  library reports EVERY row two-sided (`get_preference` returns two-sided under SPOT_1) and doubles the alpha of
  rows with a preferred direction (`set_alpha_and_adjust_preference`), so guardrail rows carry
  adjusted_alpha = 2 alpha/m, a two-sided-looking interval at 2 alpha (its preferred-side bound is the one-sided
  bound at alpha) and a two-sided p-value against the margin; `is_significant` = p < adjusted_alpha, so a guardrail
  that is significantly WORSE than its margin is also "significant": the engine reproduces `is_significant` and
  adds `is_significant_preferred` / `is_deteriorating` for the direction.
  adjusted_power = 1 - (1 - power)/(G + 1) for G guardrail metrics (G when there is no success metric, so a
  single guardrail keeps 0.8), used with z_{1 - adjusted_alpha/2} for powered effect and required sample size.
- `preference` is increase / decrease / two-sided (the metric's), while the engine's `alternative` column names
  the test actually reported (two-sided for spot-1 guardrails).
- absolute: false divides difference, interval bounds, null_hypothesis and powered_effect by the control mean;
  required_sample_size, p-values and alphas are not scaled. The library gives a required sample size only where
  the hypothesis has an alternative (non-inferiority rows here: no MDE was given), else null.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import reference_vectors as ref
from pipelines.stats import sample_ratio_mismatch

pytestmark = pytest.mark.reference

KINDS = ("z", "t", "nim", "spot1")


def check_family(family: dict) -> None:
    """compare() reproduces every expected field of a z / t / nim / spot1 family."""
    bad = ref.confidence_mismatches(family, ref.confidence_compare(family))
    assert not bad, "\n".join(map(str, bad))


def worse_than_margin(family: dict) -> list[dict]:
    """The family's rows the library calls significant although the estimate lies on the unwanted side of the
    margin (a spot-1 guardrail tested two-sided at 2 alpha)."""
    directions = {m: v["preferred_direction"] for m, v in (family["non_inferiority_margins"] or {}).items()}
    sign = {"increase": 1.0, "decrease": -1.0}
    return [
        e for e in family["expected"]
        if e["metric"] in directions and e["is_significant"]
        and sign[directions[e["metric"]]] * (e["difference"] - e["null_hypothesis"]) < 0
    ]  # fmt: skip


def check_worse_than_margin(family: dict) -> int:
    """Where a spot-1 guardrail is significantly WORSE than its margin the library reports `is_significant`; the
    engine agrees and tells the direction apart: not significant on the preferred side, and its deterioration
    test (one-sided, against 0) is stronger than the guardrail's two-sided test against the margin."""
    rows = worse_than_margin(family)
    if not rows:
        return 0
    out = {(r["metric_id"], r["treatment"]): r for r in ref.confidence_compare(family).to_dicts()}
    for exp in rows:
        got = out[(exp["metric"], exp["treatment"])]
        assert got["is_significant"] and got["alternative"] == "two-sided" and got["preference"] == exp["preference"]
        assert got["is_significant_preferred"] is False, got
        assert got["deterioration_p_value"] < got["p_value"] / 2, got
    return len(rows)


def check_sample_ratio(families: list[dict]) -> int:
    """The chi-square sample-ratio p-values of the families that carry one; returns how many."""
    families = [f for f in families if f.get("sample_ratio_test")]
    if not families:
        return 0
    counts = pl.DataFrame(
        {
            "experiment_id": f["family_id"],
            "as_of_date": ref.DATE,
            "variant": g,
            "n": n,
            "planned_weight": f["sample_ratio_test"]["expected_proportions"][g],
        }
        for f in families
        for g, n in f["sample_ratio_test"]["counts"].items()
    )
    out = sample_ratio_mismatch(counts)
    got = dict(zip(out["experiment_id"], out["p_value"], strict=True))
    assert (out["status"] == "ok").all()
    bad = [
        (f["family_id"], got[f["family_id"]], f["sample_ratio_test"]["p_value"])
        for f in families
        if not ref.close(got[f["family_id"]], f["sample_ratio_test"]["p_value"])
    ]
    assert not bad, bad
    assert len(got) == len(families)
    return len(families)


def check_file(path: Path) -> int:
    """Every z / t / nim / spot1 family of a file, its spot-1 direction flags and sample-ratio tests; returns
    how many families were checked."""
    ref.check_known_kinds(path, ref.CONFIDENCE_KINDS)
    families = ref.of_kind(path, *KINDS)
    for family in families:
        check_family(family)
        check_worse_than_margin(family)
    check_sample_ratio(ref.records(path))
    return len(families)


def test_reference_file_is_valid() -> None:
    ref.require(ref.CONFIDENCE)
    ref.check_known_kinds(ref.CONFIDENCE, ref.CONFIDENCE_KINDS)


@pytest.mark.parametrize("family", ref.params(ref.CONFIDENCE, *KINDS))
def test_family_matches_confidence(family: dict | None) -> None:
    ref.require(ref.CONFIDENCE)
    check_family(family)


def test_spot1_guardrail_worse_than_margin_is_flagged() -> None:
    ref.require(ref.CONFIDENCE)
    if not sum(check_worse_than_margin(f) for f in ref.of_kind(ref.CONFIDENCE, "spot1")):
        pytest.skip("no spot-1 guardrail of this reference file is significantly worse than its margin")


def test_sample_ratio_p_values_match_confidence() -> None:
    ref.require(ref.CONFIDENCE)
    if not check_sample_ratio(ref.records(ref.CONFIDENCE)):
        pytest.skip("no family of this reference file carries a sample-ratio test")

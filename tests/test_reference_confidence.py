"""Agreement with spotify-confidence 4.1.0 reference vectors (families of kind z, t, nim and spot1).

Reference file: $VERDICT_REFERENCE_FILE, default ../shared/reference/confidence_4_1_0.jsonl next to the repository.

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
  that is significantly WORSE than its margin is also "significant" (spot1_059 metric_0 treatment_2): the engine
  reproduces `is_significant` and adds `is_significant_preferred` / `is_deteriorating` for the direction.
  adjusted_power = 1 - (1 - power)/(G + 1) for G guardrail metrics (G when there is no success metric:
  spot1_065 keeps 0.8), used with z_{1 - adjusted_alpha/2} for powered effect and required sample size.
- `preference` is increase / decrease / two-sided (the metric's), while the engine's `alternative` column names
  the test actually reported (two-sided for spot-1 guardrails).
- absolute: false divides difference, interval bounds, null_hypothesis and powered_effect by the control mean;
  required_sample_size, p-values and alphas are not scaled. The library gives a required sample size only where
  the hypothesis has an alternative (non-inferiority rows here: no MDE was given), else null.
"""

from __future__ import annotations


import polars as pl
import pytest

from pipelines.stats import compare, sample_ratio_mismatch
from reference_vectors import CONFIDENCE, DATE, close, confidence_variant_rows, of_kind, params, require

pytestmark = pytest.mark.reference

KINDS = ("z", "t", "nim", "spot1")
POWER = 0.8
# Expected fields scaled by the control mean when the family has `absolute: false` (README convention).
RELATIVE_FIELDS = {
    "difference": "relative_estimate",
    "ci_lower": "relative_ci_lower",
    "ci_upper": "relative_ci_upper",
}
SCALED_FIELDS = {"adjusted_ci_lower", "adjusted_ci_upper", "powered_effect", "null_hypothesis"}
ABSOLUTE_FIELDS = {"difference": "estimate", "ci_lower": "ci_lower", "ci_upper": "ci_upper"}
DIRECT_FIELDS = ("p_value", "adjusted_p_value", "adjusted_alpha", "adjusted_power", "required_sample_size")


def test_reference_file_has_every_compared_kind() -> None:
    require(CONFIDENCE)
    kinds = [f["kind"] for f in of_kind(CONFIDENCE, *KINDS)]
    assert all(kinds.count(k) > 0 for k in KINDS)


@pytest.mark.parametrize("family", params(CONFIDENCE, *KINDS))
def test_family_matches_confidence(family: dict | None) -> None:
    require(CONFIDENCE)
    assert family["correction_method"] in ("bonferroni", "spot-1-bonferroni")
    assert bool(family["non_inferiority_margins"]) == (family["kind"] in ("nim", "spot1"))
    method = {"z-test": "z", "t-test": "t"}[family["method"]]
    out = compare(
        confidence_variant_rows(family), alpha=family["alpha"], method=method, power=POWER, powered_effect="confidence",
        correction=family["correction_method"], relative_method="simple", non_inferiority="plug_in",
    )  # fmt: skip
    rows = {(r["metric_id"], r["treatment"]): r for r in out.to_dicts()}
    assert len(rows) == len(family["expected"]) == out.height

    mismatches = []
    for exp in family["expected"]:
        got = rows[(exp["metric"], exp["treatment"])]
        assert got["status"] == "ok", got["status_reason"]
        assert got["control"] == exp["control"]
        scale = 1.0 if family["absolute"] else got["mean_control"]
        fields = {**ABSOLUTE_FIELDS} if family["absolute"] else {**RELATIVE_FIELDS}
        actual = {name: got[col] for name, col in fields.items()}
        actual |= {name: None if got[name] is None else got[name] / scale for name in SCALED_FIELDS}
        actual |= {name: got[name] for name in DIRECT_FIELDS}
        for name, value in actual.items():
            want = exp[name]
            # null: the library gives no value (powered_effect of the t-test; required_sample_size without an
            # alternative hypothesis): neither do we.
            if want is None:
                if value is not None:
                    mismatches.append((exp["metric"], exp["treatment"], name, value, want))
            elif not close(value, want):
                mismatches.append((exp["metric"], exp["treatment"], name, value, want))
        for name in ("is_significant", "preference"):
            if got[name] != exp[name]:
                mismatches.append((exp["metric"], exp["treatment"], name, got[name], exp[name]))
    assert not mismatches, "\n".join(map(str, mismatches))


def test_spot1_guardrail_worse_than_margin_is_flagged() -> None:
    """spot1_059: a decrease-preferred guardrail significantly ABOVE its margin is `is_significant` in the library
    (two-sided test at 2 alpha); the engine agrees there and tells the direction apart."""
    require(CONFIDENCE)
    family = next((f for f in of_kind(CONFIDENCE, *KINDS) if f["family_id"] == "spot1_059"), None)
    if family is None:
        pytest.skip("spot1_059 not in this reference file")
    out = compare(confidence_variant_rows(family), alpha=family["alpha"], correction="spot-1-bonferroni", relative_method="simple",
                  non_inferiority="plug_in")
    row = out.filter((pl.col("metric_id") == "metric_0") & (pl.col("treatment") == "treatment_2")).row(0, named=True)
    assert row["is_significant"] and row["alternative"] == "two-sided" and row["preference"] == "decrease"
    assert row["estimate"] > row["null_hypothesis"]
    assert row["is_significant_preferred"] is False and row["is_deteriorating"] is True


def test_sample_ratio_p_values_match_confidence() -> None:
    require(CONFIDENCE)
    families = [f for f in of_kind(CONFIDENCE, *KINDS) if f["sample_ratio_test"]]
    counts = pl.DataFrame(
        {
            "experiment_id": f["family_id"],
            "as_of_date": DATE,
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
        if not close(got[f["family_id"]], f["sample_ratio_test"]["p_value"])
    ]
    assert not bad, bad
    assert len(got) == len(families)

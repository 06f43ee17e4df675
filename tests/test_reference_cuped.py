"""Agreement with spotify-confidence 4.1.0 `z-test-linreg` (CUPED) reference families.

Reference file: $VERDICT_REFERENCE_FILE, default ../shared/reference/confidence_4_1_0.jsonl next to the repository.
The CUPED part (slope, adjusted means and variances, variance_reduction_rate, z-test) comes from
`pipelines.stats.variance_reduction.cuped_compare(convention="confidence")`. The fields that do not depend on CUPED
(Bonferroni, adjusted CIs, powered effect) are computed here from the adjusted per-group moments with the formulas
of `pipelines/stats/multiple_testing.py` and `power.py` (alpha / m with m = metrics x treatments of the family;
(z_{1-alpha_adj/2} + z_power) sqrt(var_c/n_c + var_c/n_t)), because `compare` does not yet accept precomputed
`mean` / `variance` input rows.
"""

from __future__ import annotations


import numpy as np
import polars as pl
import pytest
from scipy import special

import reference_vectors as ref
from pipelines.stats.variance_reduction import CONFIDENCE, cuped_compare

pytestmark = pytest.mark.reference

KIND = "cuped"
POWER = 0.8
KEY = ["experiment_id", "metric_id", "as_of_date"]


def _analyse(family: dict) -> pl.DataFrame:
    """CUPED z-test, then Bonferroni over metrics x treatments, adjusted CIs and the powered effect."""
    out = cuped_compare(ref.confidence_variant_rows(family), convention=CONFIDENCE, alpha=family["alpha"])
    m = pl.len().over("experiment_id")  # comparisons in the family: metrics x treatments (spotify-confidence)
    out = out.with_columns(
        adjusted_alpha=family["alpha"] / m, adjusted_p_value=(pl.col("p_value") * m).clip(upper_bound=1.0)
    )
    f = {c: out[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in (
        "estimate", "std_error", "adjusted_alpha", "var_control", "mean_control", "n_control", "n_treatment")}  # fmt: skip
    q = special.ndtri(1.0 - f["adjusted_alpha"] / 2.0)
    z_sum = q + special.ndtri(POWER)
    # Continuous powered effect: the control's (adjusted) variance for both groups.
    powered = z_sum * np.sqrt(f["var_control"] / f["n_control"] + f["var_control"] / f["n_treatment"])
    binary = (out["metric_type"] == "proportion").to_numpy()
    if binary.any():  # none in the 4.1.0 cuped families; the engine's binary search applies
        from pipelines.stats.power import powered_effect_binary

        n_units = out.group_by(KEY).agg(pl.col("n_treatment").sum() + pl.col("n_control").first())
        n_units = out.join(n_units.rename({"n_treatment": "n_units"}), on=KEY, how="left")["n_units"].to_numpy()
        powered[binary] = powered_effect_binary(
            z_sum[binary], f["mean_control"][binary], f["var_control"][binary],
            f["n_control"][binary], f["n_treatment"][binary], n_units[binary],
        )  # fmt: skip
    return out.with_columns(
        adjusted_ci_lower=pl.Series(f["estimate"] - q * f["std_error"]),
        adjusted_ci_upper=pl.Series(f["estimate"] + q * f["std_error"]),
        powered_effect=pl.Series(powered),
        is_significant=pl.col("p_value") < pl.col("adjusted_alpha"),
    )


def test_reference_file_has_cuped_families() -> None:
    ref.require(ref.CONFIDENCE)
    families = ref.of_kind(ref.CONFIDENCE, KIND)
    assert families and all(f["method"] == "z-test-linreg" for f in families)


@pytest.mark.parametrize("family", ref.params(ref.CONFIDENCE, KIND))
def test_cuped_family_matches_confidence(family: dict | None) -> None:
    ref.require(ref.CONFIDENCE)
    assert family["correction_method"] == "bonferroni" and not family["non_inferiority_margins"]
    out = _analyse(family)
    rows = {(r["metric_id"], r["treatment"]): r for r in out.to_dicts()}
    assert len(rows) == len(family["expected"]) == out.height

    mismatches = []
    for exp in family["expected"]:
        got = rows[(exp["metric"], exp["treatment"])]
        assert got["status"] == "ok", got["status_reason"]
        assert got["control"] == exp["control"]
        assert got["cuped_applied"], got["cuped_reason"]
        # absolute: false -> the library divides the difference, its bounds and the powered effect by the
        # (CUPED-adjusted) control mean: the simple relative convention.
        scale = 1.0 if family["absolute"] else got["mean_control"]
        actual = {
            "difference": got["estimate"] / scale,
            "ci_lower": got["ci_lower"] / scale,
            "ci_upper": got["ci_upper"] / scale,
            "adjusted_ci_lower": got["adjusted_ci_lower"] / scale,
            "adjusted_ci_upper": got["adjusted_ci_upper"] / scale,
            "powered_effect": got["powered_effect"] / scale,
            "p_value": got["p_value"],
            "adjusted_p_value": got["adjusted_p_value"],
            "adjusted_alpha": got["adjusted_alpha"],
            "variance_reduction_rate": got["variance_reduction_rate"],
        }
        if not family["absolute"]:  # the engine's relative columns must agree with the scaled ones
            actual |= {"difference": got["relative_estimate"], "ci_lower": got["relative_ci_lower"],
                       "ci_upper": got["relative_ci_upper"]}  # fmt: skip
            assert ref.close(got["relative_p_value"], exp["p_value"])
        for name, value in actual.items():
            if not ref.close(value, exp[name]):
                mismatches.append((exp["metric"], exp["treatment"], name, value, exp[name]))
        if got["is_significant"] != exp["is_significant"]:
            mismatches.append((exp["metric"], exp["treatment"], "is_significant", got["is_significant"], exp["is_significant"]))
        # Two-sided H0: difference == 0, unadjusted power, no required sample size in these families.
        assert exp["null_hypothesis"] == 0.0 and exp["preference"] == "two-sided"
        assert ref.close(POWER, exp["adjusted_power"])
        assert exp["required_sample_size"] is None
        # The unadjusted test is kept beside the adjusted one, and CUPED did not change the estimand's scale.
        assert got["unadjusted_std_error"] is not None and got["unadjusted_std_error"] > 0
        assert ref.close(got["std_error"] ** 2 / got["unadjusted_std_error"] ** 2, 1.0 - exp["variance_reduction_rate"])
    assert not mismatches, "\n".join(map(str, mismatches))


@pytest.mark.parametrize("family", ref.params(ref.CONFIDENCE, KIND))
def test_cuped_family_through_the_engine(family: dict | None) -> None:
    """`compare` itself, given the covariate sums, reproduces every field: the nightly path, not only helpers."""
    ref.require(ref.CONFIDENCE)
    from pipelines.stats import compare

    out = compare(ref.confidence_variant_rows(family), alpha=family["alpha"], power=POWER, relative_method="simple")
    rows = {(r["metric_id"], r["treatment"]): r for r in out.to_dicts()}
    mismatches = []
    for exp in family["expected"]:
        got = rows[(exp["metric"], exp["treatment"])]
        assert got["status"] == "ok", got["status_reason"]
        scale = 1.0 if family["absolute"] else got["mean_control"]
        actual = {
            "difference": got["estimate"] / scale, "ci_lower": got["ci_lower"] / scale,
            "ci_upper": got["ci_upper"] / scale, "adjusted_ci_lower": got["adjusted_ci_lower"] / scale,
            "adjusted_ci_upper": got["adjusted_ci_upper"] / scale, "powered_effect": got["powered_effect"] / scale,
            "p_value": got["p_value"], "adjusted_p_value": got["adjusted_p_value"],
            "adjusted_alpha": got["adjusted_alpha"], "variance_reduction_rate": got["variance_reduction_rate"],
        }  # fmt: skip
        if not family["absolute"]:
            actual |= {"difference": got["relative_estimate"], "ci_lower": got["relative_ci_lower"],
                       "ci_upper": got["relative_ci_upper"]}  # fmt: skip
        mismatches += [(exp["metric"], exp["treatment"], k, v, exp[k]) for k, v in actual.items() if not ref.close(v, exp[k])]
        if got["is_significant"] != exp["is_significant"]:
            mismatches.append((exp["metric"], exp["treatment"], "is_significant"))
    assert not mismatches, "\n".join(map(str, mismatches))

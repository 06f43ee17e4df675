"""Agreement of sequential testing with the reference vectors.

a) spotify-confidence 4.1.0, families of kind `gst` ($VERDICT_REFERENCE_FILE, default
   ../shared/reference/confidence_4_1_0.jsonl next to the repository). Conventions read from the data:
   - Bonferroni first: alpha / (treatments x metrics) is the alpha each comparison spends (checked below);
   - spending: power family alpha t^2, two-sided, over the cumulative daily looks of each (metric, treatment);
   - information fraction t = (n_control + n_treatment at the look) / final_expected_sample_size (the library
     divides by max(final_expected_sample_size, largest total seen), which only matters after an overshoot;
     none occurs in these families), per comparison: treatments of one metric have different fractions;
   - adjusted_alpha = 2 (1 - Phi(c_k)), the nominal level of the bound c_k; adjusted CI = difference -/+ c_k se;
     is_significant = |difference| / se >= c_k; no p-values;
   - powered_effect uses the Bonferroni alpha (not the sequential one), as in the fixed-horizon families;
   - absolute: false divides difference, CI bounds and powered effect by the control mean.
   Tolerances: the library solves its bounds on a coarse numerical grid; they differ from the exact bounds by up
   to 1.5e-4 relative (ours are checked against exact bivariate-normal probabilities in
   test_stats_sequential.py), so boundary-dependent fields (adjusted CI bounds, adjusted_alpha) are compared
   through the critical value they imply, at relative tolerance BOUND_RTOL. Everything else: 1e-6 relative.
   The binary powered effect comes from the library's local search on an integer-valued objective, whose
   answer jumps by up to ~4e-4 relative with its unit bookkeeping (7 of the 222 binary rows): BINARY_POWER_RTOL.
b) GrowthBook gbstats 0.8.0, cases of kind `sequential` ($VERDICT_GBSTATS_REFERENCE_FILE, default
   ../shared/reference/gbstats_0_8_0.jsonl): asymptotic confidence sequences (estimate, interval, p-value).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import special

import reference_vectors as ref
from pipelines.stats import compare
from pipelines.stats.sequential import Spending, confidence_sequence, group_sequential_bounds

pytestmark = pytest.mark.reference

POWER = 0.8
BOUND_RTOL = 2e-4
BINARY_POWER_RTOL = 5e-4
SPENDING = Spending("power", 2.0)


def _sequential_rows(family: dict) -> dict[tuple[str, str, int], dict]:
    """compare() per look (fixed-horizon columns, Bonferroni alpha) + the group-sequential bound per comparison."""
    planned = {r["final_expected_sample_size"] for r in family["input"]}
    assert len(planned) == 1
    out = compare(
        ref.confidence_variant_rows(family), alpha=family["alpha"], method="z", power=POWER, powered_effect="confidence",
        relative_method="simple",
    )
    key = ["experiment_id", "metric_id", "treatment"]
    total = pl.col("n_control") + pl.col("n_treatment")
    out = out.with_columns(information_fraction=total / pl.max_horizontal(pl.lit(planned.pop()), total.max().over(key)))
    out = group_sequential_bounds(
        out, by=key, fraction="information_fraction", alpha="adjusted_alpha", spending=SPENDING
    )
    return {(r["metric_id"], r["treatment"], (r["as_of_date"] - ref.DATE).days): r for r in out.to_dicts()}


def test_gst_families_present() -> None:
    ref.require(ref.CONFIDENCE)
    assert len(ref.of_kind(ref.CONFIDENCE, "gst")) > 0


@pytest.mark.parametrize("family", ref.params(ref.CONFIDENCE, "gst"))
def test_gst_family_matches_confidence(family: dict | None) -> None:
    ref.require(ref.CONFIDENCE)
    assert family["method"] == "z-test" and family["correction_method"] == "bonferroni"
    assert not family["non_inferiority_margins"]
    rows = _sequential_rows(family)
    assert len(rows) == len(family["expected"])
    n_treatments = len({r["group"] for r in family["input"]}) - 1
    bonferroni = family["alpha"] / (n_treatments * len(family["metrics"]))

    bad = []
    for exp in family["expected"]:
        where = (exp["metric"], exp["treatment"], exp["day"])
        got = rows[where]
        assert got["status"] == "ok", got["status_reason"]
        assert got["control"] == exp["control"]
        assert ref.close(got["adjusted_alpha"], bonferroni)  # Bonferroni is applied before spending
        c, se = got["critical_value"], got["std_error"]
        scale = 1.0 if family["absolute"] else got["mean_control"]
        binary = family["metrics"][exp["metric"]] == "binary"
        closed = {
            "difference": got["estimate"] / scale,
            "ci_lower": got["ci_lower"] / scale,
            "ci_upper": got["ci_upper"] / scale,
            "null_hypothesis": got["null_hypothesis"] / scale,
            "adjusted_power": got["adjusted_power"],
        }
        for name, value in closed.items():
            if not ref.close(value, exp[name]):
                bad.append((*where, name, value, exp[name]))
        power_tol = BINARY_POWER_RTOL if binary else ref.REL_TOL
        if not ref.close(got["powered_effect"] / scale, exp["powered_effect"], power_tol):
            bad.append((*where, "powered_effect", got["powered_effect"] / scale, exp["powered_effect"]))
        # boundary-dependent fields, through the critical value each implies
        implied = {
            "adjusted_alpha": -special.ndtri(exp["adjusted_alpha"] / 2.0),
            "adjusted_ci_lower": (got["estimate"] - exp["adjusted_ci_lower"] * scale) / se,
            "adjusted_ci_upper": (exp["adjusted_ci_upper"] * scale - got["estimate"]) / se,
        }
        for name, bound in implied.items():
            if not math.isclose(c, bound, rel_tol=BOUND_RTOL):
                bad.append((*where, name, c, bound))
        ours = {
            "adjusted_alpha": got["sequential_alpha"],
            "adjusted_ci_lower": (got["estimate"] - c * se) / scale,
            "adjusted_ci_upper": (got["estimate"] + c * se) / scale,
        }
        for name, value in ours.items():  # the same comparison on the reported scale, loosened accordingly
            # d alpha / alpha = (c + 1/c) dc; d bound = se dc / |scale|; dc = BOUND_RTOL c
            width = (c * c + 1.0) * abs(value) if name == "adjusted_alpha" else c * se / abs(scale)
            tol = BOUND_RTOL * width * 1.01
            if not abs(value - exp[name]) <= tol:
                bad.append((*where, name, value, exp[name]))
        is_significant = abs(got["estimate"]) / se >= c
        if is_significant != exp["is_significant"]:
            bad.append((*where, "is_significant", is_significant, exp["is_significant"]))
        assert exp["preference"] == got["preference"] == "two-sided"
        assert exp["p_value"] is None and exp["adjusted_p_value"] is None and exp["required_sample_size"] is None
    assert not bad, "\n".join(map(str, bad))


# ---------------------------------------------------------------------------------------------------------------
# b) gbstats confidence sequences


def _moments(group: dict) -> tuple[float, float, float]:
    n = float(group["n"])
    mean = group["sum"] / n
    return n, mean, (group["sum_sq"] - group["sum"] * mean) / (n - 1.0)


def test_gbstats_sequential_cases_present() -> None:
    ref.require(ref.GBSTATS)
    assert len(ref.of_kind(ref.GBSTATS, "sequential")) > 0


@pytest.mark.parametrize("case", ref.params(ref.GBSTATS, "sequential"))
def test_confidence_sequence_matches_gbstats(case: dict | None) -> None:
    ref.require(ref.GBSTATS)
    options = case["options"]
    assert options["test"] == "sequential" and not case["binary"]
    n_c, m_c, v_c = _moments(case["control"])
    n_t, m_t, v_t = _moments(case["treatment"])
    if options["difference_type"] == "absolute":
        estimate, se = m_t - m_c, math.sqrt(v_c / n_c + v_t / n_t)
    else:  # delta method with unadjusted means (gbstats 0.8.0)
        estimate = (m_t - m_c) / m_c
        se = math.sqrt(v_t / (m_c**2 * n_t) + v_c * m_t**2 / (m_c**4 * n_c))
    tuning = options["sequential_tuning_parameter"]
    out = confidence_sequence(np.array([estimate]), np.array([se]), np.array([n_c + n_t]), options["alpha"], tuning)
    got = {"estimate": estimate, **{k: float(out[k][0]) for k in ("ci_lower", "ci_upper", "p_value")}}
    assert float(out["tuning_parameter"][0]) == tuning
    expected = case["expected"]
    assert expected["error"] is None
    bad = [(k, got[k], expected[k]) for k in got if expected[k] is not None and not ref.close(got[k], expected[k])]
    assert not bad, bad

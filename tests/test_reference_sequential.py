"""Agreement of sequential testing with the reference vectors, through the functions the nightly job runs:
`pipelines.stats.compare` for each look, then `pipelines.analysis.results.group_sequential` (Lan-DeMets bounds,
verdicts from the first crossing on) or `pipelines.analysis.results.confidence_sequences`.

a) spotify-confidence 4.1.0, families of kind `gst` ($VERDICT_REFERENCE_FILE, default
   ../shared/reference/confidence_4_1_0.jsonl next to the repository). Conventions read from the data:
   - the family's correction first (Bonferroni: alpha / (treatments x metrics) is the alpha each comparison
     spends, checked below);
   - spending: power family alpha t^2, two-sided, over the cumulative daily looks of each (metric, treatment);
   - information fraction t = (n_control + n_treatment at the look) / final_expected_sample_size, per comparison
     (treatments of one metric have different fractions). The library divides by max(final_expected_sample_size,
     largest total seen), a plan it knows with hindsight; the nightly job rescales from the first over-run on,
     as it cannot see later looks. The comparison's `planned_units` are therefore that maximum (equal to the
     final expected sample size unless the family over-runs), its arms' weights left out (the planned size is
     already the two arms');
   - adjusted_alpha = 2 (1 - Phi(c_k)), the nominal level of the bound c_k; adjusted CI = difference -/+ c_k se;
     is_significant = |difference| / se >= c_k at that look; no p-values. The nightly verdict holds from the first
     crossing on (a sequential test stops there), so its `is_significant` is the library's at this or any
     earlier look, and the crossing of each look is checked from `critical_value` and `statistic`;
   - powered_effect uses the corrected alpha (not the sequential one), as in the fixed-horizon families;
   - absolute: false divides difference, CI bounds and powered effect by the control mean.
   Tolerances: the library solves its bounds on a coarse numerical grid; they differ from the exact bounds by up
   to 1.5e-4 relative (ours are checked against exact bivariate-normal probabilities in
   test_stats_sequential.py), so boundary-dependent fields (adjusted CI bounds, adjusted_alpha) are compared
   through the critical value they imply, at relative tolerance BOUND_RTOL. Everything else: 1e-6 relative.
   The binary powered effect comes from the library's local search on an integer-valued objective, whose
   answer jumps by up to ~4e-4 relative with its unit bookkeeping (7 of the 222 binary rows): BINARY_POWER_RTOL.
b) GrowthBook gbstats 0.8.0, cases of kind `sequential` ($VERDICT_GBSTATS_REFERENCE_FILE, default
   ../shared/reference/gbstats_0_8_0.jsonl, and the degenerate cases of tests/reference_data): asymptotic
   confidence sequences (estimate, interval, p-value). compare() with gbstats' conventions gives the effect and
   its standard error on the case's scale (relative: the delta method), which `confidence_sequences` turns into
   the always-valid interval (`adjusted_ci_*`) and p-value (`always_valid_p_value`).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import polars as pl
import pytest
from scipy import special

import reference_vectors as ref
from pipelines.analysis.results import confidence_sequences, group_sequential
from pipelines.stats import compare

pytestmark = pytest.mark.reference

BOUND_RTOL = 2e-4
BINARY_POWER_RTOL = 5e-4
SIDE = {"greater": 1, "less": -1, "two-sided": 0}

# ---------------------------------------------------------------------------------------------------------------
# a) spotify-confidence group-sequential families


def gst_looks(family: dict) -> pl.DataFrame:
    """compare() on every look, then the nightly job's group-sequential step with the family's design."""
    stats = ref.confidence_variant_rows(family)
    out = compare(stats, **ref.confidence_convention(family))
    key = ["experiment_id", "metric_id", "treatment"]
    final = stats.group_by("metric_id", "variant").agg(pl.col("final_expected_sample_size").max())
    out = out.join(final.rename({"variant": "treatment"}), on=["metric_id", "treatment"], how="left")
    total = pl.col("n_control") + pl.col("n_treatment")
    return group_sequential(
        out.with_columns(
            planned_units=pl.max_horizontal("final_expected_sample_size", total.max().over(key)).cast(pl.Float64),
            spending=pl.lit("power"), spending_rho=pl.lit(2.0),
            weight_control=pl.lit(None, pl.Float64), weight_treatment=pl.lit(None, pl.Float64),
        )  # fmt: skip
    )


def gst_mismatches(family: dict) -> list[tuple]:
    looks = gst_looks(family)
    rows = {(r["metric_id"], r["treatment"], (r["as_of_date"] - ref.DATE).days): r for r in looks.to_dicts()}
    bad: list[tuple] = []
    if len(rows) != len(family["expected"]):
        bad.append(("row count", len(rows), len(family["expected"])))
    crossed_before: dict[tuple, bool] = {}
    bonferroni = None
    if family["correction_method"] == "bonferroni":
        treatments = len({r["group"] for r in family["input"]}) - 1
        bonferroni = family["alpha"] / (treatments * len(family["metrics"]))
    for exp in sorted(family["expected"], key=lambda e: e["day"]):
        where = (exp["metric"], exp["treatment"], exp["day"])
        got = rows.get(where)
        if got is None or got["status"] != "ok":
            bad.append((*where, "status", None if got is None else (got["status"], got["status_reason"])))
            continue
        if got["control"] != exp["control"]:
            bad.append((*where, "control", got["control"], exp["control"]))
        if bonferroni is not None and not ref.close(got["adjusted_alpha"], bonferroni):
            bad.append((*where, "bonferroni alpha", got["adjusted_alpha"], bonferroni))  # corrected before spending
        c, se, estimate = got["critical_value"], got["std_error"], got["estimate"]
        scale = 1.0 if family["absolute"] else got["mean_control"]
        binary = family["metrics"][exp["metric"]] == "binary"
        closed = {
            "difference": estimate / scale, "ci_lower": got["ci_lower"] / scale, "ci_upper": got["ci_upper"] / scale,
            "null_hypothesis": got["null_hypothesis"] / scale, "adjusted_power": got["adjusted_power"],
            "preference": got["preference"],
        }  # fmt: skip
        for name, value in closed.items():
            if not (value == exp[name] if isinstance(value, str) else ref.close(value, exp[name])):
                bad.append((*where, name, value, exp[name]))
        power_tol = BINARY_POWER_RTOL if binary else ref.REL_TOL
        if not ref.close(got["powered_effect"] / scale, exp["powered_effect"], power_tol):
            bad.append((*where, "powered_effect", got["powered_effect"] / scale, exp["powered_effect"]))
        if c is None or not math.isfinite(c):
            bad.append((*where, "critical_value", c))
            continue
        # boundary-dependent fields, through the critical value each implies
        implied = {"adjusted_alpha": -special.ndtri(exp["adjusted_alpha"] / 2.0)}
        for name, sign in (("adjusted_ci_lower", 1.0), ("adjusted_ci_upper", -1.0)):
            want = ref.number(exp[name])
            if math.isinf(want):  # the open end of a one-sided interval
                if got[name] != want:
                    bad.append((*where, name, got[name], want))
            else:
                implied[name] = sign * (estimate - want * scale) / se
                # the production interval on the reported scale, loosened as its critical value:
                # d bound = se dc / |scale|, dc = BOUND_RTOL c
                if not abs(got[name] / scale - want) <= BOUND_RTOL * c * se / abs(scale) * 1.01:
                    bad.append((*where, name, got[name] / scale, want))
        for name, bound in implied.items():
            if not math.isclose(c, bound, rel_tol=BOUND_RTOL):
                bad.append((*where, f"critical value implied by {name}", c, bound))
        nominal = 2.0 * special.ndtr(-c)  # d alpha / alpha = (c + 1/c) dc
        if not abs(nominal - exp["adjusted_alpha"]) <= BOUND_RTOL * (c * c + 1.0) * nominal * 1.01:
            bad.append((*where, "adjusted_alpha", nominal, exp["adjusted_alpha"]))
        side = SIDE[got["alternative"]]
        z = got["statistic"]
        crossed = (abs(z) >= c) if side == 0 else (side * z >= c)
        if crossed != exp["is_significant"]:
            bad.append((*where, "crossing", crossed, exp["is_significant"]))
        comparison = (exp["metric"], exp["treatment"])
        crossed_before[comparison] = crossed_before.get(comparison, False) or exp["is_significant"]
        if got["is_significant"] != crossed_before[comparison]:
            bad.append((*where, "is_significant (from the first crossing)", got["is_significant"], crossed_before[comparison]))
    return bad


def check_gst_family(family: dict) -> None:
    bad = gst_mismatches(family)
    assert not bad, "\n".join(map(str, bad))


def check_gst_file(path: Path) -> int:
    """Every group-sequential family of a file; returns how many were checked."""
    ref.check_known_kinds(path, ref.CONFIDENCE_KINDS)
    families = ref.of_kind(path, "gst")
    for family in families:
        check_gst_family(family)
    return len(families)


@pytest.mark.parametrize("family", ref.params(ref.CONFIDENCE, "gst"))
def test_gst_family_matches_confidence(family: dict | None) -> None:
    ref.require(ref.CONFIDENCE)
    assert family["method"] == "z-test"
    check_gst_family(family)


# ---------------------------------------------------------------------------------------------------------------
# b) gbstats confidence sequences


@functools.cache
def sequence_results(path: Path) -> dict[str, dict]:
    """The nightly confidence-sequence step per case_id for every sequential case of a file, from one call."""
    cases = ref.of_kind(path, "sequential")
    if not cases:
        return {}
    out = ref.gbstats_compare(cases)
    options = pl.DataFrame(
        {"experiment_id": c["case_id"], "relative": c["options"]["difference_type"] == "relative",
         "sequential_tuning": float(c["options"]["sequential_tuning_parameter"])}
        for c in cases
    )  # fmt: skip
    relative = pl.col("relative")
    out = out.join(options, on="experiment_id").with_columns(
        estimate=pl.when(relative).then("relative_estimate").otherwise("estimate"),
        std_error=pl.when(relative).then("relative_std_error").otherwise("std_error"),
        statistic=pl.when(relative).then(pl.col("relative_estimate") / pl.col("relative_std_error"))
        .otherwise("statistic"),
    )  # fmt: skip
    return {r["experiment_id"]: r for r in confidence_sequences(out).to_dicts()}


def sequence_mismatches(case: dict, got: dict) -> list[tuple]:
    status = ref.gbstats_status_mismatch(case, got)
    if status is not None or case["expected"]["error"] is not None:
        return [status] if status else []
    assert case["options"]["test"] == "sequential"
    actual = {"estimate": got["estimate"], "ci_lower": got["adjusted_ci_lower"], "ci_upper": got["adjusted_ci_upper"],
              "p_value": got["always_valid_p_value"]}  # fmt: skip
    expected = case["expected"]
    return [(k, v, expected[k]) for k, v in actual.items() if expected[k] is not None and not ref.close(v, expected[k])]


def check_sequence_file(path: Path) -> int:
    """Every sequential case of a file; returns how many were checked."""
    ref.check_known_kinds(path, ref.GBSTATS_KINDS)
    got = sequence_results(path)
    bad = {c["case_id"]: m for c in ref.of_kind(path, "sequential") if (m := sequence_mismatches(c, got[c["case_id"]]))}
    assert not bad, bad
    return len(got)


@pytest.mark.parametrize(
    ("path", "case"),
    ref.path_params(ref.GBSTATS, "sequential") + ref.path_params(ref.GBSTATS_ERRORS, "sequential", prefix="error-"),
)
def test_confidence_sequence_matches_gbstats(path: Path, case: dict | None) -> None:
    ref.require(path)
    problems = sequence_mismatches(case, sequence_results(path)[case["case_id"]])
    assert not problems, problems

"""Extra reference vectors for cases the shared files lack, computed with the reference libraries themselves.

    python tests/reference_data/generate.py gbstats > tests/reference_data/gbstats_0_8_0_errors.jsonl
    python tests/reference_data/generate.py confidence > tests/reference_data/confidence_4_1_0_binary_cuped.jsonl

`gbstats` needs gbstats==0.8.0 and `confidence` needs spotify-confidence==4.1.0 (neither is a project
dependency: run it in a separate environment). The output has the format of ../shared/reference (see its
README): degenerate gbstats cases (the library reports an error), and spotify-confidence `z-test-linreg`
families with a binary metric and a binary covariate.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np


def _sums(y: np.ndarray, x: np.ndarray | None = None, d: np.ndarray | None = None) -> dict:
    g = {"n": int(len(y)), "sum": float(y.sum()), "sum_sq": float((y * y).sum())}
    if d is not None:
        g |= {"den_sum": float(d.sum()), "den_sum_sq": float((d * d).sum()), "cross_sum": float((y * d).sum())}
    if x is not None:
        g |= {"cov_sum": float(x.sum()), "cov_sum_sq": float((x * x).sum()), "cross_sum": float((x * y).sum())}
    return g


def gbstats_result(case: dict) -> dict:
    """gbstats 0.8.0 on one case, as the shared file records it (`lesser`: no upper bound)."""
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        OneSidedTreatmentGreaterTTest,
        OneSidedTreatmentLesserTTest,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )

    def plain(g: dict, binary: bool, prefix: str = "") -> object:
        if binary:
            return ProportionStatistic(n=g["n"], sum=g[f"{prefix}sum"])
        return SampleMeanStatistic(n=g["n"], sum=g[f"{prefix}sum"], sum_squares=g[f"{prefix}sum_sq"])

    def statistic(g: dict) -> object:
        if case["kind"] == "ratio":
            return RatioStatistic(n=g["n"], m_statistic=plain(g, False), d_statistic=plain(g, False, "den_"),
                                  m_d_sum_of_products=g["cross_sum"])  # fmt: skip
        if case["kind"].startswith("cuped"):
            return RegressionAdjustedStatistic(n=g["n"], post_statistic=plain(g, case["binary"]),
                                               pre_statistic=plain(g, case["binary"], "cov_"),
                                               post_pre_sum_of_products=g["cross_sum"], theta=0)  # fmt: skip
        return plain(g, case["binary"])

    options = case["options"]
    a, b = statistic(case["control"]), statistic(case["treatment"])
    if options["test"] == "sequential":
        config = SequentialConfig(alpha=options["alpha"], difference_type=options["difference_type"],
                                  sequential_tuning_parameter=options["sequential_tuning_parameter"])  # fmt: skip
        test = SequentialTwoSidedTTest(a, b, config)
    else:
        kind = {"two-sided": TwoSidedTTest, "greater": OneSidedTreatmentGreaterTTest,
                "lesser": OneSidedTreatmentLesserTTest}[options["test"]]  # fmt: skip
        test = kind(a, b, FrequentistConfig(alpha=options["alpha"], difference_type=options["difference_type"]))
    result = test.compute_result()
    out = {"estimate": float(result.expected), "ci_lower": float(result.ci[0]), "ci_upper": float(result.ci[1]),
           "p_value": float(result.p_value), "error": result.error_message}  # fmt: skip
    for k in ("ci_lower", "ci_upper"):
        if math.isinf(out[k]):
            out[k] = "inf" if out[k] > 0 else "-inf"
    if options["test"] == "lesser":
        out["ci_upper"] = None
    return out


def gbstats_cases() -> list[dict]:
    rng = np.random.default_rng(20240601)
    cases = []

    def add(case_id, kind, binary, control, treatment, difference="relative", test="two-sided", **options):
        case = {"case_id": case_id, "kind": kind, "binary": binary,
                "options": {"alpha": 0.05, "difference_type": difference, "test": test, **options},
                "control": control, "treatment": treatment}  # fmt: skip
        case["expected"] = gbstats_result(case)
        cases.append(case)

    def conversions(n, p):
        return (rng.random(n) < p).astype(float)

    # the metric is its own covariate: gbstats' adjusted variance p(1-p)(1 + theta^2) - 2 theta cov < 0
    for i, difference in enumerate(("relative", "absolute")):
        yc, yt = conversions(400 + 10 * i, 0.3), conversions(420, 0.35)
        add(f"cuped_proportion_e0{i}", "cuped_proportion", True, _sums(yc, yc), _sums(yt, yt), difference)
    add("proportion_e00", "proportion", True, _sums(conversions(500, 0.02)), _sums(np.zeros(480)))
    add("proportion_e01", "proportion", True, _sums(np.zeros(300)), _sums(conversions(310, 0.05)), "absolute")
    add("mean_e00", "mean", False, _sums(np.zeros(50)), _sums(rng.normal(1.0, 1.0, 60)), "absolute")
    add("mean_e01", "mean", False, _sums(rng.normal(3.0, 1.0, 70)), _sums(np.full(65, 3.0)))
    add("one_sided_e00", "one_sided", False, _sums(np.full(40, 2.0)), _sums(rng.normal(2.5, 1.0, 45)), test="greater")
    add("one_sided_e01", "one_sided", False, _sums(rng.normal(2.5, 1.0, 45)), _sums(np.full(40, 2.0)), "absolute",
        "lesser")
    m, d = rng.normal(4.0, 1.0, 80), np.zeros(80)
    add("ratio_e00", "ratio", False, _sums(m, d=d), _sums(rng.normal(4.0, 1.0, 90), d=rng.poisson(2.0, 90) + 1.0))
    add("sequential_e00", "sequential", False, _sums(np.full(200, 1.0)), _sums(rng.normal(1.1, 1.0, 210)),
        test="sequential", sequential_tuning_parameter=5000)
    return cases


def confidence_families() -> list[dict]:
    """`z-test-linreg` families with a binary metric (binary covariate) beside a continuous one."""
    import warnings

    import pandas as pd
    from spotify_confidence import Experiment

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(20240602)
    columns = {"difference": "difference", "ci_lower": "ci_lower", "ci_upper": "ci_upper", "p_value": "p-value",
               "adjusted_ci_lower": "adjusted ci_lower", "adjusted_ci_upper": "adjusted ci_upper",
               "adjusted_p_value": "adjusted p-value", "adjusted_alpha": "adjusted_alpha",
               "is_significant": "is_significant", "powered_effect": "powered_effect",
               "required_sample_size": "required_sample_size", "null_hypothesis": "null_hypothesis",
               "preference": "preference", "adjusted_power": "adjusted_power",
               "variance_reduction_rate": "variance_reduction_rate"}  # fmt: skip

    def value(v):
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        v = float(v)
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else v

    families = []
    for i, (absolute, treatments, alpha) in enumerate(((True, 1, 0.05), (False, 3, 0.1))):
        rows = []
        for group in ["control", *(f"treatment_{k + 1}" for k in range(treatments))]:
            n, lift = int(rng.integers(3000, 6000)), 0.0 if group == "control" else 0.02
            x = (rng.random(n) < 0.3).astype(float)
            y = np.where(rng.random(n) < 0.6, x, rng.random(n) < 0.3 + lift).astype(float)
            rows.append({"group": group, "metric": "metric_0", "kind": "binary", **_sums(y, x)})
            x = rng.normal(5.0, 2.0, n)
            y = 1.0 + 0.8 * x + rng.normal(0.0, 1.5, n) + 5 * lift
            rows.append({"group": group, "metric": "metric_1", "kind": "continuous", **_sums(y, x)})
        family = {"family_id": f"cuped_b{i:02d}", "kind": "cuped", "method": "z-test-linreg", "alpha": alpha,
                  "absolute": absolute, "correction_method": "bonferroni", "non_inferiority_margins": None,
                  "metrics": {"metric_0": "binary", "metric_1": "continuous"}, "input": rows}  # fmt: skip
        frame = pd.DataFrame(rows).drop(columns="kind").assign(method="z-test-linreg")
        experiment = Experiment(frame, numerator_column="sum", numerator_sum_squares_column="sum_sq",
                                denominator_column="n", categorical_group_columns="group", interval_size=1 - alpha,
                                correction_method="bonferroni", metric_column="metric", treatment_column="group",
                                method_column="method", power=0.8, feature_column="cov_sum",
                                feature_sum_squares_column="cov_sum_sq", feature_cross_sum_column="cross_sum")  # fmt: skip
        out = experiment.multiple_difference(level="control", groupby="metric", level_as_reference=True,
                                             absolute=absolute, verbose=True).reset_index()  # fmt: skip
        family["expected"] = [
            {"metric": r["metric"], "control": r["level_1"], "treatment": r["level_2"],
             **{k: value(r[c]) for k, c in columns.items()}}
            for _, r in out.iterrows()
        ]  # fmt: skip
        family["sample_ratio_test"] = None
        families.append(family)
    return families


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    records = {"gbstats": gbstats_cases, "confidence": confidence_families}[which]()
    sys.stdout.write("".join(json.dumps(r) + "\n" for r in records))

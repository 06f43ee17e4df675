"""Verdict's statistics engine: pure functions on Polars frames of sufficient statistics (no Dagster, no DuckDB).

One method, one module: `two_sample` (z and Welch t), `hypotheses` (superiority, non-inferiority,
deterioration), `multiple_testing`, `power`, `ratio` (delta method), `variance_reduction` (CUPED moments),
`relative` (relative-effect formulas: delta method, Fieller), `sequential` (alpha spending, confidence sequences),
`srm`, `decision`; `comparison` runs a whole frame of comparisons through them (`compare`, the only test path).
"""

from pipelines.stats.comparison import analyse, compare, pair_variants
from pipelines.stats.decision import decide
from pipelines.stats.hypotheses import HYPOTHESIS_COLUMNS
from pipelines.stats.multiple_testing import CORRECTIONS
from pipelines.stats.power import SampleSizePlan, required_sample_size
from pipelines.stats.ratio import metric_group_moments, ratio_group_moments
from pipelines.stats.relative import delta_relative_variance
from pipelines.stats.sequential import (
    Spending,
    boundaries,
    bounds_for_schedules,
    confidence_sequence,
    confidence_sequence_from_moments,
    group_sequential_bounds,
)
from pipelines.stats.srm import sample_ratio_mismatch
from pipelines.stats.variance_reduction import cuped_group_moments

__all__ = [
    "CORRECTIONS", "HYPOTHESIS_COLUMNS", "SampleSizePlan", "Spending", "analyse", "boundaries", "bounds_for_schedules",
    "compare", "confidence_sequence", "confidence_sequence_from_moments", "cuped_group_moments", "decide",
    "delta_relative_variance", "group_sequential_bounds", "metric_group_moments", "pair_variants",
    "ratio_group_moments", "required_sample_size", "sample_ratio_mismatch",
]  # fmt: skip

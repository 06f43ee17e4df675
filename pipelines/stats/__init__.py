"""Verdict statistics engine: vectorised two-sample tests, Bonferroni correction and SRM checks on Polars frames."""

from pipelines.stats.comparison import compare
from pipelines.stats.srm import sample_ratio_mismatch

__all__ = ["compare", "sample_ratio_mismatch"]

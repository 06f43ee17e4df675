"""Multiple-testing corrections within a family of comparisons (by default one experiment's look)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

BONFERRONI = "bonferroni"
NONE = "none"
CORRECTIONS = (BONFERRONI, NONE)


def family_size(comparisons: pl.DataFrame, family: Sequence[str], correction: str = BONFERRONI) -> pl.Series:
    """Number of hypotheses m in each row's family: its comparisons (metrics x treatments when every metric is
    compared for every treatment, as spotify-confidence counts them); 1 without correction."""
    if correction == NONE:
        return pl.repeat(1, comparisons.height, dtype=pl.Int64, eager=True)
    if correction != BONFERRONI:
        raise ValueError(f"unknown correction {correction!r}; available: {CORRECTIONS}")
    if not family:
        return pl.repeat(comparisons.height, comparisons.height, dtype=pl.Int64, eager=True)
    return comparisons.select(pl.len().over(list(family))).to_series().cast(pl.Int64)

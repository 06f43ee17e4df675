"""Bonferroni correction over metrics x treatments within a family of comparisons."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

BONFERRONI = "bonferroni"
NONE = "none"
CORRECTIONS = (BONFERRONI, NONE)


def number_of_comparisons(family: Sequence[str], dimensions: Sequence[str], correction: str = BONFERRONI) -> pl.Expr:
    """m = product of distinct values of each dimension within the family, e.g. metrics x treatments
    (spotify-confidence `_get_num_comparisons`); dates count too when a family pools dates. 1 for 'none'."""
    if correction == NONE:
        return pl.lit(1, dtype=pl.Int64)
    if correction != BONFERRONI:
        raise ValueError(f"unknown correction {correction!r}; available: {CORRECTIONS}")
    m = pl.lit(1, dtype=pl.Int64)
    for dim in dimensions:
        m = m * pl.col(dim).n_unique().cast(pl.Int64)
    return m.over(list(family))


def bonferroni(
    comparisons: pl.DataFrame,
    family: Sequence[str],
    *,
    dimensions: Sequence[str] = ("metric_id", "treatment"),
    correction: str = BONFERRONI,
) -> pl.DataFrame:
    """Add n_comparisons, adjusted_alpha = alpha/m and adjusted_p_value = min(1, p*m) (Bonferroni 1936)."""
    return comparisons.with_columns(
        n_comparisons=number_of_comparisons(family, dimensions, correction)
    ).with_columns(
        adjusted_alpha=pl.col("alpha") / pl.col("n_comparisons"),
        adjusted_p_value=(pl.col("p_value") * pl.col("n_comparisons")).clip(upper_bound=1.0),
    )

"""Bonferroni correction over metrics x treatments within a family of comparisons."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

BONFERRONI = "bonferroni"
NONE = "none"
CORRECTIONS = (BONFERRONI, NONE)


def number_of_comparisons(
    family: Sequence[str], metric: str = "metric_id", treatment: str = "treatment", correction: str = BONFERRONI
) -> pl.Expr:
    """m = distinct metrics x distinct treatments in the family (spotify-confidence `_get_num_comparisons`); 1 for 'none'."""
    if correction == NONE:
        return pl.lit(1, dtype=pl.Int64)
    if correction != BONFERRONI:
        raise ValueError(f"unknown correction {correction!r}; available: {CORRECTIONS}")
    m = pl.col(metric).n_unique() * pl.col(treatment).n_unique()
    return m.over(list(family)).cast(pl.Int64)


def bonferroni(
    comparisons: pl.DataFrame,
    family: Sequence[str],
    *,
    metric: str = "metric_id",
    treatment: str = "treatment",
    correction: str = BONFERRONI,
) -> pl.DataFrame:
    """Add n_comparisons, adjusted_alpha = alpha/m and adjusted_p_value = min(1, p*m) (Bonferroni 1936)."""
    return comparisons.with_columns(
        n_comparisons=number_of_comparisons(family, metric, treatment, correction)
    ).with_columns(
        adjusted_alpha=pl.col("alpha") / pl.col("n_comparisons"),
        adjusted_p_value=(pl.col("p_value") * pl.col("n_comparisons")).clip(upper_bound=1.0),
    )

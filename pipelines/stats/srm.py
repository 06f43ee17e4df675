"""Sample ratio mismatch: chi-square goodness-of-fit of observed unit counts against planned weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import special

OK = "ok"


def cell_contribution(n: pl.Expr, weight: pl.Expr, by: Sequence[str]) -> pl.Expr:
    """Pearson term (O - E)^2 / E with E = N * w / sum(w) within each `by` group (spotify-confidence sample_ratio_test)."""
    expected = n.sum().over(list(by)) * (weight / weight.sum().over(list(by)))
    return (n - expected) ** 2 / expected


def chi2_sf(statistic: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Upper tail P(chi2_dof > statistic) (scipy.special.chdtrc; the library's 1 - cdf rounds below ~1e-16 to 0)."""
    return special.chdtrc(dof, statistic)


def sample_ratio_mismatch(
    counts: pl.DataFrame, *, by: Sequence[str] = ("experiment_id", "as_of_date")
) -> pl.DataFrame:
    """One row per `by` key: chi_square, dof, p_value, n_total, status, status_reason (vectorised over keys)."""
    by = list(by)
    n = pl.col("n").cast(pl.Float64)
    w = pl.col("planned_weight").cast(pl.Float64)
    bad_weight = w.is_null() | ~w.is_finite() | (w <= 0)
    bad_count = n.is_null() | ~n.is_finite() | (n < 0)
    per_key = (
        counts.with_columns(_chi=cell_contribution(n, w, by))
        .group_by(by, maintain_order=True)
        .agg(
            n_total=pl.col("n").sum(),
            n_variants=pl.len(),
            n_distinct=pl.col("variant").n_unique(),
            bad_weights=bad_weight.any(),
            bad_counts=bad_count.any(),
            chi_square=pl.col("_chi").sum(),
        )
        .with_columns(dof=(pl.col("n_variants") - 1).cast(pl.Int64))
    )
    status = (
        pl.when(pl.col("bad_counts")).then(pl.lit("invalid_counts"))
        .when(pl.col("bad_weights")).then(pl.lit("invalid_weights"))
        .when(pl.col("n_distinct") != pl.col("n_variants")).then(pl.lit("duplicate_variant"))
        .when(pl.col("n_variants") < 2).then(pl.lit("single_variant"))
        .when(pl.col("n_total") <= 0).then(pl.lit("no_units"))
        .otherwise(pl.lit(OK))
    )
    reason = (
        pl.when(pl.col("status") == "invalid_counts").then(pl.lit("a variant has a null, negative or non-finite unit count"))
        .when(pl.col("status") == "invalid_weights").then(pl.lit("a planned weight is null, non-positive or non-finite"))
        .when(pl.col("status") == "duplicate_variant").then(pl.lit("a variant appears more than once"))
        .when(pl.col("status") == "single_variant").then(pl.lit("fewer than two variants: nothing to compare"))
        .when(pl.col("status") == "no_units").then(pl.lit("no units observed in any variant"))
        .otherwise(None)
    )
    per_key = per_key.with_columns(status=status).with_columns(status_reason=reason)
    ok = (per_key["status"] == OK).to_numpy()
    chi = per_key["chi_square"].cast(pl.Float64).to_numpy().copy()
    dof = per_key["dof"].cast(pl.Float64).to_numpy()
    p = np.full(chi.shape, np.nan)
    p[ok] = chi2_sf(chi[ok], dof[ok])
    chi[~ok] = np.nan
    return per_key.select(
        *by,
        pl.Series("chi_square", chi).fill_nan(None),
        "dof",
        pl.Series("p_value", p).fill_nan(None),
        "n_total",
        "status",
        "status_reason",
    )

"""From the marts' sufficient statistics to the results and health tables (pure Polars, no Dagster)."""

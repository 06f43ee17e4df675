"""The analysis's partitions: one per as-of date, the last one yesterday (UTC), the last complete day."""

import dagster as dg

AS_OF_DATES = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")

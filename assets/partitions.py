"""Partitions shared by assets, jobs, schedules and sensors."""

import dagster as dg

MONTHLY_PARTITIONS = dg.MonthlyPartitionsDefinition(
    start_date="2020-01", fmt="%Y-%m", timezone="Europe/Luxembourg"
)
"""One partition per delivery month, up to the last complete month (Luxembourg time)."""

"""Schedule ``monthly_register_refresh``: last month's deliveries, every month."""

import dagster as dg

from .jobs import register_refresh

REFRESH_DAY_OF_MONTH = 5
"""Deliveries for a month arrive in the first days of the next; the 5th leaves room for late ones."""

monthly_register_refresh = dg.build_schedule_from_partitioned_job(
    register_refresh,
    name="monthly_register_refresh",
    description="Refresh every register for the previous month (Europe/Luxembourg time).",
    day_of_month=REFRESH_DAY_OF_MONTH,
    hour_of_day=6,
)

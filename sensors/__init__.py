"""Dagster jobs, and the schedules and sensors that start them without a person clicking."""

from .deliveries import register_deliveries
from .jobs import publish_dictionary, register_refresh
from .schedules import monthly_register_refresh

ALL_JOBS = [publish_dictionary, register_refresh]
ALL_SCHEDULES = [monthly_register_refresh]
ALL_SENSORS = [register_deliveries]

__all__ = ["ALL_JOBS", "ALL_SCHEDULES", "ALL_SENSORS"]

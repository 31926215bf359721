"""Dagster jobs, and the schedules and sensors that start them without a person clicking."""

from .deliveries import register_deliveries
from .jobs import output_release_job, project_build, publish_dictionary, register_refresh
from .lifecycle import reissue_project_key, retire_project, rotate_master_key
from .outputs import output_requests
from .projects import project_approvals, project_expiry
from .schedules import monthly_register_refresh

ALL_JOBS = [publish_dictionary, register_refresh, project_build, retire_project, reissue_project_key, rotate_master_key,
            output_release_job]
ALL_SCHEDULES = [monthly_register_refresh]
ALL_SENSORS = [register_deliveries, project_approvals, project_expiry, output_requests]

__all__ = ["ALL_JOBS", "ALL_SCHEDULES", "ALL_SENSORS"]

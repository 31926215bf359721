"""Dagster jobs, and the schedules and sensors that start them without a person clicking."""

import dagster as dg

from assets.dictionary import data_dictionary

publish_dictionary = dg.define_asset_job(
    "publish_dictionary",
    selection=[data_dictionary],
    description="Publish the data dictionary from the contracts.",
)

ALL_JOBS = [publish_dictionary]

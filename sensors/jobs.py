"""Jobs: named selections of assets that schedules, sensors and the CLI run."""

import dagster as dg

from assets.dictionary import data_dictionary
from assets.outputs import OUTPUTS_GROUP
from assets.projects import PROJECTS_GROUP
from assets.registers import REGISTERS_GROUP

publish_dictionary = dg.define_asset_job(
    "publish_dictionary",
    selection=[data_dictionary],
    description="Publish the data dictionary from the contracts.",
)

register_refresh = dg.define_asset_job(
    "register_refresh",
    selection=dg.AssetSelection.groups(REGISTERS_GROUP),
    description="Ingest and validate every register's delivery for one month, referenced registers first.",
)

project_build = dg.define_asset_job(
    "project_build",
    selection=dg.AssetSelection.groups(PROJECTS_GROUP),
    description="Build one project's extract; runs select the registers the project asked for and projects/extract.",
)

output_release_job = dg.define_asset_job(
    "output_release",
    selection=dg.AssetSelection.groups(OUTPUTS_GROUP),
    description="Decide on one output request: tables computed, checked, protected, published or sent to review, audited.",
)

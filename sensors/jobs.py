"""Jobs: named selections of assets that schedules, sensors and the CLI run."""

import dagster as dg

from assets.dictionary import data_dictionary
from assets.outputs import OUTPUTS_GROUP
from assets.projects import PROJECTS_GROUP
from assets.registers import REGISTERS_GROUP

KIND_TAG = "lmdp/kind"
"""On every run of the two heavy jobs, whoever starts it: the run queue bounds how many of each run at once."""

STEPS_IN_THE_RUN_WORKER = dg.in_process_executor
"""Steps run one after the other in the run's own process, as ``lmdp`` runs them. A process per step
(Dagster's default) pays Python's and Great Expectations' imports (seconds) nine times a month, for
steps that mostly wait on each other (references) and each use every core DuckDB is given; the run
queue runs months side by side instead."""

publish_dictionary = dg.define_asset_job(
    "publish_dictionary",
    selection=[data_dictionary],
    description="Publish the data dictionary from the contracts.",
)

register_refresh = dg.define_asset_job(
    "register_refresh",
    selection=dg.AssetSelection.groups(REGISTERS_GROUP),
    tags={KIND_TAG: "refresh"},
    executor_def=STEPS_IN_THE_RUN_WORKER,
    description="Ingest and validate every register's delivery for one month, referenced registers first.",
)

project_build = dg.define_asset_job(
    "project_build",
    selection=dg.AssetSelection.groups(PROJECTS_GROUP),
    tags={KIND_TAG: "build"},
    executor_def=STEPS_IN_THE_RUN_WORKER,
    description="Build one project's extract and then its exports, codebook and package; runs select the registers the project asked for, projects/extract and the exports.",
)

output_release_job = dg.define_asset_job(
    "output_release",
    selection=dg.AssetSelection.groups(OUTPUTS_GROUP),
    description="Decide on one output request: tables computed, checked, protected, published or sent to review, audited.",
)

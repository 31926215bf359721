"""The code location: every asset, job, schedule and sensor of lmdp-pipeline."""

import dagster as dg

from assets import ALL_ASSETS, PlatformResource
from lmdp_pipeline.paths import PlatformPaths
from sensors import ALL_JOBS, ALL_SCHEDULES, ALL_SENSORS

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=ALL_JOBS,
    schedules=ALL_SCHEDULES,
    sensors=ALL_SENSORS,
    resources={"platform": PlatformResource(home=str(PlatformPaths.from_env().home))},
)

"""The code location: every asset, job, schedule and sensor of lmdp-pipeline.

Loading it makes LMDP_HOME and DAGSTER_HOME private (umask 077, folders 0700) for
the webserver, the daemon and every run they start.
"""

import dagster as dg

from assets import ALL_ASSETS, fixed_platform, keys_from_environment
from lmdp_pipeline.paths import PlatformPaths, secure_home
from sensors import ALL_JOBS, ALL_SCHEDULES, ALL_SENSORS

PATHS = PlatformPaths.from_env()
secure_home(PATHS)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=ALL_JOBS,
    schedules=ALL_SCHEDULES,
    sensors=ALL_SENSORS,
    resources={"platform": fixed_platform(PATHS.home), "keys": keys_from_environment()},
)

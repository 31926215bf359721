"""Sensor ``output_requests``: it decides, the release runs act.

It watches ``outputs/<project>/requests/`` of every project: a new or changed request, a
changed file beside it, a new or changed review, or the project's extract appearing,
gives one run of ``output_release`` on the request's partition (added if new), run key
the request and its fingerprint (the sha256 of the request, its files and its review),
with the fingerprint in the run's typed config: the run decides that version or refuses
it. A request already released in this very version starts nothing (a released request
that changes is refused by its run, audited). Hashes are cached in the cursor by size
and modification time, so a tick re-reads only files that changed.
"""

import json

import dagster as dg

from assets.outputs import OUTPUT_REQUESTS, partition_key, release_run_config
from assets.projects import PROJECT_TAG
from assets.resources import PlatformResource
from lmdp_pipeline.files import cached_sha256
from lmdp_pipeline.outputs.ledger import RELEASED, read_decision
from lmdp_pipeline.outputs.examination import request_fingerprint

from .jobs import output_release_job

REQUESTED_BY = "sensor output_requests"


@dg.sensor(
    job=output_release_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a release run for every new or changed output request, attached file or review "
    "(the run checks, protects, publishes or sends to review, and audits).",
)
def output_requests(context: dg.SensorEvaluationContext, platform: PlatformResource):
    state = json.loads(context.cursor) if context.cursor else {}
    seen, hashes = state.get("seen", {}), state.get("hashes", {})
    paths = platform.paths
    current, requests, partitions = {}, [], []
    for project, request, path in paths.output_request_files():
        key = partition_key(project, request)
        fingerprint = request_fingerprint(paths, path, hashes)
        current[key] = fingerprint
        if seen.get(key) == fingerprint:
            continue
        decision = read_decision(paths, project, request)
        if decision and decision.get("status") == RELEASED and decision.get("request_sha256") == cached_sha256(path, hashes):
            continue
        if not context.instance.has_dynamic_partition(OUTPUT_REQUESTS.name, key):
            partitions.append(key)
        requests.append(dg.RunRequest(
            run_key=f"{key}:{fingerprint}",
            partition_key=key,
            run_config=release_run_config(fingerprint, REQUESTED_BY),
            tags={PROJECT_TAG: project},
        ))
    live = {str(p) for *_, p in paths.output_request_files()} | {str(p) for p in paths.outputs.glob("*/*/*")} | {
        str(p) for p in paths.outputs.glob("*/requests/*/*")}
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[OUTPUT_REQUESTS.build_add_request(partitions)] if partitions else [],
        cursor=json.dumps({"seen": current, "hashes": {k: v for k, v in hashes.items() if k in live}}),
        skip_reason="no new or changed output request" if not requests else None,
    )

"""Asset ``outputs/release`` on the dynamic partitions ``output_requests``: one partition per request, ``<project>/<request>``.

A materialisation is the decision on one version of a request, made by
``lmdp_pipeline.outputs.release.release_request``: the tables computed from the
project's extract, held to the rules, compared with every earlier release, protected by
suppression, written as candidate files and checked by five blocking checks before
anything is published (``released/<request>/`` when released, ``checking/<request>/`` for
output checkers in any case). A refused request, or a failed check, fails the step and
publishes nothing. Every decision is in the audit log, written by this run, with the chain
head in its event log. Metadata carry names, counts and checksums, never a cell's value.
"""

import warnings

import dagster as dg
from pydantic import Field

from lmdp_pipeline.locks import LockTimeout
from lmdp_pipeline.outputs.checks import OUTPUT_CHECKS
from lmdp_pipeline.outputs.release import OutputChecksFailed, OutputRefused, release_request
from lmdp_pipeline.paths import InvalidProjectId, InvalidRequestId, project_id, request_id

from .projects import EXTRACT_KEY
from .registers import OWNERS
from .resources import PlatformResource

OUTPUT_REQUESTS = dg.DynamicPartitionsDefinition(name="output_requests")
OUTPUTS_GROUP = "outputs"
RELEASE_KEY = dg.AssetKey(["outputs", "release"])


class ReleaseConfig(dg.Config):
    """What a release run was asked to decide: the request as the requester (or the sensor) saw it."""

    fingerprint: str = Field(
        default="",
        description="sha256 of the request, the files beside it and its review when the run was asked for; the run refuses "
        "a request that changed since (empty: the request on disk now)",
    )
    requested_by: str = Field(default="", description="who asked: the requests sensor, lmdp outputs release (with the account), the UI")


def partition_key(project: str, request: str) -> str:
    return f"{project_id(project)}/{request_id(request)}"


def split_partition(key: str) -> tuple[str, str]:
    project, _, request = key.partition("/")
    return project_id(project), request_id(request)


def release_run_config(fingerprint: str, requested_by: str) -> dict:
    return {"ops": {"release_request": {"config": {"fingerprint": fingerprint, "requested_by": requested_by}}}}


def _check_results(checks) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=RELEASE_KEY, check_name=c.name, passed=c.passed, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in c.problems[:50]) or "none")},
        )
        for c in checks
    ]


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks: one verdict per request
    _CHECK_SPECS = [
        dg.AssetCheckSpec(name, asset=RELEASE_KEY, blocking=True, description=description, partitions_def=OUTPUT_REQUESTS)
        for name, description in OUTPUT_CHECKS.items()
    ]


@dg.multi_asset(
    name="release_request",
    specs=[dg.AssetSpec(
        key=RELEASE_KEY,
        deps=[dg.AssetDep(EXTRACT_KEY, partition_mapping=dg.AllPartitionMapping())],
        group_name=OUTPUTS_GROUP,
        kinds={"csv", "xlsx", "json"},
        owners=OWNERS,
        description=(
            "The decision on one output request (`outputs/<project>/requests/<request>.yaml`): tables computed from the "
            "project's extract, cells held to the disclosure policy (threshold of persons, zeros, dominance, p-percent), "
            "compared with every earlier release (differencing), suppressed (primary and secondary), checked, and published "
            "with ACRO-format evidence: `released/<request>/` (released) or `checking/<request>/` (for output checkers; review)."
        ),
    )],
    check_specs=_CHECK_SPECS,
    partitions_def=OUTPUT_REQUESTS,
)
def release_request_op(context: dg.AssetExecutionContext, config: ReleaseConfig, platform: PlatformResource):
    try:
        project, request = split_partition(context.partition_key)
    except (InvalidProjectId, InvalidRequestId) as error:
        raise dg.Failure(description=f"partition {context.partition_key!r}: {error}") from None
    paths = platform.paths
    tags = context.run.tags
    requested_by = config.requested_by or (f"sensor {tags['dagster/sensor_name']}" if "dagster/sensor_name" in tags else "the Dagster UI")
    try:
        result = release_request(
            paths, platform.contracts(), paths.output_request_file(project, request), platform.audit(context),
            requested_by=requested_by, run_id=context.run.run_id, expected_fingerprint=config.fingerprint,
            on_wait=lambda: context.log.info(f"waiting for another release of {project} to end"),
        )
    except OutputChecksFailed as failed:
        yield from _check_results(failed.checks)
        raise dg.Failure(description=str(failed)) from None
    except OutputRefused as refused:
        raise dg.Failure(description=str(refused)) from None
    except LockTimeout as error:
        raise dg.Failure(description=str(error)) from None
    examination = result.examination
    yield dg.MaterializeResult(check_results=_check_results(result.checks), metadata={
        "status": examination.status,
        "folder": dg.MetadataValue.path(str(result.folder)),
        "requester": examination.requester,
        "request_sha256": examination.sha256,
        "tables": dg.MetadataValue.json({t.name: t.summary() for t in examination.tables}),
        "attachments": dg.MetadataValue.json({a.name: a.status for a in examination.attachments}),
        "review_reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in examination.review_reasons) or "none"),
        "reviewer": examination.review.reviewer if examination.review else "none",
        "files": dg.MetadataValue.json(result.files),
        "earlier_releases_compared": examination.releases,
    })

"""Sensors ``project_approvals`` and ``project_expiry``: a project's start and end.

``project_approvals`` watches approvals/ (cursor: each file's sha256). A new or changed
valid approval adds the ``projects`` partition, creates the project key if the project
is new, and requests a build with run key project + approval hash; an invalid one is
reported in the tick and the audit log, and nothing is built. ``project_expiry``
retires every project that is revoked or past ``expires_on``: extract deleted, key
destroyed, audited; later builds of it are refused.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from assets.projects import EXTRACT_KEY, PROJECTS, project_key
from assets.resources import PlatformResource
from lmdp_pipeline import audit
from lmdp_pipeline.approvals import ApprovalError, parse_approval
from lmdp_pipeline.keys import KeystoreError
from lmdp_pipeline.projects import check, ensure_key, is_retired, retire

from .jobs import project_build


def build_request(approval, sha256: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"{approval.project}:{sha256}",
        partition_key=approval.project,
        asset_selection=[*(project_key(r) for r in approval.variables), EXTRACT_KEY],
        tags={"lmdp/approval_sha256": sha256},
    )


@dg.sensor(
    job=project_build,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Validates new or changed approvals, creates the project key and builds the extract.",
)
def project_approvals(context: dg.SensorEvaluationContext, platform: PlatformResource):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current: dict[str, str] = {}
    requests, new_partitions, refused = [], [], []
    for path in sorted(platform.paths.approvals.glob("*.yaml")):
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        current[path.name] = sha256
        if seen.get(path.name) == sha256:
            continue
        try:
            checked = check(platform.paths, platform.contracts(), path)
        except ApprovalError as error:
            refused.append(f"{path.name}: " + "; ".join(error.problems))
            audit.record(platform.paths.audit, "approval_refused", file=path.name, sha256=sha256, problems=error.problems)
            continue
        approval = checked.approval
        if is_retired(approval):
            continue  # project_expiry takes it from here
        try:
            key = ensure_key(platform.keystore(), approval.project, platform.paths.audit)
        except KeystoreError as error:
            refused.append(f"{path.name}: {error}")
            audit.record(platform.paths.audit, "build_refused", project=approval.project, reason=str(error))
            continue
        if not context.instance.has_dynamic_partition(PROJECTS.name, approval.project):
            new_partitions.append(approval.project)
        audit.record(platform.paths.audit, "build_requested", project=approval.project, approval_sha256=sha256, key_id=key.key_id)
        requests.append(build_request(approval, sha256))
    for line in refused:
        context.log.error(f"approval refused, nothing built: {line}")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[PROJECTS.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(current),
        skip_reason=("; ".join(refused) or "no new or changed approval") if not requests else None,
    )


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deletes the extract and destroys the key of every revoked or expired project, with an audit entry.",
)
def project_expiry(context: dg.SensorEvaluationContext, platform: PlatformResource):
    retired = []
    today = dt.date.today()
    for path in sorted(platform.paths.approvals.glob("*.yaml")):
        try:
            approval = parse_approval(path)
        except ApprovalError:
            continue
        extract = platform.paths.extracts / f"{approval.project}.duckdb"
        store = platform.keystore()
        if is_retired(approval, today) and (extract.exists() or store.key_file(approval.project).exists()):
            reason = "revoked" if approval.status == "revoked" else f"expired on {approval.expires_on}"
            retire(platform.paths, store, approval.project, reason)
            retired.append(f"{approval.project} ({reason})")
    return dg.SkipReason("retired: " + ", ".join(retired) if retired else "no project to retire")

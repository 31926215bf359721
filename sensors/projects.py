"""Sensors ``project_approvals`` and ``project_expiry``: a project's start and end.

``project_approvals`` watches approvals/ and the external files they name (cursor: each
approval's fingerprint, the sha256 of the approval and of its external files). A new or
changed valid approval, or a re-delivered external file, adds the ``projects``
partition, creates the project key if the project is new, and requests a build with
run key project + fingerprint; an invalid one is reported in the tick and the audit
log, and nothing is built. A refused approval is looked at again when the warehouse's
months change, so an approval that arrived before the months it asks for builds as
soon as they are ingested. ``project_expiry``
retires every project that is revoked or past ``expires_on``: extract deleted, key
destroyed, audited; later builds of it are refused.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg

from assets.projects import PROJECTS, build_selection
from assets.resources import PlatformResource
from lmdp_pipeline import audit
from lmdp_pipeline.approvals import ApprovalError, parse_approval
from lmdp_pipeline.keys import KeystoreError, destroyed_message
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.projects import CheckedApproval, check, ensure_key, fingerprint, is_retired, retire

from .jobs import project_build


def _warehouse_months(warehouse: Path) -> str:
    """A digest of the register months in the warehouse (file names only: cheap on every tick)."""
    names = sorted(p.name for p in warehouse.glob("*/*.parquet"))
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _new_months_may_help(paths: PlatformPaths, path: Path) -> bool:
    """False for refusals no delivery can cure: an unreadable spec, a revoked, expired or retired project."""
    try:
        approval = parse_approval(path)
    except ApprovalError:
        return False
    return not is_retired(approval) and destroyed_message(paths.keys, approval.project) is None


def build_request(checked: CheckedApproval) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"{checked.approval.project}:{checked.fingerprint}",
        partition_key=checked.approval.project,
        asset_selection=build_selection(checked.approval),
        tags={"lmdp/approval_sha256": checked.sha256, "lmdp/fingerprint": checked.fingerprint},
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
    months = _warehouse_months(platform.paths.warehouse)
    for path in sorted(platform.paths.approvals.glob("*.yaml")):
        current[path.name] = fingerprint(platform.paths, path)
        if seen.get(path.name) in (current[path.name], f"{current[path.name]}|{months}"):
            current[path.name] = seen[path.name]
            continue
        try:
            checked = check(platform.paths, platform.contracts(), path)
        except ApprovalError as error:
            refused.append(f"{path.name}: " + "; ".join(error.problems))
            audit.record(platform.paths.audit, "approval_refused", file=path.name, fingerprint=current[path.name], problems=error.problems)
            if _new_months_may_help(platform.paths, path):
                current[path.name] += f"|{months}"  # looked at again when the warehouse's months change
            continue
        approval = checked.approval
        try:
            key = ensure_key(platform.keystore(), approval.project, platform.paths.audit)
        except KeystoreError as error:
            refused.append(f"{path.name}: {error}")
            audit.record(platform.paths.audit, "build_refused", project=approval.project, reason=str(error))
            continue
        if not context.instance.has_dynamic_partition(PROJECTS.name, approval.project):
            new_partitions.append(approval.project)
        audit.record(platform.paths.audit, "build_requested", project=approval.project, approval_sha256=checked.sha256,
                     fingerprint=checked.fingerprint, key_id=key.key_id)
        requests.append(build_request(checked))
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

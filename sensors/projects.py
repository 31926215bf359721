"""Sensors ``project_approvals`` and ``project_expiry``: they decide, the runs they request act.

``project_approvals`` watches approvals/ and the external files they name. A new or
changed approval file (its fingerprint: the sha256 of the approval and of its external
files; hashes cached by size and modification time in the cursor) gets a build run,
run key project + fingerprint, with the fingerprint in the run's typed config: the
run builds that approval or refuses (and audits why). A run is requested again when
the warehouse's months of the approval's registers change, for an approval that was
refused for want of months and for a rolling period (``to: latest``), whose new month
is a rebuild. Revoked and expired approvals are left to ``project_expiry``.

``project_expiry`` looks at the union of approvals, extracts and keys
(``lifecycle.decide_retirements``) and requests one ``retire_project`` run per project
to retire, so one failure stops no other. It needs no master key.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from assets.projects import PROJECT_TAG, PROJECTS, build_run_config, build_selection
from assets.resources import PlatformResource
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.projects.approval import Approval, ApprovalError
from lmdp_pipeline.projects.lifecycle import approval_files, check, decide_retirements, fingerprint, is_retired
from lmdp_pipeline.projects.rules import registers_read

from .jobs import project_build
from .lifecycle import retire_project, retire_request

REQUESTED_BY = "sensor project_approvals"


def _months_digest(paths: PlatformPaths, approval: Approval) -> str:
    """A digest of the warehouse months of the approval's registers (file names only: cheap on every tick)."""
    names = [f"{r}:{m}" for r in registers_read(approval) for m in paths.warehouse_months(r)]
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _watch_months(paths: PlatformPaths, contracts, path, approval: Approval | None, today: dt.date, hashes: dict) -> bool:
    """Whether new warehouse months should bring this approval back: rolling, or refused for want of months."""
    if approval is None or is_retired(approval, today):
        return False
    if approval.period.rolling:
        return True
    try:
        check(paths, contracts, path, today, hashes)
    except ApprovalError as error:
        return any("field period" in p for p in error.problems)
    return False


@dg.sensor(
    job=project_build,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a build of every new or changed approval (the run checks it, creates the key, builds and audits); "
    "again when new months arrive for rolling or month-starved approvals.",
)
def project_approvals(context: dg.SensorEvaluationContext, platform: PlatformResource):
    state = json.loads(context.cursor) if context.cursor else {}
    seen, hashes = state.get("seen", {}), state.get("hashes", {})
    paths, contracts, today = platform.paths, platform.contracts(), dt.date.today()
    current, requests, partitions, notes = {}, [], [], []
    for file in approval_files(paths):
        path, project, approval = file.path, file.project, file.approval
        if project is None:
            notes.append(file.problem)
            continue
        if approval is not None and is_retired(approval, today):
            continue  # project_expiry retires it
        key = fingerprint(paths, path, hashes)
        if _watch_months(paths, contracts, path, approval, today, hashes):
            key += f"|{_months_digest(paths, approval)}"
        current[path.name] = key
        if seen.get(path.name) == key:
            continue
        if not context.instance.has_dynamic_partition(PROJECTS.name, project):
            partitions.append(project)
        selection = build_selection(approval) if approval is not None else None
        requests.append(dg.RunRequest(
            run_key=f"{project}:{key}",
            partition_key=project,
            asset_selection=selection,
            run_config=build_run_config(key.split("|")[0], REQUESTED_BY),
            tags={PROJECT_TAG: project},
        ))
    live = set(map(str, paths.approval_files())) | set(map(str, paths.external.glob("*/*")))
    for line in notes:
        context.log.warning(line)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[PROJECTS.build_add_request(partitions)] if partitions else [],
        cursor=json.dumps({"seen": current, "hashes": {k: v for k, v in hashes.items() if k in live}}),
        skip_reason=("; ".join(notes) or "no new or changed approval") if not requests else None,
    )


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[retire_project],
    description="Requests a retire_project run for every project that is revoked or expired (key destroyed) or whose "
    "approval is missing or unreadable (access cut, key kept).",
)
def project_expiry(context: dg.SensorEvaluationContext, platform: PlatformResource):
    decisions, problems = decide_retirements(platform.paths, dt.date.today())
    for problem in problems:
        context.log.warning(problem)
    requests = [
        retire_request(d.project, d.reason, d.destroy_key, run_key=f"retire:{d.project}:{d.destroy_key}:{d.state}")
        for d in decisions
    ]
    if not requests:
        return dg.SkipReason("; ".join(problems) or "no project to retire")
    return requests

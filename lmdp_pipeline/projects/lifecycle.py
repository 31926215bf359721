"""A project's life: approved, built, rebuilt, retired; one code path whoever starts it.

The Dagster runs (started by a sensor, the UI or ``lmdp``) call these functions and
nothing else decides: ``build_project`` and ``retire_project`` act and audit,
``decide_retirements`` only says what should be retired. Rules:

- **Builds.** Under the project's lock: leftovers of a killed build are removed, the
  approval is checked again (and must be the one the run was asked to build: its
  fingerprint), the key is loaded or, for a project with no history, created; just
  before the rename the tombstone and the approval are checked once more, so a
  retirement or a new approval during the build is never overtaken by it. The
  extract's access list (``<project>.access.json``: the approval's researchers) is
  published with it. An extract beyond the disclosure policy is published only when
  its approval accepts the risk; the acceptance is audited (``risk_accepted``, with the
  figures accepted) just before the rename.
- **Keys are never silently remade.** A project with history (an audit entry for its
  key, an extract, an earlier materialisation) whose key file is missing or unreadable
  is refused: the key is lost. Only ``reissue_key`` makes a new one, audited, and every
  pseudonym of the project changes.
- **Retirement** deletes the extract and everything published beside it. Revocation
  and expiry also destroy the key (tombstone first; no master key needed), even for a
  project never built, so nothing can build it again. A withdrawn approval (the file
  deleted or unreadable) cuts access but keeps the key: restored, the approval
  rebuilds the same pseudonyms.
- **Expiry fails closed.** A project with an extract, a key or an approval is looked at;
  a missing or unparsable approval is no authorisation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..audit import AuditLog
from ..contracts import ContractSet
from ..files import cached_sha256, write_private
from ..keys import KeyFolder, KeyNotFound, Keystore, KeystoreError, ProjectKey
from ..locks import held
from ..paths import InvalidProjectId, PlatformPaths, project_id, spill_leftovers
from ..risk.report import headline
from .approval import Approval, ApprovalError, parse_approval
from .build import ExtractRefused, ExtractResult, build_extract, build_label
from .external import ExternalDataRefused, unapproved_file
from .plan import Plan
from .rules import check_approval
from .scope import months_held

WITHDRAWN = "approval withdrawn"


@dataclass(frozen=True)
class CheckedApproval:
    approval: Approval
    path: Path
    sha256: str  # of the approval file
    fingerprint: str  # of the approval and the external files it names: what a build is made from
    plan: Plan


class BuildRefused(Exception):
    """A build that must not go ahead (or must not publish); the previous extract stays."""


class KeyLost(KeystoreError):
    """A project with pseudonyms out there has no usable key: never silently replaced."""


def fingerprint(paths: PlatformPaths, path: Path, cache: dict | None = None) -> str:
    """sha256 over an approval file and the external files it names.

    The approval sensor keys its requests on this, so a re-delivered external file
    rebuilds the extract just as a changed approval does; the build refuses to publish
    when the files on disk no longer have the fingerprint it was asked to build.
    ``cache`` (path -> [mtime, size, sha256]) spares re-hashing unchanged files.
    """
    cache = {} if cache is None else cache
    digest = hashlib.sha256(cached_sha256(path, cache).encode())
    try:
        approval = parse_approval(path)
    except ApprovalError:
        return digest.hexdigest()
    for name, dataset in sorted(approval.external.items()):
        file = paths.external_file(approval.project, dataset.file)
        digest.update(f"\0{name}\0".encode() + (cached_sha256(file, cache).encode() if file.is_file() else b"missing"))
    return digest.hexdigest()


def check(
    paths: PlatformPaths, contracts: ContractSet, path: Path, today: dt.date | None = None, cache: dict | None = None
) -> CheckedApproval:
    """Parse and check one approval file against the contracts, the warehouse and the keys; raise ApprovalError.

    ``cache``: as for ``fingerprint``.
    """
    cache = {} if cache is None else cache
    approval = parse_approval(path)
    period, problems = check_approval(approval, contracts, months_held(paths.warehouse, approval, contracts), today or dt.date.today(), path)
    retired = KeyFolder(paths.keys).destroyed_message(approval.project)
    if retired:
        problems.append(f"{path}: project {approval.project} is retired: {retired}")
    for name, dataset in approval.external.items():
        file = paths.external_file(approval.project, dataset.file)
        if not file.is_file():
            problems.append(f"{path}: field external.{name}.file: {file} does not exist; put the researchers' file there")
        elif unapproved := unapproved_file(name, dataset, cached_sha256(file, cache)):
            problems.append(f"{path}: {unapproved}")
    if problems:
        raise ApprovalError(problems)
    return CheckedApproval(approval, path, cached_sha256(path, cache), fingerprint(paths, path, cache),
                           Plan(approval, contracts, period))


def is_retired(approval: Approval, today: dt.date) -> bool:
    """Revoked, or past its expiry date (the approval is valid through ``expires_on``)."""
    return approval.status == "revoked" or approval.expires_on < today


# --- keys ---------------------------------------------------------------------------------------------


def key_history(paths: PlatformPaths, project: str, audit: AuditLog, built_before: bool) -> list[str]:
    """Why a project must already have a key: its pseudonyms may be out there."""
    reasons = []
    events = [e for e in audit.entries() if e.get("project") == project and e.get("event") in ("key_created", "key_reissued")]
    if events:
        reasons.append(f"the audit log records its key {events[-1].get('key_id')} ({events[-1]['event']}, line {events[-1]['seq']})")
    if paths.extract_file(project).exists():
        reasons.append(f"its extract {paths.extract_file(project)} exists")
    if built_before:
        reasons.append("Dagster holds an earlier materialisation of its extract")
    return reasons


def ensure_key(store: Keystore, paths: PlatformPaths, project: str, audit: AuditLog, built_before: bool) -> ProjectKey:
    """The project's key; created (and audited) only for a project with no history. Never a replacement."""
    try:
        return store.load(project)
    except KeyNotFound:
        history = key_history(paths, project, audit, built_before)
        if history:
            raise KeyLost(
                f"the key of project {project} is lost: {store.key_file(project)} is missing, yet {'; '.join(history)}. "
                "Nothing was built and no new key was made. Restore the key file from the keystore backup, or, if it is "
                f"gone for good, run `lmdp keys reissue {project} --reason ...` (every pseudonym of the project changes)"
            ) from None
        key = store.create(project)
        audit.record("key_created", project=project, key_id=key.key_id)
        return key


def reissue_key(store: Keystore, project: str, reason: str, audit: AuditLog) -> ProjectKey:
    """A new key for a project whose key is lost or unreadable, audited; every pseudonym of the project changes.

    Refused for a retired project (its tombstone stands) and for a key that still
    unwraps (reissuing it would only break the link with the extracts out there).
    """
    message = store.destroyed_message(project)
    if message:
        raise KeystoreError(message)
    old_key_id = store.key_id(project)
    if store.key_file(project).exists():
        try:
            store.load(project)
        except KeystoreError:
            pass
        else:
            raise KeystoreError(f"the key of project {project} is present and unwraps: nothing to reissue")
    set_aside = store.set_aside(project)
    key = store.create(project)
    audit.record("key_reissued", project=project, key_id=key.key_id, previous_key_id=old_key_id, reason=reason,
                 unreadable_file_kept=set_aside.name if set_aside else None,
                 consequence="every pseudonym of the project changes at its next build")
    return key


# --- builds ---------------------------------------------------------------------------------------------


def remove_leftovers(paths: PlatformPaths, project: str) -> list[str]:
    """Candidate files, WALs and spill folders of earlier builds of ``project`` that were killed."""
    removed = []
    for path in paths.extract_leftovers(project):
        path.unlink(missing_ok=True)
        removed.append(path.name)
    for folder in spill_leftovers(paths.warehouse, build_label(project)):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def write_access(paths: PlatformPaths, approval: Approval, key: ProjectKey) -> Path:
    """``extracts/<project>.access.json``: the accounts the remote-access environment mounts the extract for."""
    path = paths.access_file(approval.project)
    write_private(path, json.dumps({
        "project": approval.project,
        "extract": paths.extract_file(approval.project).name,
        "researchers": approval.researchers,
        "expires_on": str(approval.expires_on),
        "key_id": key.key_id,
    }, indent=2) + "\n")
    return path


def build_project(
    paths: PlatformPaths,
    contracts: ContractSet,
    keystore: Callable[[], Keystore],
    project: str,
    audit: AuditLog,
    *,
    expected_fingerprint: str = "",
    requested_by: str = "",
    run_id: str = "",
    built_before: bool = False,
    today: dt.date | None = None,
    on_wait: Callable[[], None] | None = None,
) -> tuple[CheckedApproval, ExtractResult]:
    """Build and publish one project's extract, auditing every step; raise BuildRefused, ExtractRefused or
    ExternalDataRefused (audited as refused) or anything else (audited as failed). The previous extract stays
    unless the new one is published.

    ``keystore`` is called only once the approval is found buildable: a refused
    approval needs no master key. ``expected_fingerprint``: the approval the run was
    asked to build (empty: whatever is on disk now).
    """
    project = project_id(project)
    today = today or dt.date.today()
    audit.record("build_requested", project=project, requested_by=requested_by, fingerprint=expected_fingerprint or None, run_id=run_id)
    try:
        with held(paths.project_lock(project), f"build of {project}", on_wait=on_wait):
            return _build_locked(paths, contracts, keystore, project, audit, expected_fingerprint, run_id, built_before, today)
    except (ApprovalError, BuildRefused, ExtractRefused, ExternalDataRefused, KeystoreError) as refused:
        audit.record("build_refused", project=project, reason=str(refused)[:2000], run_id=run_id,
                     checks={c.name: c.passed for c in getattr(refused, "checks", [])} or None)
        raise
    except BaseException as error:
        audit.record("build_failed", project=project, error=f"{error.__class__.__name__}: {str(error)[:500]}", run_id=run_id)
        raise


def _build_locked(paths, contracts, keystore, project, audit, expected_fingerprint, run_id, built_before, today):
    remove_leftovers(paths, project)
    path = paths.approval_file(project)
    try:
        checked = check(paths, contracts, path, today)
    except ApprovalError as error:
        audit.record("approval_refused", project=project, file=path.name, problems=error.problems, run_id=run_id)
        raise
    if expected_fingerprint and checked.fingerprint != expected_fingerprint:
        raise BuildRefused(f"the approval of {project} (or one of its external files) changed after this build was requested; "
                           "nothing built: the approval sensor requests a build of the new one")
    key = ensure_key(keystore(), paths, project, audit, built_before)
    audit.record("build_started", project=project, approval_sha256=checked.sha256, fingerprint=checked.fingerprint,
                 key_id=key.key_id, period=str(checked.plan.period), run_id=run_id,
                 risk_acceptance=bool(checked.approval.risk_acceptance))

    def still_authorised() -> None:
        retired = KeyFolder(paths.keys).destroyed_message(project)
        if retired:
            raise BuildRefused(f"project {project} was retired while its build ran; nothing published: {retired}")
        try:
            current = parse_approval(path)
        except ApprovalError:
            raise BuildRefused(f"the approval of {project} became unreadable or was withdrawn while its build ran; nothing published") from None
        if is_retired(current, today) or fingerprint(paths, path) != checked.fingerprint:
            raise BuildRefused(f"the approval of {project} changed while its build ran; nothing published (the new one is built next)")
        write_access(paths, checked.approval, key)  # the current approval's accounts, published with its extract

    provenance = {"approval_file": path.name, "approval_sha256": checked.sha256, "dagster_run_id": run_id}
    def before_publish(risk) -> None:
        still_authorised()
        if risk.accepted:
            acceptance = checked.approval.risk_acceptance
            audit.record("risk_accepted", project=project, policy_version=risk.policy.version, breaches=risk.problems,
                         figures=headline(risk), up_to=acceptance.up_to.model_dump(exclude_none=True),
                         justification=acceptance.justification, compensating_measures=acceptance.compensating_measures,
                         accepted_by=acceptance.accepted_by, run_id=run_id)

    result = build_extract(checked.plan, paths, key, provenance, before_publish=before_publish)
    audit.record("build_published", project=project, extract=result.path.name, key_id=key.key_id, rows=result.rows,
                 persons=result.persons, checks={c.name: c.passed for c in result.checks}, run_id=run_id)
    return checked, result


# --- retirement -----------------------------------------------------------------------------------------


def delete_published(paths: PlatformPaths, project: str) -> list[str]:
    """Delete the extract and everything published beside it; return what was there."""
    removed = []
    for path in paths.published(project):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(path.name)
    return removed + remove_leftovers(paths, project)


def retire_project(
    paths: PlatformPaths, project: str, reason: str, destroy_key: bool, audit: AuditLog, run_id: str = "",
    on_wait: Callable[[], None] | None = None,
) -> dict:
    """Retire a project: delete what was published; with ``destroy_key``, tombstone and destroy its key. Idempotent.

    It holds the project's lock (no build runs meanwhile) and its outputs' lock: a release
    that opened the extract before the retirement finishes first, and one asked for after
    finds no extract and is refused. Nothing is released from a retired project.
    """
    project = project_id(project)
    try:
        with (held(paths.project_lock(project), f"retirement of {project}", on_wait=on_wait),
              held(paths.output_lock(project), f"retirement of {project}", on_wait=on_wait)):
            return _retire_locked(paths, project, reason, destroy_key, audit, run_id)
    except BaseException as error:
        audit.record("retirement_failed", project=project, reason=reason, error=f"{error.__class__.__name__}: {str(error)[:500]}",
                     run_id=run_id)
        raise


def _retire_locked(paths: PlatformPaths, project: str, reason: str, destroy_key: bool, audit: AuditLog, run_id: str) -> dict:
    key_id = None
    if destroy_key:
        folder = KeyFolder(paths.keys)
        had_key = folder.key_file(project).exists()
        key_id = folder.destroy(project, reason)
        audit.record("key_destroyed", project=project, key_id=key_id, had_key_file=had_key, reason=reason, run_id=run_id)
    removed = delete_published(paths, project)
    if removed:
        audit.record("extract_deleted", project=project, files=removed, reason=reason, run_id=run_id)
    return audit.record("project_retired", project=project, reason=reason, files_deleted=removed,
                        key_destroyed=destroy_key, key_id=key_id, run_id=run_id)


@dataclass(frozen=True)
class ApprovalFile:
    """One file of approvals/: its project (None when the name is no project id) and its approval (None when unreadable)."""

    path: Path
    project: str | None
    approval: Approval | None
    problem: str | None


def approval_files(paths: PlatformPaths) -> list[ApprovalFile]:
    """Every file in approvals/, read; what could not be read says why (it authorises nothing)."""
    found = []
    for path in paths.approval_files():
        try:
            project = project_id(path.stem)
        except InvalidProjectId:
            found.append(ApprovalFile(path, None, None, f"{path.name}: not named after a project id "
                                      "([A-Z0-9][A-Z0-9-]{2,31}.yaml); it authorises nothing"))
            continue
        try:
            found.append(ApprovalFile(path, project, parse_approval(path), None))
        except ApprovalError as error:
            found.append(ApprovalFile(path, project, None, f"{path.name}: unreadable, so it authorises nothing: {error.problems[0]}"))
    return found


@dataclass(frozen=True)
class Retirement:
    """A decision of the expiry sensor: what to retire and why."""

    project: str
    reason: str
    destroy_key: bool
    state: str  # a digest of what exists now: the same state is not asked to be retired twice


def _state(paths: PlatformPaths, folder: KeyFolder, project: str) -> str:
    present = [p.name for p in paths.published(project) if p.exists()]
    present += ["key"] * folder.key_file(project).exists() + ["tombstone"] * folder.tombstone(project).exists()
    return hashlib.sha256("\n".join(present).encode()).hexdigest()[:12]


def decide_retirements(paths: PlatformPaths, today: dt.date) -> tuple[list[Retirement], list[str]]:
    """Every project that should be retired now, and what could not be read (reported, never skipped silently).

    Looks at the union of approvals, extracts and keys: an extract whose approval is
    missing, unreadable or renamed is withdrawn; a revoked or expired project is
    retired (key destroyed) until its tombstone stands and nothing is left published.
    """
    folder = KeyFolder(paths.keys)
    read = approval_files(paths)
    problems = [f.problem for f in read if f.problem]
    approvals = {f.project: f.approval for f in read if f.project is not None}
    projects = sorted(set(approvals) | set(paths.extracted_projects()) | set(folder.projects()))
    decisions = []
    for project in projects:
        approval = approvals.get(project)
        published = any(p.exists() for p in paths.published(project))
        if approval is not None and is_retired(approval, today):
            reason = "revoked" if approval.status == "revoked" else f"expired on {approval.expires_on}"
            if published or folder.key_file(project).exists() or not folder.tombstone(project).exists():
                decisions.append(Retirement(project, reason, True, _state(paths, folder, project)))
        elif approval is None and published:
            why = WITHDRAWN if project not in approvals else f"{WITHDRAWN} (unreadable)"
            decisions.append(Retirement(project, why, False, _state(paths, folder, project)))
    return decisions, problems

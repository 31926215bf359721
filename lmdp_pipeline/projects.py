"""A project's life: approved (checked, key made), built, and retired (extract and key destroyed).

The Dagster sensors, the assets and the ``lmdp`` commands all go through these
functions, so the rules are the same whichever starts a build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import audit
from .approvals import Approval, ApprovalError, check_approval, parse_approval
from .external import external_file
from .files import sha256_of
from .contracts import ContractSet
from .keys import KeyNotFound, Keystore, MasterKey, ProjectKey, destroyed_message
from .paths import PlatformPaths
from .scope import available_months


@dataclass(frozen=True)
class CheckedApproval:
    approval: Approval
    path: Path
    sha256: str  # of the approval file
    fingerprint: str  # of the approval and the external files it names: what a build is made from


def keystore(paths: PlatformPaths) -> Keystore:
    return Keystore(paths.keys, MasterKey.from_environment(paths.keys))


def approval_file(paths: PlatformPaths, project: str) -> Path:
    return paths.approvals / f"{project}.yaml"


def check(paths: PlatformPaths, contracts: ContractSet, path: Path, today: dt.date | None = None) -> CheckedApproval:
    """Parse and check one approval file against the contracts and the warehouse; raise ApprovalError."""
    approval = parse_approval(path)
    registers = sorted(({b.register for b in approval.population} | set(approval.variables)) & set(contracts.registers))
    problems = check_approval(approval, contracts, available_months(paths.warehouse, registers), today or dt.date.today(), path)
    retired = destroyed_message(paths.keys, approval.project)
    if retired:
        problems.append(f"{path}: project {approval.project} is retired: {retired}")
    for name, dataset in approval.external.items():
        file = external_file(paths.external, approval.project, dataset)
        if not file.is_file():
            problems.append(f"{path}: field external.{name}.file: {file} does not exist; put the researchers' file there")
    if problems:
        raise ApprovalError(problems)
    return CheckedApproval(approval, path, hashlib.sha256(path.read_bytes()).hexdigest(), fingerprint(paths, path))


def fingerprint(paths: PlatformPaths, path: Path) -> str:
    """sha256 over an approval file and the external files it names.

    The approval sensor keys its cursor and its run keys on this, so a re-delivered
    external file rebuilds the extract just as a changed approval does.
    """
    digest = hashlib.sha256(path.read_bytes())
    try:
        approval = parse_approval(path)
    except ApprovalError:
        return digest.hexdigest()
    for name, dataset in sorted(approval.external.items()):
        file = external_file(paths.external, approval.project, dataset)
        digest.update(f"\0{name}\0".encode() + (sha256_of(file).encode() if file.is_file() else b"missing"))
    return digest.hexdigest()


def ensure_key(store: Keystore, project: str, audit_dir: Path) -> ProjectKey:
    """The project's key, created (and audited) the first time; a destroyed key is never remade."""
    try:
        return store.load(project)
    except KeyNotFound:
        key = store.create(project)
        audit.record(audit_dir, "key_created", project=project, key_id=key.key_id)
        return key


def is_retired(approval: Approval, today: dt.date | None = None) -> bool:
    return approval.status == "revoked" or approval.expires_on < (today or dt.date.today())


def retire(paths: PlatformPaths, store: Keystore, project: str, reason: str) -> dict:
    """Delete the extract, destroy the key, and audit it. Idempotent."""
    extract = paths.extracts / f"{project}.duckdb"
    removed = extract.exists()
    extract.unlink(missing_ok=True)
    key_id = None
    if store.key_file(project).exists():
        key_id = store.destroy(project, reason)
    return audit.record(paths.audit, "project_retired", project=project, reason=reason, extract_deleted=removed, key_destroyed=key_id)

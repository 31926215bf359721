"""One request from file to decision: examined, written, checked, published and audited.

``release_request`` is the one code path a release run takes, whoever starts it (the
requests sensor, ``lmdp outputs release``, the UI). Under the project's output lock it
examines the request (``examination``); a refused request is recorded and audited, and
nothing else is written. Otherwise the candidate folders are written under hidden names:
``checking/<request>/`` (the full evidence, for output checkers) and, when released,
``released/<request>/`` (the evidence without reasons); the blocking checks (``checks``)
run on them; only if all pass is the release recorded in the ledger and are the folders
renamed into place.

Every decision is audited (``output_requested``, then ``output_refused``,
``output_review`` or ``output_released``; ``output_failed`` on errors), with counts and
names, never a value. Released outputs are final: a request name is released once.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..audit import AuditLog
from ..contracts import ContractSet
from ..disclosure_policy import DisclosurePolicy, policy_of
from ..files import sha256_of, sync_directory
from ..keys import KeyFolder
from ..locks import held
from ..paths import PRIVATE_DIR, PlatformPaths, spill_leftovers
from ..projects.checks import CheckOutcome
from .checks import CheckedTable, check_candidate
from .differencing import published_cells
from .evidence import attachment_entry, table_entry, timestamp, write_results
from .examination import Examination, TableOutcome, examine, open_extract, request_fingerprint
from .ledger import REFUSED, RELEASED, REVIEW, ReleasedTable, read_decision, record_release, write_decision
from .published import write_xlsx
from .request import request_names


class OutputRefused(Exception):
    """The request was refused (audited); nothing was published."""

    def __init__(self, examination: Examination):
        self.examination = examination
        super().__init__(f"request {examination.request} of {examination.project} refused:\n  " + "\n  ".join(examination.all_reasons))


class OutputChecksFailed(Exception):
    """A blocking check failed on the candidate files: they were deleted and nothing was published."""

    def __init__(self, project: str, request: str, checks: list[CheckOutcome]):
        self.checks = checks
        failed = [c for c in checks if not c.passed]
        super().__init__(f"request {request} of {project}: nothing published: "
                         + "; ".join(f"{c.name}: {', '.join(c.problems[:5])}" for c in failed))


# --- writing -------------------------------------------------------------------------------------------


def _notes(outcome: TableOutcome, full: bool, threshold: int) -> list[str]:
    """Comments on one table: every cell's notes for checkers; for everyone, what the marks mean."""
    notes = ["[c]: suppressed to protect confidentiality; [z]: not applicable (no observation)",
             f"counts are of persons; a category held by fewer than {threshold} persons is pooled into (other categories)"]
    if full:
        for cell in outcome.cells.ordered():
            where = f"cell ({cell.row or 'Total'}{'' if outcome.cells.cols is None else ', ' + (cell.col or 'Total')})"
            notes += [f"{where}: {note}" for note in cell.notes]
    return notes


def _write_folder(folder: Path, examination: Examination, policy, full: bool, decided: str, tables_from: Path | None = None) -> None:
    """One folder of a decision: its tables (written, or copied from ``tables_from``), attached files and evidence."""
    folder.mkdir(parents=True, mode=PRIVATE_DIR)
    outputs = {}
    for outcome in examination.tables:
        files = [f"{outcome.name}.csv", f"{outcome.name}.xlsx"]
        if tables_from is None:
            (folder / files[0]).write_text(outcome.csv, encoding="utf-8")
            write_xlsx(folder / files[1], outcome.grid, outcome.cells.table.statistic, outcome.name,
                       _notes(outcome, False, examination.rules.threshold))
        else:
            for name in files:
                shutil.copyfile(tables_from / name, folder / name)
        status = "approved" if outcome.status == REVIEW and examination.status == RELEASED else outcome.status
        outputs[outcome.name] = table_entry(outcome.cells, outcome.grid, status, files, full,
                                            _notes(outcome, full, examination.rules.threshold))
    for attached in examination.attachments:
        shutil.copyfile(attached.path, folder / attached.name)
        declared = attached.declared.model_dump(exclude_none=True)
        comments = [declared.pop("description")]
        if examination.review is not None and examination.status == RELEASED:
            comments.append(f"Output checker {examination.review.reviewer}: {examination.review.reason}")
        status = "approved" if examination.status == RELEASED else attached.status
        outputs[attached.name] = attachment_entry(attached.name, declared.pop("kind"), declared, status, comments)
    request = {
        "project": examination.project, "request": examination.request, "requester": examination.requester,
        "title": examination.parsed.title, "status": examination.status, "decided": decided,
        "request_sha256": examination.sha256, "policy_version": policy.version,
        "reviewer": examination.review.reviewer if examination.review else None,
    }
    if full:
        request |= {"review_reasons": examination.review_reasons, "notes": examination.notes, "extract": examination.extract,
                    "earlier_releases_compared": examination.releases, "earlier_cells_compared": examination.compared,
                    "threshold": examination.rules.threshold}
    write_results(folder, outputs, request)


def _replace(candidate: Path, final: Path) -> None:
    """Put ``candidate`` at ``final``, replacing what was there (a checker's folder of an earlier version)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        final.rename(old)
    candidate.rename(final)
    sync_directory(final.parent)
    if old is not None:
        shutil.rmtree(old)


def _released_tables(examination: Examination) -> list[ReleasedTable]:
    return [ReleasedTable(t.name, t.cells.table.spec, published_cells(t.cells, t.published())) for t in examination.tables]


@dataclass
class ReleaseResult:
    examination: Examination
    checks: list[CheckOutcome]
    folder: Path | None  # released/<request> or checking/<request>
    files: dict[str, str]  # name -> sha256 of what was published


def release_request(
    paths: PlatformPaths, contracts: ContractSet, path: Path, audit: AuditLog, *, requested_by: str = "", run_id: str = "",
    expected_fingerprint: str = "", policy: DisclosurePolicy | None = None, on_wait: Callable[[], None] | None = None,
) -> ReleaseResult:
    """Examine, protect, check and publish one request, auditing each decision; raise OutputRefused or OutputChecksFailed."""
    policy = policy or policy_of(contracts)
    project, request = request_names(path)
    audit.record("output_requested", project=project, request=request, requested_by=requested_by,
                 fingerprint=expected_fingerprint or None, run_id=run_id)
    try:
        paths.outputs_dir(project).mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        with held(paths.output_lock(project), f"release of {project}/{request}", on_wait=on_wait):
            return _release_locked(paths, contracts, Path(path), audit, run_id, expected_fingerprint, policy)
    except (OutputRefused, OutputChecksFailed):
        raise
    except BaseException as error:
        audit.record("output_failed", project=project, request=request, error=f"{error.__class__.__name__}: {str(error)[:500]}",
                     run_id=run_id)
        raise


def _refuse(paths, audit, examination: Examination, run_id: str, keep_decision: bool = False) -> OutputRefused:
    if not keep_decision:
        write_decision(paths, examination.project, examination.request, {**examination.summary(), "decided": timestamp(), "run_id": run_id})
    audit.record("output_refused", project=examination.project, request=examination.request, requester=examination.requester,
                 request_sha256=examination.sha256, reasons=[r[:300] for r in examination.all_reasons[:20]], run_id=run_id)
    return OutputRefused(examination)


def _release_locked(paths, contracts, path: Path, audit, run_id, expected_fingerprint, policy) -> ReleaseResult:
    project, request = request_names(path)
    for leftover in paths.output_candidate_leftovers(project):
        shutil.rmtree(leftover, ignore_errors=True)
    for folder in spill_leftovers(paths.outputs_dir(project), f"release-{request}"):
        shutil.rmtree(folder, ignore_errors=True)
    earlier = read_decision(paths, project, request)
    if expected_fingerprint and path.is_file() and request_fingerprint(paths, path) != expected_fingerprint:
        examination = Examination(project, request, path, sha256_of(path))
        examination.reasons.append("the request, a file beside it or its review changed after this release was asked for; "
                                   "the requests sensor asks again for the new version")
        raise _refuse(paths, audit, examination, run_id, keep_decision=True)
    if earlier is not None and earlier.get("status") == RELEASED:
        examination = Examination(project, request, path, sha256_of(path) if path.is_file() else "")
        examination.reasons.append(f"request {request} was released on {earlier.get('decided')} "
                                   f"({paths.output_released_dir(project, request)}); released outputs are final: "
                                   "ask for more under a new request name")
        raise _refuse(paths, audit, examination, run_id, keep_decision=True)
    if not paths.extract_file(project).is_file() or KeyFolder(paths.keys).destroyed_message(project):
        examination = examine(paths, contracts, path, policy)
        raise _refuse(paths, audit, examination, run_id)
    with open_extract(paths, project, f"release-{request}") as con:
        examination = examine(paths, contracts, path, policy, con)
        if examination.status == REFUSED:
            raise _refuse(paths, audit, examination, run_id)
        return _publish(paths, con, examination, audit, run_id, policy)


def _publish(paths, con, examination: Examination, audit, run_id: str, policy) -> ReleaseResult:
    project, request, status = examination.project, examination.request, examination.status
    decided, token = timestamp(), uuid.uuid4().hex
    checking = paths.output_checking_dir(project, request)
    released = paths.output_released_dir(project, request)
    candidates = {checking: paths.output_candidate_dir(checking, token)}
    if status == RELEASED:
        candidates[released] = paths.output_candidate_dir(released, token)
    try:
        for final, candidate in candidates.items():  # the checkers' folder first; the released one copies its tables
            candidate.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            _write_folder(candidate, examination, policy, full=final == checking, decided=decided,
                          tables_from=None if final == checking else candidates[checking])
        checked = candidates.get(released, candidates[checking])
        checks = check_candidate(con, [CheckedTable(t.cells, t.base, checked / f"{t.name}.csv", t.declared_zeros)
                                       for t in examination.tables],
                                 examination.rules, examination.releases, len(paths.output_ledger_records(project)))
        if any(not c.passed for c in checks):
            audit.record("output_failed", project=project, request=request, run_id=run_id,
                         checks={c.name: c.passed for c in checks}, error="a blocking check failed; nothing published")
            raise OutputChecksFailed(project, request, checks)
        files = {p.name: sha256_of(p) for p in sorted(checked.iterdir()) if p.is_file()}
        tables = {t.name: t.summary() for t in examination.tables}
        if status == RELEASED:
            if released.exists():
                raise FileExistsError(f"{released} exists already: released outputs are final")
            record = record_release(paths, project, request, {
                "project": project, "request": request, "released": decided, "request_sha256": examination.sha256,
                "requester": examination.requester, "reviewer": examination.review.reviewer if examination.review else None,
                "run_id": run_id, "policy_version": policy.version, "extract": examination.extract,
            }, _released_tables(examination))
            candidates[released].rename(released)
            sync_directory(released.parent)
        _replace(candidates[checking], checking)
    finally:
        for candidate in candidates.values():
            shutil.rmtree(candidate, ignore_errors=True)
    write_decision(paths, project, request, {**examination.summary(), "decided": decided, "run_id": run_id,
                                             "folder": str((released if status == RELEASED else checking).relative_to(paths.home))})
    common = dict(project=project, request=request, requester=examination.requester, request_sha256=examination.sha256,
                  tables=tables, attachments=[a.name for a in examination.attachments],
                  checks={c.name: c.passed for c in checks}, run_id=run_id)
    if status == RELEASED:
        audit.record("output_released", **common, files=files, ledger=record.name,
                     reviewer=examination.review.reviewer if examination.review else None,
                     releases_compared=examination.releases)
    else:
        audit.record("output_review", **common, reasons=examination.review_reasons, folder=checking.name)
    return ReleaseResult(examination, checks, released if status == RELEASED else checking, files)

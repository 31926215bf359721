"""One request from file to decision: examined, protected, checked, published and audited.

``examine`` decides without writing anything (``lmdp outputs check`` prints it);
``release_request`` is the one code path a release run takes, whoever starts it (the
requests sensor, ``lmdp outputs release``, the UI). Under the project's output lock:

1. the request is read and checked against the extract (``extract``); a retired project
   (its key destroyed) or one without an extract refuses every request;
2. every table is computed from the extract, held to the rules, compared with every
   earlier release (differencing), and protected (secondary suppression), one table at
   a time so that each is compared with the ones before it in the request too;
3. attached files are checked as far as a machine can; they always need a person;
4. the decision: ``refused`` (the request cannot be checked, a table is empty or has a
   cell no suppression can protect, an attached file breaks a rule, or the checker
   refused it), ``review`` (attached files, or cells the rules cannot settle: negative
   values) or ``released``. A review file (``reviews/<request>.yaml``)
   naming this version of the request decides a request in review, as long as its
   tables are still the ones the checker saw;
5. the candidate folders are written under hidden names: ``checking/<request>/`` (the full
   evidence) and, when released, ``released/<request>/`` (the evidence without reasons);
   the blocking checks (``checks``) run on them; only if all pass is the release recorded
   in the ledger and are the folders renamed into place.

Every decision is audited (``output_requested``, then ``output_refused``,
``output_review`` or ``output_released``; ``output_failed`` on errors), with counts and
names, never a value. Released outputs are final: a request name is released once.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..audit import AuditLog
from ..contracts import ContractSet
from ..disclosure_policy import DisclosurePolicy, load_policy
from ..files import cached_sha256, sha256_of, sync_directory
from ..keys import KeyFolder
from ..locks import project_lock
from ..paths import PRIVATE_DIR, PlatformPaths, spill_leftovers
from ..projects.checks import CheckOutcome
from ..spill import spill_folder
from .attachments import AttachmentResult, check_attachment
from .checks import CheckedTable, check_candidate
from .differencing import EarlierTable, difference, published_cells
from .evidence import attachment_entry, table_entry, timestamp, write_results
from .extract import ExtractDescription, describe_extract, resolve_request
from .ledger import REFUSED, RELEASED, REVIEW, ReleasedTable, earlier_tables, read_decision, record_release, write_decision
from .published import Grid, csv_text, grid, write_xlsx
from .request import OutputRequest, OutputRequestError, Review, parse_request, parse_review, request_names
from .rules import NEGATIVE, apply_rules
from .suppression import is_suppressed, protect
from .tables import Cell, EmptyTable, TableCells, compute_cells, create_base, structural_zero_labels


class OutputRefused(Exception):
    """The request was refused (audited); nothing was published."""

    def __init__(self, examination: "Examination"):
        self.examination = examination
        super().__init__(f"request {examination.request} of {examination.project} refused:\n  " + "\n  ".join(examination.all_reasons))


class OutputChecksFailed(Exception):
    """A blocking check failed on the candidate files: they were deleted and nothing was published."""

    def __init__(self, project: str, request: str, checks: list[CheckOutcome]):
        self.checks = checks
        failed = [c for c in checks if not c.passed]
        super().__init__(f"request {request} of {project}: nothing published: "
                         + "; ".join(f"{c.name}: {', '.join(c.problems[:5])}" for c in failed))


@dataclass
class TableOutcome:
    cells: TableCells
    base: str
    grid: Grid
    declared_zeros: list[dict[str, str]]
    unprotectable: list[Cell]

    @property
    def name(self) -> str:
        return self.cells.table.name

    @property
    def csv(self) -> str:
        return csv_text(self.grid, self.cells.table.statistic)

    @property
    def review_cells(self) -> list[Cell]:
        """Published cells the rules cannot settle: a negative value where dominance is not defined."""
        return [c for c in self.cells.cells.values() if NEGATIVE in c.reasons and not is_suppressed(c)]

    @property
    def status(self) -> str:
        return REVIEW if self.review_cells else "pass"

    def suppressed(self) -> list[Cell]:
        return [c for c in self.cells.ordered() if is_suppressed(c)]

    def summary(self) -> dict:
        suppressed = self.suppressed()
        return {"status": self.status, "cells": len(self.cells.cells), "suppressed": len(suppressed),
                "secondary": sum(c.secondary for c in suppressed), "review_cells": len(self.review_cells),
                "unprotectable": len(self.unprotectable)}


@dataclass
class Examination:
    """Everything decided about one version of a request, before anything is written."""

    project: str
    request: str
    path: Path
    sha256: str = ""
    parsed: OutputRequest | None = None
    review: Review | None = None  # a valid review of this version of the request
    reasons: list[str] = field(default_factory=list)  # why it is refused
    review_reasons: list[str] = field(default_factory=list)  # why a person must decide
    notes: list[str] = field(default_factory=list)
    tables: list[TableOutcome] = field(default_factory=list)
    attachments: list[AttachmentResult] = field(default_factory=list)
    compared: int = 0  # earlier cells compared
    releases: int = 0  # ledger records when compared
    extract: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.reasons or any(a.problems for a in self.attachments):
            return REFUSED
        if self.review is not None and self.review.decision == "refuse":
            return REFUSED
        if self.review_reasons and (self.review is None or self.review.decision != "release"):
            return REVIEW
        return RELEASED

    @property
    def all_reasons(self) -> list[str]:
        reasons = self.reasons + [p for a in self.attachments for p in a.problems]
        if self.review is not None and self.review.decision == "refuse":
            reasons.append(f"refused by output checker {self.review.reviewer}: {self.review.reason}")
        return reasons

    @property
    def requester(self) -> str:
        return self.parsed.requester if self.parsed else ""

    def summary(self) -> dict:
        return {
            "project": self.project, "request": self.request, "status": self.status, "request_sha256": self.sha256,
            "requester": self.requester, "reasons": self.all_reasons, "review_reasons": self.review_reasons,
            "tables": {t.name: t.summary() for t in self.tables},
            "attachments": {a.name: a.status for a in self.attachments},
            "reviewer": self.review.reviewer if self.review else None,
            "earlier_cells_compared": self.compared, "releases_compared": self.releases, "extract": self.extract,
        }


def request_fingerprint(paths: PlatformPaths, path: Path, cache: dict | None = None) -> str:
    """sha256 over a request file, the files beside it and its review: what a release run is made from."""
    cache = {} if cache is None else cache
    project, request = request_names(path)
    digest = hashlib.sha256(cached_sha256(path, cache).encode() if path.is_file() else b"missing")
    folder = paths.output_attachments_dir(project, request)
    for attached in sorted(folder.iterdir()) if folder.is_dir() else []:
        if attached.is_file() and not attached.is_symlink():
            digest.update(f"\0{attached.name}\0".encode() + cached_sha256(attached, cache).encode())
    review = paths.output_review_file(project, request)
    digest.update(b"\0review\0" + (cached_sha256(review, cache).encode() if review.is_file() else b"none"))
    digest.update(b"\0extract\0" + (b"present" if paths.extract_file(project).is_file() else b"absent"))
    return digest.hexdigest()


@contextmanager
def open_extract(paths: PlatformPaths, project: str, label: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The project's extract, read-only; temporary data may spill only under ``outputs/<project>/``."""
    with spill_folder(paths.outputs_dir(project), label) as spill:
        con = duckdb.connect(str(paths.extract_file(project)), read_only=True, config={"temp_directory": str(spill)})
        try:
            yield con
        finally:
            con.close()


def _review(paths: PlatformPaths, examination: Examination, description: ExtractDescription) -> None:
    """The checker's decision, if there is one for this version of the request (notes say why one is ignored)."""
    path = paths.output_review_file(examination.project, examination.request)
    if not path.exists():
        return
    try:
        review = parse_review(path)
    except OutputRequestError as error:
        examination.notes.append(f"the review file cannot be used: {error.problems[0]}")
        return
    if review.request_sha256 != examination.sha256:
        examination.notes.append(f"{path.name} reviews another version of the request (sha256 {review.request_sha256[:12]}…): ignored")
    elif review.reviewer in description.researchers:
        examination.notes.append(f"{review.reviewer} is a researcher of the project and cannot check its outputs: review ignored")
    else:
        examination.review = review


def _table(con, examination: Examination, table, policy, earlier: list[EarlierTable], position: int) -> TableOutcome:
    base = f"rows_{position}"
    create_base(con, table, base)
    cells = compute_cells(con, table, base, policy.threshold, policy.dominance_n)
    declared = structural_zero_labels(con, table)
    apply_rules(cells, policy, declared)
    examination.compared += difference(con, cells, earlier, policy.threshold)
    unprotectable = protect(cells)
    outcome = TableOutcome(cells, base, grid(cells), declared, unprotectable)
    for variable, count in cells.pooled.items():
        examination.notes.append(f"table {table.name}: {count} value(s) of {variable} held by fewer than {policy.threshold} "
                                 f"persons are pooled into (other categories)")
    if outcome.review_cells:
        examination.review_reasons.append(f"table {table.name}: {len(outcome.review_cells)} cell(s) with negative values, "
                                          "where dominance is not defined")
    if unprotectable:
        examination.reasons.append(f"table {table.name}: {len(unprotectable)} cell(s) cannot be protected by suppression "
                                   "(no other cell can hide them): ask for fewer categories or a coarser variable")
    earlier.append(EarlierTable(examination.request, table.name, "earlier in this request", table,
                                published_cells(cells, [c for c in cells.cells.values() if not is_suppressed(c)])))
    return outcome


def examine(paths: PlatformPaths, contracts: ContractSet, path: Path, policy: DisclosurePolicy | None = None,
            con: duckdb.DuckDBPyConnection | None = None) -> Examination:
    """Decide on a request file without writing anything. ``con``: the extract, already open (else opened here)."""
    policy = policy or load_policy()
    path = Path(path)
    project, request = request_names(path)
    examination = Examination(project, request, path)
    if path.resolve() != paths.output_request_file(project, request).resolve():
        examination.reasons.append(f"{path}: requests are checked where the platform keeps them: "
                                   f"{paths.output_request_file(project, request)}")
        return examination
    try:
        examination.sha256 = sha256_of(path)
        examination.parsed = parse_request(path)
    except (OutputRequestError, OSError) as error:
        examination.reasons += getattr(error, "problems", [f"{path}: cannot be read ({error.__class__.__name__})"])
        return examination
    retired = KeyFolder(paths.keys).destroyed_message(project)
    if retired:
        examination.reasons.append(f"project {project} is retired, its outputs can no longer be checked: {retired}")
        return examination
    if not paths.extract_file(project).is_file():
        examination.reasons.append(f"project {project} has no extract ({paths.extract_file(project)}): tables are computed "
                                   "from it; build it first")
        return examination
    if con is None:
        with open_extract(paths, project, f"check-{request}") as opened:
            return _examine(paths, contracts, policy.output, examination, opened)
    return _examine(paths, contracts, policy.output, examination, con)


def _examine(paths, contracts, policy, examination: Examination, con) -> Examination:
    description = describe_extract(con)
    examination.extract = description.identity
    tables, problems = resolve_request(examination.parsed, description, contracts, examination.path)
    examination.reasons += problems
    for name, declared in examination.parsed.attachments.items():
        file = paths.output_attachments_dir(examination.project, examination.request) / name
        examination.attachments.append(check_attachment(file, name, declared, policy, con, description, f"{examination.path}: field attachments.{name}"))
    if examination.attachments:
        examination.review_reasons.append(f"{len(examination.attachments)} attached file(s): an output checker decides")
    if problems:
        return examination
    _review(paths, examination, description)
    earlier = earlier_tables(paths, examination.project, description, contracts)
    examination.releases = len(paths.output_ledger_records(examination.project))
    for position, table in enumerate(tables):
        try:
            examination.tables.append(_table(con, examination, table, policy, earlier, position))
        except EmptyTable as empty:
            examination.reasons.append(f"{examination.path}: field tables.{table.name}.filter: {empty}")
    if examination.review is not None and examination.review.decision == "release" and examination.review_reasons:
        seen = paths.output_checking_dir(examination.project, examination.request)
        changed = [t.name for t in examination.tables if not (seen / f"{t.name}.csv").is_file()
                   or (seen / f"{t.name}.csv").read_text(encoding="utf-8") != t.csv]
        if changed:
            examination.notes.append(f"tables {', '.join(changed)} changed since the review (the extract was rebuilt or "
                                     "other outputs were released): the checker must look again")
            examination.review = None
    return examination


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
                       _notes(outcome, False, policy.output.threshold))
        else:
            for name in files:
                shutil.copyfile(tables_from / name, folder / name)
        status = "approved" if outcome.status == REVIEW and examination.status == RELEASED else outcome.status
        outputs[outcome.name] = table_entry(outcome.cells, outcome.grid, status, files, full,
                                            _notes(outcome, full, policy.output.threshold))
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
                    "earlier_releases_compared": examination.releases, "earlier_cells_compared": examination.compared}
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
    return [ReleasedTable(t.name, t.cells.table.spec, [(c.key(t.cells.table), c.persons, c.fingerprint)
                                                       for c in t.cells.ordered() if not is_suppressed(c)])
            for t in examination.tables]


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
    policy = policy or load_policy()
    project, request = request_names(path)
    audit.record("output_requested", project=project, request=request, requested_by=requested_by,
                 fingerprint=expected_fingerprint or None, run_id=run_id)
    try:
        paths.outputs_dir(project).mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        with project_lock(paths.output_lock(project), f"release of {project}/{request}", on_wait=on_wait):
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
                                 policy.output, examination.releases, len(paths.output_ledger_records(project)))
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

"""One version of a request examined: tables computed, held to the rules, compared, protected; nothing written.

``examine`` is what ``lmdp outputs check`` prints and what every release decides from:

1. the request is read and checked against the extract (``extract``); a retired project
   (its key destroyed) or one without an extract refuses every request;
2. every table is computed from the extract (``tables``), held to the rules (``rules``),
   compared with every earlier release and the earlier tables of the request
   (``differencing``), and protected (``suppression``), one table at a time;
3. attached files are checked as far as a machine can (``attachments``); they always
   need a person;
4. the status: ``refused`` (the request cannot be checked, a table is empty or has a
   cell no suppression can protect, an attached file breaks a rule, or the checker
   refused it), ``review`` (attached files, cells the rules cannot settle: negative
   values, or the researchers' own columns used in more than one way: ``own_columns``)
   or ``released``. A review file (``reviews/<request>.yaml``) naming this
   version of the request decides a request in review, as long as its tables are still
   the ones the checker saw in ``checking/<request>/``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..contracts import ContractSet
from ..disclosure_policy import DisclosurePolicy, OutputPolicy, policy_of
from ..files import cached_sha256, sha256_of
from ..keys import KeyFolder
from ..paths import PlatformPaths
from ..spill import spill_folder
from .attachments import AttachmentResult, check_attachment
from .differencing import EarlierTable, difference, published_cells
from .extract import ExtractDescription, describe_extract, resolve_request
from .ledger import REFUSED, RELEASED, REVIEW, earlier_tables
from .own_columns import review_reason
from .published import Grid, csv_text, grid
from .request import OutputRequest, OutputRequestError, Review, parse_request, parse_review, request_names
from .rules import NEGATIVE, apply_rules
from .suppression import is_suppressed, protect
from .tables import Cell, TableCells, TableRefused, compute_cells, create_base, structural_zero_labels


@dataclass
class TableOutcome:
    """One table of a request, protected: its cells with their reasons, its published grid, its rows' temporary table."""

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

    def published(self) -> list[Cell]:
        return [c for c in self.cells.ordered() if not is_suppressed(c)]

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
    rules: OutputPolicy | None = None
    """The rules applied: the policy's, with the project's own threshold where its risk acceptance set a higher one."""

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
    earlier.append(EarlierTable(examination.request, table.name, "earlier in this request", table, table.spec.rows,
                                table.spec.columns, table.spec.from_, cells=published_cells(cells, outcome.published())))
    return outcome


def examine(paths: PlatformPaths, contracts: ContractSet, path: Path, policy: DisclosurePolicy | None = None,
            con: duckdb.DuckDBPyConnection | None = None) -> Examination:
    """Decide on a request file without writing anything. ``con``: the extract, already open (else opened here)."""
    policy = policy or policy_of(contracts)
    path = Path(path)
    project, request = request_names(path)
    examination = Examination(project, request, path, rules=policy.output)
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


def project_rules(policy: OutputPolicy, description: ExtractDescription) -> OutputPolicy:
    """The policy's rules, with the higher threshold the project's accepted risk committed it to (never a lower one)."""
    own = description.output_threshold
    return policy.model_copy(update={"threshold": own}) if own is not None and own > policy.threshold else policy


def _examine(paths, contracts, policy, examination: Examination, con) -> Examination:
    description = describe_extract(con)
    examination.extract = description.identity
    platform, policy = policy, project_rules(policy, description)
    examination.rules = policy
    if policy.threshold != platform.threshold:
        examination.notes.append(f"cells need at least {policy.threshold} persons: the threshold this project's accepted "
                                 f"re-identification risk committed it to (the platform's is {platform.threshold})")
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
    own_columns = review_reason(tables, earlier)
    if own_columns:
        examination.review_reasons.append(own_columns)
    examination.releases = len(paths.output_ledger_records(examination.project))
    for position, table in enumerate(tables):
        try:
            examination.tables.append(_table(con, examination, table, policy, earlier, position))
        except TableRefused as refused:
            examination.reasons.append(f"{examination.path}: field tables.{table.name}.{refused}")
    if examination.review is not None and examination.review.decision == "release" and examination.review_reasons:
        seen = paths.output_checking_dir(examination.project, examination.request)
        changed = [t.name for t in examination.tables if not (seen / f"{t.name}.csv").is_file()
                   or (seen / f"{t.name}.csv").read_text(encoding="utf-8") != t.csv]
        if changed:
            examination.notes.append(f"tables {', '.join(changed)} changed since the review (the extract was rebuilt or "
                                     "other outputs were released): the checker must look again")
            examination.review = None
    return examination

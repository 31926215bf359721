"""A project's exports, codebook and package, made from its published extract and published together.

``export_project`` runs under the project's lock (builds and retirements take it too),
so the extract cannot change or vanish while it is read. It refuses a project whose
approval is withdrawn, revoked, expired or changed since the extract was built (the
approval sensor then rebuilds both), and a retired one. Everything is written under
hidden names: the exports folder is filled beside its target and takes its name by
rename (the previous one is moved aside for that instant and deleted), the package is
encrypted into a hidden file and renamed. A failure leaves the previous exports and
package as they were.

No recipients in the approval: no package. An earlier package is then deleted, since
it holds an older extract encrypted to keys the approval no longer lists.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..audit import AuditLog
from ..contracts import ContractSet
from ..files import sha256_of, sync_directory, write_private
from ..keys import KeyFolder
from ..locks import held
from ..paths import PRIVATE_DIR, PRIVATE_FILE, PlatformPaths, codebook_file, project_id, value_labels_file
from ..period import Period
from ..projects.approval import Approval, ApprovalError, parse_approval
from ..projects.lifecycle import is_retired
from ..projects.plan import Plan
from . import ExportError
from .codebook import FileEntry, codebook_tables, render_codebook
from .columns import Kind, export_tables
from .names import fit
from .package import Member, PackageError, parse_recipients, write_package
from .tables import TableExport, export_table

EXPORTS_FOLDER = "exports"
"""The exports' folder inside the package."""
NO_RECIPIENTS = "no package: the approval lists no recipients (age public keys of the remote-access environment)"


@dataclass
class ExportResult:
    project: str
    folder: Path
    tables: list[TableExport]
    files: list[FileEntry]  # the extract and every export, codebook included, as the package names them
    package: Path | None = None
    recipients: int = 0
    notes: list[str] = field(default_factory=list)

    def size(self, name: str) -> int:
        return next(f.size for f in self.files if f.name == name)


def remove_export_leftovers(paths: PlatformPaths, project: str) -> None:
    for path in paths.export_leftovers(project):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _authorised(paths: PlatformPaths, project: str, today: dt.date) -> Approval:
    retired = KeyFolder(paths.keys).destroyed_message(project)
    if retired:
        raise ExportError(f"project {project} is retired; nothing exported: {retired}")
    if not paths.extract_file(project).exists():
        raise ExportError(f"project {project} has no extract ({paths.extract_file(project)}): the exports are made from it; "
                          "build the project first")
    try:
        approval = parse_approval(paths.approval_file(project))
    except ApprovalError as error:
        raise ExportError(f"the approval of {project} is withdrawn or unreadable; nothing exported: {error.problems[0]}") from None
    if is_retired(approval, today):
        raise ExportError(f"the approval of {project} is revoked or expired; nothing exported (the expiry sensor retires it)")
    return approval


def _value_labels_csv(tables: list[TableExport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", "variable", "stata_name", "spss_name", "number", "code", "label"])
    for table in tables:
        for column, stata_variable, spss_variable in zip(table.columns, table.stata, table.spss):
            if column.kind is Kind.code:
                writer.writerows([table.table, column.name, stata_variable.name, spss_variable.name, column.numbers[code], code,
                                  label] for code, label in column.labels.items())
    return out.getvalue()


def _entry(name: str, path: Path) -> FileEntry:
    return FileEntry(name, path.stat().st_size, sha256_of(path))


def _swap(staging: Path, target: Path, aside: Path) -> None:
    """``staging`` takes ``target``'s name; for an instant between the two renames, neither exists."""
    if target.exists():
        os.replace(target, aside)
    os.replace(staging, target)
    shutil.rmtree(aside, ignore_errors=True)
    sync_directory(target.parent)


def write_exports(con: duckdb.DuckDBPyConnection, paths: PlatformPaths, approval: Approval, contracts: ContractSet,
                  folder: Path) -> tuple[list[TableExport], list[FileEntry], dt.datetime]:
    """Every table in the three formats, ``value_labels.csv`` and the codebook, in ``folder``; and the extract's build time
    (the files' time stamps: the same extract gives the same files)."""
    project = approval.project
    manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
    extract = paths.extract_file(project)
    if manifest.get("approval_sha256") != sha256_of(paths.approval_file(project)):
        raise ExportError(f"the approval of {project} changed after its extract was built; nothing exported: the approval "
                          "sensor rebuilds the extract, then its exports")
    plan = Plan(approval, contracts, Period.parse(manifest["period"].replace(" to ", ":")))
    built = dt.datetime.fromisoformat(manifest["build_time"])
    tables = []
    for table, columns in export_tables(plan).items():
        label = fit(f"{project} {table}: {approval.title}", 64)
        metadata = {"project": project, "table": table, "period": manifest["period"], "extract_build_time": manifest["build_time"]}
        tables.append(export_table(con, table, columns, folder, label, built, metadata))
    write_private(value_labels_file(folder), _value_labels_csv(tables))
    lineage = {(t, c): (s, tr) for t, c, s, tr in con.execute("SELECT table_name, column_name, source, transformations FROM _lineage").fetchall()}
    files = [_entry(extract.name, extract)]
    files += [_entry(f"{EXPORTS_FOLDER}/{p.name}", p) for t in tables for p in t.files.values()]
    files.append(_entry(f"{EXPORTS_FOLDER}/{value_labels_file(folder).name}", value_labels_file(folder)))
    pages = render_codebook(approval, manifest, codebook_tables(approval, contracts, manifest, lineage, tables), files)
    for format_, text in pages.items():
        write_private(codebook_file(folder, format_), text)
        files.append(_entry(f"{EXPORTS_FOLDER}/{codebook_file(folder, format_).name}", codebook_file(folder, format_)))
    for path in folder.iterdir():
        os.chmod(path, PRIVATE_FILE)
    return tables, files, built


def export_project(paths: PlatformPaths, contracts: ContractSet, project: str, audit: AuditLog, run_id: str = "",
                   today: dt.date | None = None, on_wait: Callable[[], None] | None = None) -> ExportResult:
    """Exports, codebook and (with recipients) the encrypted package of ``project``'s published extract; audited.
    Raises ExportError or PackageError (audited as refused); what was published before stays."""
    project = project_id(project)
    try:
        with held(paths.project_lock(project), f"exports of {project}", on_wait=on_wait):
            return _export_locked(paths, contracts, project, audit, run_id, today or dt.date.today())
    except (ExportError, PackageError) as refused:
        audit.record("exports_refused", project=project, reason=str(refused)[:2000], run_id=run_id)
        raise


def _export_locked(paths, contracts, project, audit, run_id, today) -> ExportResult:
    remove_export_leftovers(paths, project)
    approval = _authorised(paths, project, today)
    recipients = parse_recipients(approval.recipients, str(paths.approval_file(project)))
    token = uuid.uuid4().hex
    staging, target = paths.exports_candidate(project, token), paths.exports_dir(project)
    staging.mkdir(parents=True, mode=PRIVATE_DIR)
    try:
        with duckdb.connect(str(paths.extract_file(project)), read_only=True) as con:
            tables, files, built = write_exports(con, paths, approval, contracts, staging)
        _swap(staging, target, paths.exports_set_aside(project, token))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = ExportResult(project, target, tables, files)
    audit.record("exports_published", project=project, folder=target.name, rows={t.table: t.rows for t in tables},
                 files={f.name: f.sha256 for f in files}, run_id=run_id)
    package = paths.package_file(project)
    if recipients:
        extract = paths.extract_file(project)
        members = [Member(f.name, extract if f.name == extract.name else target / Path(f.name).relative_to(EXPORTS_FOLDER), f.sha256)
                   for f in files]
        write_package(package, paths.package_candidate(project, token), project, members, recipients, int(built.timestamp()))
        result.package, result.recipients = package, len(recipients)
        audit.record("package_published", project=project, package=package.name, sha256=sha256_of(package),
                     recipients=approval.recipients, files=len(members) + 1, run_id=run_id)
    else:
        result.notes.append(NO_RECIPIENTS)
        if package.exists():
            package.unlink()
            result.notes.append(f"the earlier package {package.name} was deleted")
            audit.record("package_deleted", project=project, package=package.name, reason=NO_RECIPIENTS, run_id=run_id)
    return result

"""Monthly register ingestion: a delivery checked against its contract, typed, and stored.

``ingest_delivery`` is the whole path for one register and month: structure, typing,
the contract's Great Expectations suite, then either the warehouse (Parquet, replaced
atomically) or the quarantine (a copy and a readable report). Policy: any broken hard
rule refuses the whole delivery; see docs/ingestion.md for why rows are not rejected
one by one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..contracts import ContractSet
from ..locks import held
from ..paths import PlatformPaths, spill_leftovers, warehouse_file, warehouse_leftovers
from ..period import parse_month
from ..spill import connect, spill_folder
from .report import Check, DeliveryRefused, Finding, ValidationReport
from .staging import sql_type, stage
from .store import previous_month, promote, quarantine, stored_rows, write_candidate
from .structure import fingerprint, read_header, rejected_lines, scan_sql
from .validate import validate_staged

__all__ = ["DeliveryRefused", "IngestResult", "ingest_delivery"]

DUCKDB_MEMORY_LIMIT = "4GB"


@dataclass(frozen=True)
class IngestResult:
    register: str
    month: str
    source: Path
    stored: Path
    report: ValidationReport
    rows_stored: int
    schema: list[tuple[str, str]]  # (column, DuckDB type) as stored

    @property
    def rows_rejected(self) -> int:
        return self.report.rows_read - self.rows_stored


def _refuse(report: ValidationReport, source: Path, paths: PlatformPaths) -> DeliveryRefused:
    return DeliveryRefused(report, str(quarantine(source, report, paths.quarantine)))


def ingest_delivery(paths: PlatformPaths, contracts: ContractSet, register: str, month: str) -> IngestResult:
    """Validate ``landing/<register>/<register>_<month>.csv`` and store it, or quarantine it and raise.

    Under the register month's lock: two runs of the same month never interleave, and
    whatever a killed run left (a hidden candidate file, a spill folder; identified
    data) is removed before anything else.
    """
    contract = contracts[register]
    parse_month(month)
    with held(paths.delivery_lock(register, month), f"ingestion of {register} {month}"):
        remove_leftovers(paths, register, month)
        return _ingest(paths, contracts, contract, register, month)


def remove_leftovers(paths: PlatformPaths, register: str, month: str) -> None:
    for path in warehouse_leftovers(paths.warehouse, register, month):
        path.unlink(missing_ok=True)
    for folder in spill_leftovers(paths.warehouse, ingest_label(register, month)):
        shutil.rmtree(folder, ignore_errors=True)


def ingest_label(register: str, month: str) -> str:
    """The label of an ingestion's spill folders, so the next ingestion of the month can remove a killed one's."""
    return f"ingest-{register}-{month}"


def _ingest(paths: PlatformPaths, contracts: ContractSet, contract, register: str, month: str) -> IngestResult:
    source = paths.delivery_file(register, month)
    if not source.is_file():
        raise FileNotFoundError(f"no delivery for {register} {month}: expected {source}")
    sha256, encoding_problems = fingerprint(source)
    report = ValidationReport(source.name, register, month, sha256, contract.version)
    known = {column for c in contracts for column in c.delivered_columns}
    header, problems = read_header(source, contract, known)
    problems = problems or encoding_problems
    if problems:
        report.findings += problems
        raise _refuse(report, source, paths)
    with spill_folder(paths.warehouse, ingest_label(register, month)) as spill:
        con = connect(spill, memory_limit=DUCKDB_MEMORY_LIMIT)
        partial: Path | None = None
        try:
            try:
                rules, missing = stage(con, scan_sql(source, contract, header), contract, paths.warehouse, month)
            except duckdb.Error as error:  # its message may quote a line of the file: never shown
                report.findings.append(Finding(
                    Check.structure, "unreadable file", None, 0,
                    hint=f"DuckDB's CSV reader stopped ({error.__class__.__name__}): check quoting, delimiters and control "
                    "characters; open the quarantined copy in the identified zone to find the line",
                ))
                raise _refuse(report, source, paths) from None
            rejected, rejected_count = rejected_lines(con)
            report.findings += rejected
            for target in missing:
                report.findings.append(Finding(
                    Check.integrity, "referenced month in the warehouse", None, 0,
                    hint=f"{target} is not in the warehouse yet: ingest it first (register_refresh does it in order)",
                ))
            previous = stored_rows(con, warehouse_file(paths.warehouse, register, previous_month(month)))
            rows, findings = validate_staged(con, contract, rules, month, previous)
            report.values_checked = True
            report.rows_read = rows + rejected_count
            report.findings += findings
            minimum = contract.quality.min_rows
            if rows < minimum:
                report.findings.append(Finding(
                    Check.structure, f"at least {minimum} data row(s)", None, rows,
                    hint="the file has a header but no rows; ask the source whether the month is missing",
                ))
            if report.refused:
                raise _refuse(report, source, paths)
            partial = write_candidate(con, contract, paths.warehouse, month, report.sha256)
            stored = promote(partial, contract, paths.warehouse, month)
            schema = [(v.name, sql_type(v)) for v in contract.variables]
            return IngestResult(register, month, source, stored, report, rows, schema)
        finally:
            if partial is not None:
                partial.unlink(missing_ok=True)  # refused, or failed: the candidate never becomes visible
            con.close()

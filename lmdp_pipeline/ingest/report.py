"""What a validation found, in words an operator can act on, without any identified value.

A finding names the file, the column, the rule, how many rows broke it and the first
data-row numbers (1 = the first line after the header). Values are never kept: a
failing matricule in a report, a log line or Dagster metadata would leak it out of the
identified zone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

MAX_ROWS_SHOWN = 10


class Severity(StrEnum):
    error = "error"  # the delivery is refused
    warn = "warn"  # stored, but flagged for an operator


class Check(StrEnum):
    """The register's asset checks: one per family of contract rules."""

    structure = "structure"
    values = "values"
    identifiers = "identifiers"
    integrity = "integrity"
    volume = "volume"


CHECK_DESCRIPTIONS = {
    Check.structure: "The file is UTF-8 without BOM, LF line endings, the contract's header, every line with all columns, at least the contract's minimum of rows.",
    Check.values: "Every value parses as its type, required values are present, codes are in their code list, numbers in their range, and every row belongs to the file's month.",
    Check.identifiers: "Identifiers have their format, and matricules and employer numbers their check digits.",
    Check.integrity: "The key identifies one row, and identifiers that point at another register exist there in the same month.",
    Check.volume: "The row count changes from the previous month by no more than the contract allows (warning only).",
}


@dataclass(frozen=True)
class Finding:
    check: Check
    rule: str
    column: str | None
    rows: int
    first_rows: tuple[int, ...] = ()
    severity: Severity = Severity.error
    hint: str = ""

    def describe(self) -> str:
        where = f"column {self.column}, " if self.column else ""
        text = f"{where}rule '{self.rule}'"
        if self.rows:
            text += f": {self.rows} row{'s' if self.rows != 1 else ''}"
        if self.first_rows:
            text += " (first data rows " + ", ".join(str(r) for r in self.first_rows) + ")"
        return f"{text}; {self.hint}" if self.hint else text


@dataclass
class ValidationReport:
    """All findings for one delivery; ``refused`` when any is an error."""

    file: str
    register: str
    month: str
    sha256: str
    contract_version: str
    rows_read: int = 0
    findings: list[Finding] = field(default_factory=list)
    values_checked: bool = False  # false when the file was refused on its structure alone

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.error]

    @property
    def refused(self) -> bool:
        return bool(self.errors)

    def findings_for(self, check: Check) -> list[Finding]:
        return [f for f in self.findings if f.check is check]

    def summary(self) -> str:
        if not self.findings:
            return f"{self.file}: all contract rules passed ({self.rows_read} rows)"
        lines = [f"{self.file}: {len(self.errors)} rule(s) broken, {len(self.findings) - len(self.errors)} warning(s)"]
        lines += [f"  [{f.severity}] {f.describe()}" for f in self.findings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["refused"] = self.refused
        return data

    def to_markdown(self) -> str:
        verdict = "REFUSED" if self.refused else "accepted with warnings" if self.findings else "accepted"
        lines = [
            f"# Delivery {self.file}: {verdict}",
            "",
            f"- register: {self.register}, month: {self.month}, contract version {self.contract_version}",
            f"- sha256: {self.sha256}",
            f"- data rows read: {self.rows_read}" if self.values_checked else "- data rows: not read (the file's structure was refused first)",
            "",
            "| severity | check | column | rule | rows | first data rows | what to do |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in self.findings:
            first = ", ".join(str(r) for r in f.first_rows)
            lines.append(f"| {f.severity} | {f.check} | {f.column or ''} | {f.rule} | {f.rows or '—'} | {first} | {f.hint} |")
        lines += [
            "",
            "Row numbers count data rows: row 1 is the line after the header.",
            "Values are deliberately not shown; open the quarantined file in the identified zone to inspect them.",
            "The warehouse still holds the last accepted delivery of this month, if any.",
            "Ask the source agency for a corrected file and drop it into landing/ under the same name.",
        ]
        return "\n".join(lines) + "\n"


class DeliveryRefused(Exception):
    """A delivery broke a hard contract rule; the message is safe to log (no values)."""

    def __init__(self, report: ValidationReport, quarantine_report: str | None = None):
        self.report = report
        self.quarantine_report = quarantine_report
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more rule(s), see the report)" if len(report.errors) > 1 else ""
        where = f" Report: {quarantine_report}." if quarantine_report else ""
        super().__init__(
            f"delivery {report.file} refused: {first.describe()}{more}.{where} "
            "The warehouse keeps the last accepted delivery of this month."
        )

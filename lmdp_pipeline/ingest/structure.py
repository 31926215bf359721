"""Structural checks on a delivery file, before any value is looked at.

The header is read by hand (a few bytes) so that a wrong delimiter, a renamed or
missing column, a byte-order mark or CR LF line endings get a precise message. The
body is then scanned by DuckDB with the contract's columns all read as text (CSV type
detection would turn matricules into numbers and lose leading zeros), and DuckDB's
reject table gives the line and kind of every malformed line, never its content.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..contracts import Contract
from ..files import read_blocks
from .report import MAX_ROWS_SHOWN, Check, Finding

MAX_LINE_BYTES = 64 * 1024
"""No legitimate register line comes near this; a longer one is a broken or hostile file."""

REJECT_RULES = {
    "MISSING COLUMNS": ("line has fewer columns than the header", "the file may be truncated or a value holds an unquoted line break"),
    "TOO MANY COLUMNS": ("line has more columns than the header", "a value holds an unquoted delimiter"),
    "UNQUOTED VALUE": ("badly quoted value", "quotes inside values must be doubled"),
    "LINE SIZE OVER MAXIMUM": (f"line longer than {MAX_LINE_BYTES} bytes", "a field is far longer than any register value"),
    "INVALID ENCODING": ("not valid UTF-8", "the file must be UTF-8; it may have been saved as Latin-1 or Windows-1252"),
    "INVALID STATE": ("unreadable line", "the quoting of the line is inconsistent"),
    "CAST": ("unreadable value", "check the line"),
}


@dataclass(frozen=True)
class Header:
    columns: list[str]


def _finding(rule: str, hint: str, column: str | None = None, rows: int = 0) -> Finding:
    return Finding(Check.structure, rule, column, rows, hint=hint)


def _field(columns: list[str], index: int, known: set[str]) -> str:
    """How a report names header field ``index``: by name when it is a column of a contract, else by position (#3).

    A file that lacks its header line has a data row in its first line: its fields
    (a matricule, a name) must never reach a report, a log or Dagster's storage.
    """
    return columns[index] if columns[index] in known else f"#{index + 1}"


def read_header(path: Path, contract: Contract, known: set[str]) -> tuple[Header | None, list[Finding]]:
    """Check the first line against the contract; return the columns in file order.

    ``known``: every column name of every register's contract; only those are ever
    named in a finding.
    """
    with path.open("rb") as handle:
        head = handle.read(MAX_LINE_BYTES + 2)
    if not head:
        return None, [_finding("empty file", "the file has no header and no rows; ask the source to resend it")]
    if head.startswith(codecs.BOM_UTF8):
        return None, [_finding("byte-order mark", "the file starts with a UTF-8 BOM; the contract asks for UTF-8 without BOM")]
    line, newline, _ = head.partition(b"\n")
    if not newline and len(head) > MAX_LINE_BYTES:
        return None, [_finding("header too long", f"the first line is longer than {MAX_LINE_BYTES} bytes")]
    if line.endswith(b"\r"):
        return None, [_finding("CR LF line endings", "lines must end with LF only, as the contract's delivery format says")]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, [_finding("header not UTF-8", "the file must be UTF-8; it may have been saved as Latin-1")]
    delimiter = contract.delivery.delimiter
    columns = [c.strip() for c in text.split(delimiter)]
    expected = contract.delivered_columns
    if len(columns) == 1 and len(expected) > 1:
        found = next((d for d in ";\t|" if d in text), None)
        hint = f"the header is split by {found!r}, the contract's delimiter is {delimiter!r}" if found else "the header has a single column"
        return None, [_finding("wrong delimiter", hint)]
    if not any(c in expected for c in columns):
        others = sorted({c.split("_", 1)[0] + "_" for c in columns if c in known})
        hint = (f"its columns start with {', '.join(others)}, not {contract.prefix!r}: is this another register's file?" if others
                else "the first line names no column of any contract: does the file lack its header line? "
                     "(its fields are not shown: they may be data)")
        return None, [_finding("not this register's columns", hint)]
    findings = []
    for index in sorted({columns.index(c) for c in columns if columns.count(c) > 1}):
        findings.append(_finding("duplicate column", "the header names this column twice", _field(columns, index, known)))
    for column in (c for c in expected if c not in columns):
        findings.append(_finding("missing column", "the contract requires this column; was it renamed?", column))
    for index, column in enumerate(columns):
        if column not in expected:
            findings.append(_finding("unexpected column", "not in the contract (a field that is no column name is shown by "
                                     "position); the source must agree a contract change first", _field(columns, index, known)))
    return (None, findings) if findings else (Header(columns), [])


def fingerprint(path: Path) -> tuple[str, list[Finding]]:
    """One pass over the bytes: the file's sha256, whether every byte is UTF-8, and stray carriage returns.

    DuckDB only decodes the columns a query reads, so encoding is checked here, for all
    of them; the first offending line is reported. A carriage return inside a line
    stops DuckDB's strict CSV reader with no line number, so they are found here with
    theirs. Memory stays flat.
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    problem: list[Finding] = []
    returns: list[int] = []  # data-row numbers of lines holding a CR
    return_count = 0
    for block in read_blocks(path):
        digest.update(block)
        position = block.find(b"\r")
        while position != -1:
            return_count += 1
            if len(returns) < MAX_ROWS_SHOWN:
                returns.append(lines_before + block.count(b"\n", 0, position))
            position = block.find(b"\r", position + 1)
        if not problem:
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                line = lines_before + block.count(b"\n", 0, error.start) + 1
                problem = [Finding(Check.structure, "not valid UTF-8", None, 1, (line - 1,), hint=REJECT_RULES["INVALID ENCODING"][1])]
        lines_before += block.count(b"\n")
    if not problem:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            problem = [Finding(Check.structure, "not valid UTF-8", None, 1, (lines_before,), hint="the file ends inside a character")]
    if return_count:
        problem.append(Finding(Check.structure, "carriage return inside the file", None, return_count, tuple(returns),
                               hint="lines end with LF only and values hold no CR; the file was probably edited on Windows"))
    return digest.hexdigest(), problem


def scan_sql(path: Path, contract: Contract, header: Header) -> str:
    """A read_csv call for the file, every column as text, malformed lines to the reject table."""
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in header.columns)  # names validated against the contract
    delimiter = contract.delivery.delimiter.replace("'", "''")
    location = str(path).replace("'", "''")
    return (
        f"read_csv('{location}', columns = {{{columns}}}, header = true, auto_detect = false, "
        f"delim = '{delimiter}', quote = '\"', escape = '\"', strict_mode = true, encoding = 'utf-8', "
        f"store_rejects = true, max_line_size = {MAX_LINE_BYTES}, null_padding = false)"
    )


def rejected_lines(con: duckdb.DuckDBPyConnection) -> tuple[list[Finding], int]:
    """Findings from DuckDB's reject table (after a scan with store_rejects), and the number of lines rejected.

    DuckDB records one error per column that fails on a line (a line with two extra
    fields gives two), so lines are counted once per rule and once in the total.
    """
    rows = con.execute(
        """SELECT error_type::VARCHAR, count(DISTINCT line), list(DISTINCT line ORDER BY line)[1:?]
           FROM reject_errors GROUP BY 1 ORDER BY 1""",
        [MAX_ROWS_SHOWN],
    ).fetchall()
    total = con.execute("SELECT count(DISTINCT line) FROM reject_errors").fetchone()[0]
    findings = []
    for error_type, count, lines in rows:
        rule, hint = REJECT_RULES.get(error_type, ("unreadable line", "check the line"))
        # DuckDB counts file lines from 1, header included: data row = line - 1.
        findings.append(Finding(Check.structure, rule, None, count, tuple(int(n) - 1 for n in lines), hint=hint))
    return findings, total

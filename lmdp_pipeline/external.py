"""Researchers' own data (a survey, a cohort), checked and linked into their project's extract.

A project's approval declares each external dataset: a CSV or Parquet file under
``external/<project>/``, the column holding matricules, and every other column with its
type and, optionally, its allowed values. The file is refused whole, with every problem
named, when:

- a column is not declared, or a declared column or the id column is missing;
- a column looks like a direct identifier, by its name (name, e-mail, phone, address,
  free text, respondent number...) or by its content (e-mail addresses, phone numbers,
  matricules, text with spaces, or a near-unique integer or text column: another key);
- a value does not have its declared type or is not one of the declared values;
- a matricule appears twice, or the file has no rows.

Matricules with a wrong format or check digit are not an error: they are counted,
reported by data-row number (1 = the first row after the header; never by value) and
left out. Valid ones are pseudonymised with the project's key in the person domain:
the same person_id as in the register tables. Rows of persons outside the project's
population are dropped and counted (``not_linked``): the extract only ever describes
its population. Everything runs in DuckDB on the build's connection, on a temporary
copy of the file read as text (so no value is reinterpreted before it is checked).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from .approvals import ExternalColumn, ExternalDataset
from .contracts.models import IdentifierFormat
from .files import sha256_of
from .identifiers import identifier_checks, install_macros
from .spill import connect, spill_folder
from .sql import quote_identifier as q
from .sql import quote_literal

SQL_TYPES = {"integer": "BIGINT", "decimal": "DOUBLE", "string": "VARCHAR", "date": "DATE"}
ROW_NUMBER = "lmdp_row"
SHOWN_ROWS = 10  # row numbers listed per problem; the count is always complete
NEAR_UNIQUE_SHARE = 0.9
NEAR_UNIQUE_MIN_ROWS = 20

IDENTIFYING_NAMES = re.compile(
    r"(^|_)(name|names|nom|prenom|vorname|nachname|surname|firstname|lastname|fullname|givenname|"
    r"email|mail|phone|telephone|tel|mobile|gsm|fax|address|adresse|street|rue|strasse|housenumber|"
    r"postcode|postalcode|zip|zipcode|iban|ssn|matricule|passport|nationalid|"
    r"respondent|respondentid|respid|interviewid|caseid|comment|comments|remark|remarks|note|notes|freetext|text)($|_)"
)
CONTENT_RULES = {  # what a value looks like -> SQL condition on ``v`` (text)
    "e-mail addresses": r"regexp_full_match(v, '[^@\s]+@[^@\s]+\.[A-Za-z]{2,}')",
    "phone numbers or identifiers": (  # 8 digits or more; a number with a few decimals is a measurement
        r"regexp_full_match(v, '\+?[0-9][0-9 ()./-]{6,}[0-9]') AND length(regexp_replace(v, '[^0-9]', '', 'g')) >= 8 "
        r"AND NOT regexp_full_match(v, '[0-9]+\.[0-9]{1,4}')"
    ),
    "text with spaces (names, addresses, free text)": r"regexp_matches(v, '\S\s+\S')",
}


class ExternalDataRefused(Exception):
    """An external file breaks its declaration; nothing of it is linked and the build stops."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"external file {path} refused, nothing built:\n  " + "\n  ".join(problems)
            + "\nFix the file or its declaration in the approval (external:), then rebuild."
        )


@dataclass
class Linkage:
    """What became of an external file's rows; in the materialisation metadata and ``_manifest``."""

    rows_read: int
    invalid_ids: int
    valid_ids: int
    linked: int
    not_linked: int
    invalid_id_rows: list[int]  # data-row numbers, never values

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExternalTable:
    name: str  # external_<dataset>
    file: Path
    sha256: str
    linkage: Linkage
    columns: dict[str, ExternalColumn]


def external_file(directory: Path, project: str, dataset: ExternalDataset) -> Path:
    return directory / project / dataset.file


def row_list(numbers: list[int]) -> str:
    """'rows 4, 9, ...': data-row numbers as messages show them (the first few; counts are given apart)."""
    shown = ", ".join(str(n) for n in numbers[:SHOWN_ROWS])
    return f"rows {shown}" + (", ..." if len(numbers) > SHOWN_ROWS else "")


def _load(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str]:
    """The file as a temporary table of text columns plus its data-row number; returns the file's columns."""
    if not path.is_file():
        raise ExternalDataRefused(path, [f"the file does not exist: put it under {path.parent}/ or correct 'file' in the approval"])
    if path.stat().st_size == 0:
        raise ExternalDataRefused(path, ["the file is empty (0 bytes)"])
    reader = (f"read_csv({quote_literal(path)}, header = true, all_varchar = true, auto_detect = true)"
              if path.suffix == ".csv" else f"read_parquet({quote_literal(path)})")
    try:
        columns = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {reader})").fetchall()]
        texts = ", ".join(f"{q(c)}::VARCHAR AS {q(c)}" for c in columns)
        # CREATE TABLE AS keeps the file's order, so rowid + 1 is the data-row number
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {texts} FROM {reader}")
        con.execute(f"ALTER TABLE {table} ADD COLUMN {ROW_NUMBER} BIGINT")
        con.execute(f"UPDATE {table} SET {ROW_NUMBER} = rowid + 1")
    except duckdb.Error as error:
        raise ExternalDataRefused(path, [f"the file cannot be read as {path.suffix[1:].upper()}: {str(error).splitlines()[0]}"]) from None
    return columns


def _offending_rows(con, table: str, condition: str, params: list | None = None) -> list[int]:
    return [n for (n,) in con.execute(
        f"SELECT {ROW_NUMBER} FROM {table} WHERE {condition} ORDER BY {ROW_NUMBER}", params or []
    ).fetchall()]


def _identifier_like(con, table: str, dataset: ExternalDataset, columns: list[str], rows: int) -> list[str]:
    """Columns that could name a person: by their name, by their content, or by being a second key."""
    problems = []
    for column in columns:
        if column == dataset.id_column:
            continue
        if IDENTIFYING_NAMES.search(re.sub(r"[^a-z0-9_]", "", column.lower().replace("-", "_").replace(" ", "_"))):
            problems.append(f"column {column!r} looks like a direct identifier by its name: remove it from the file")
            continue
        declared = dataset.columns.get(column)
        for what, rule in CONTENT_RULES.items():
            found = con.execute(f"SELECT count(*) FROM (SELECT {q(column)} AS v FROM {table}) WHERE {rule}").fetchone()[0]
            if found:
                problems.append(f"column {column!r} holds {what} in {found} rows: remove it from the file")
        keyish = declared is None or (declared.type in ("integer", "string") and declared.values is None)
        distinct = con.execute(f"SELECT count(DISTINCT {q(column)}) FROM {table}").fetchone()[0]
        if keyish and rows >= NEAR_UNIQUE_MIN_ROWS and distinct >= NEAR_UNIQUE_SHARE * rows:
            problems.append(
                f"column {column!r} has {distinct} distinct values in {rows} rows: a near-unique key (a respondent "
                "number?) would identify people; remove it (declare a measurement as decimal)"
            )
    return problems


def _declared_values(con, table: str, name: str, column: ExternalColumn) -> list[str]:
    sql_type = SQL_TYPES[column.type]
    typed = f"TRY_CAST({q(name)} AS {sql_type})"
    wrong = _offending_rows(con, table, f"{q(name)} IS NOT NULL AND {typed} IS NULL")
    problems = [f"column {name!r}: {len(wrong)} values are not of type {column.type} ({row_list(wrong)})"] if wrong else []
    if column.values is not None:
        allowed = [str(v) for v in column.values]
        outside = _offending_rows(con, table, f"{typed} IS NOT NULL AND NOT list_contains(?::{sql_type}[], {typed})", [allowed])
        if outside:
            problems.append(f"column {name!r}: {len(outside)} values are not among the declared values {column.values} ({row_list(outside)})")
    return problems


def check_external(con: duckdb.DuckDBPyConnection, path: Path, name: str, dataset: ExternalDataset, table: str) -> list[int]:
    """Load and check the file into temporary table ``table``; raise ExternalDataRefused naming every problem.

    Returns the data-row numbers of invalid matricules (left out, not an error).
    """
    columns = _load(con, path, table)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    problems = []
    if rows == 0:
        problems.append("the file has no rows")
    if dataset.id_column not in columns:
        problems.append(f"the id column {dataset.id_column!r} is missing (columns: {', '.join(columns)})")
    problems += [f"declared column {c!r} is missing" for c in dataset.columns if c not in columns]
    problems += [f"column {c!r} is not declared: declare it under external.{name}.columns in the approval or remove it"
                 for c in columns if c != dataset.id_column and c not in dataset.columns]
    problems += _identifier_like(con, table, dataset, columns, rows)
    problems += [p for c, column in dataset.columns.items() if c in columns for p in _declared_values(con, table, c, column)]
    invalid: list[int] = []
    if dataset.id_column in columns:
        install_macros(con)
        well_formed, digits_hold = identifier_checks(f"trim({q(dataset.id_column)})", IdentifierFormat.matricule)
        con.execute(f"ALTER TABLE {table} ADD COLUMN lmdp_valid BOOLEAN")
        con.execute(f"UPDATE {table} SET lmdp_valid = coalesce({well_formed} AND {digits_hold}, false)")
        invalid = _offending_rows(con, table, "NOT lmdp_valid")
        duplicated = _offending_rows(
            con, table, f"lmdp_valid AND trim({q(dataset.id_column)}) IN (SELECT trim({q(dataset.id_column)}) FROM {table} "
            f"WHERE lmdp_valid GROUP BY ALL HAVING count(*) > 1)"
        )
        if duplicated:
            problems.append(f"{len(duplicated)} rows share a matricule with another row ({row_list(duplicated)}): one row per person")
    if problems:
        raise ExternalDataRefused(path, problems)
    return invalid


def link_external(
    con: duckdb.DuckDBPyConnection, directory: Path, project: str, name: str, dataset: ExternalDataset, population_map: str
) -> ExternalTable:
    """Check the file and write table ``external_<name>``: person_id then the declared columns, typed.

    ``population_map(identifier, pseudonym)`` is the build's population with its person
    pseudonyms: joining to it pseudonymises and drops rows outside the population at once.
    """
    path = external_file(directory, project, dataset)
    raw = f"external_raw_{name}"
    invalid = check_external(con, path, name, dataset, raw)
    table = f"external_{name}"
    columns = ", ".join(f"TRY_CAST(r.{q(c)} AS {SQL_TYPES[column.type]}) AS {q(c)}" for c, column in dataset.columns.items())
    con.execute(
        f"CREATE TABLE {q(table)} AS SELECT p.pseudonym AS person_id, {columns} FROM {raw} r "
        f"JOIN {population_map} p ON p.identifier = trim(r.{q(dataset.id_column)}) WHERE r.lmdp_valid ORDER BY r.{ROW_NUMBER}"
    )
    rows_read = con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]
    linked = con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
    con.execute(f"DROP TABLE {raw}")
    valid = rows_read - len(invalid)
    linkage = Linkage(rows_read, len(invalid), valid, linked, valid - linked, invalid)
    return ExternalTable(table, path, sha256_of(path), linkage, dict(dataset.columns))


def inspect_external(directory: Path, project: str, name: str, dataset: ExternalDataset) -> tuple[int, list[int]]:
    """Check a dataset's file before any build (``lmdp approvals check``): its rows and the invalid matricules' rows.

    Raises ExternalDataRefused exactly as a build would.
    """
    with spill_folder(directory) as spill, connect(spill) as con:
        invalid = check_external(con, external_file(directory, project, dataset), name, dataset, "external_raw")
        return con.execute("SELECT count(*) FROM external_raw").fetchone()[0], invalid

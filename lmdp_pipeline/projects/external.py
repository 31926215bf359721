"""Researchers' own data (a survey, a cohort), checked and linked into their project's extract.

A project's approval declares each external dataset: a CSV or Parquet file under
``external/<project>/``, the column holding matricules, and every other column with its
type and, optionally, its allowed values. The file is refused whole, with every problem
named, when:

- a column is not declared, or a declared column or the id column is missing;
- a column looks like a direct identifier by its name (name, e-mail, phone, address,
  free text, respondent number...);
- a declared column, whatever its type, holds identifying content: e-mail addresses,
  phone numbers, a run of eight digits or more anywhere in a value (a matricule with
  ``.0`` or a letter added is still one), a matricule with valid check digits, one of
  the file's own matricules, or text with spaces;
- a declared column is near-unique over its non-blank values in the rows the extract
  will hold (another key: a respondent number, an exact amount); neither blank values
  nor rows the linkage drops dilute the count;
- a value does not have its declared type or is not one of the declared values;
- a matricule appears twice, or the file has no rows.

Header fields are only ever named in messages when they are the names the approval
declares; any other field is "column 3": a file that lacks its header line has data
in its first line, and a message must not carry a matricule or a name.

Matricules with a wrong format or check digit are not an error: they are counted,
reported by data-row number (1 = the first row after the header; never by value) and
left out. Valid ones are pseudonymised with the project's key in the person domain:
the same person_id as in the register tables. Rows of persons outside the project's
population are dropped and counted (``not_linked``). Everything runs in DuckDB on the
build's connection, on a temporary copy of the file read as text, with columns renamed
by position (so no file column can collide with the platform's own).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from ..contracts.models import IdentifierFormat
from ..files import sha256_of
from ..identifiers import identifier_checks, install_macros
from ..paths import PlatformPaths
from ..spill import connect, spill_folder
from ..sql import quote_identifier as q
from ..sql import quote_literal
from .approval import ExternalColumn, ExternalDataset

SQL_TYPES = {"integer": "BIGINT", "decimal": "DOUBLE", "string": "VARCHAR", "date": "DATE"}
ROW_NUMBER = "lmdp_row"
VALID = "lmdp_valid"
SHOWN_ROWS = 10  # row numbers listed per problem; the count is always complete
NEAR_UNIQUE_SHARE = 0.9
NEAR_UNIQUE_MIN_VALUES = 3
"""Below three non-blank values no column can be told from a key; from three on, 90% distinct is one."""
DIGIT_RUN = r"\p{Nd}{8,}"
"""Eight decimal digits or more in a row, of any script: full-width or Arabic-Indic digits spell a matricule as well."""

IDENTIFYING_NAMES = re.compile(
    r"(^|_)(name|names|nom|prenom|vorname|nachname|surname|firstname|lastname|fullname|givenname|"
    r"email|mail|phone|telephone|tel|mobile|gsm|fax|address|adresse|street|rue|strasse|housenumber|"
    r"postcode|postalcode|zip|zipcode|iban|ssn|matricule|passport|nationalid|"
    r"respondent|respondentid|respid|interviewid|caseid|comment|comments|remark|remarks|note|notes|freetext|text)($|_)"
)
ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
CONTENT_RULES = {  # what a value looks like -> SQL condition on ``v`` (text, never blank)
    "e-mail addresses": r"regexp_full_match(v, '[^@\s]+@[^@\s]+\.[A-Za-z]{2,}')",
    "phone numbers": (
        r"regexp_full_match(v, '\+?[0-9][0-9 ()./-]{6,}[0-9]') AND length(regexp_replace(v, '[^0-9]', '', 'g')) >= 8 "
        rf"AND NOT regexp_full_match(v, '{ISO_DATE}') AND NOT regexp_full_match(v, '-?[0-9]+(\.[0-9]+)?')"
    ),
    "runs of 8 or more digits (identifiers)": f"regexp_matches(v, '{DIGIT_RUN}')",
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
    staged: str  # temporary table: person_id then the declared columns, typed, in no particular order
    file_order: str  # temporary table (identifier = data-row number, pseudonym): the order the extract must not keep


def row_list(numbers: list[int]) -> str:
    """'rows 4, 9, ...': data-row numbers as messages show them (the first few; counts are given apart)."""
    shown = ", ".join(str(n) for n in numbers[:SHOWN_ROWS])
    return f"rows {shown}" + (", ..." if len(numbers) > SHOWN_ROWS else "")


@dataclass(frozen=True)
class _Loaded:
    table: str
    header: list[str]  # the file's header fields, as read (shown only when declared)
    positions: dict[str, str]  # declared name (and id column) -> internal column name


def _load(con: duckdb.DuckDBPyConnection, path: Path, table: str, dataset: ExternalDataset) -> _Loaded:
    """The file as a temporary table of text columns ``c1..cn`` plus its data-row number."""
    if not path.is_file():
        raise ExternalDataRefused(path, [f"the file does not exist: put it under {path.parent}/ or correct 'file' in the approval"])
    if path.stat().st_size == 0:
        raise ExternalDataRefused(path, ["the file is empty (0 bytes)"])
    reader = (f"read_csv({quote_literal(path)}, header = true, all_varchar = true, auto_detect = true)"
              if path.suffix == ".csv" else f"read_parquet({quote_literal(path)})")
    try:
        header = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {reader})").fetchall()]
        texts = ", ".join(f"{q(c)}::VARCHAR AS c{i + 1}" for i, c in enumerate(header))
        # CREATE TABLE AS keeps the file's order, so rowid + 1 is the data-row number
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {texts} FROM {reader}")
        con.execute(f"ALTER TABLE {table} ADD COLUMN {ROW_NUMBER} BIGINT")
        con.execute(f"UPDATE {table} SET {ROW_NUMBER} = rowid + 1")
    except duckdb.Error as error:  # DuckDB's message may quote a line of the file: never shown
        raise ExternalDataRefused(path, [
            f"the file cannot be read as {path.suffix[1:].upper()} ({error.__class__.__name__}): check its delimiter, "
            "quoting and encoding (UTF-8)"
        ]) from None
    declared = {*dataset.columns, dataset.id_column}
    positions = {name: f"c{i + 1}" for i, name in enumerate(header) if name in declared}
    return _Loaded(table, header, positions)


def _offending_rows(con, table: str, condition: str, params: list | None = None) -> list[int]:
    return [n for (n,) in con.execute(
        f"SELECT {ROW_NUMBER} FROM {table} WHERE {condition} ORDER BY {ROW_NUMBER}", params or []
    ).fetchall()]


def _structure(loaded: _Loaded, name: str, dataset: ExternalDataset) -> list[str]:
    """Missing, undeclared and identifying-by-name columns; a file without its header line said so."""
    problems = []
    if not loaded.positions:
        return [f"the first line names none of the declared columns ({dataset.id_column}, {', '.join(dataset.columns)}): "
                "does the file lack its header line? (header fields that are not declared are never shown: they may be data)"]
    if dataset.id_column not in loaded.positions:
        problems.append(f"the id column {dataset.id_column!r} is missing")
    problems += [f"declared column {c!r} is missing" for c in dataset.columns if c not in loaded.positions]
    for index, field in enumerate(loaded.header):
        if field not in loaded.positions:
            problems.append(f"column {index + 1} of the header is not declared: declare it under external.{name}.columns "
                            "in the approval or remove it from the file (its name is not shown)")
    for column in dataset.columns:
        normalised = re.sub(r"[^a-z0-9_]", "", column.lower().replace("-", "_").replace(" ", "_"))
        if IDENTIFYING_NAMES.search(normalised):
            problems.append(f"column {column!r} looks like a direct identifier by its name: remove it from the file")
    return problems


def _identifying_content(con, loaded: _Loaded, dataset: ExternalDataset, known_ids: list[str], published: str) -> list[str]:
    """Declared columns of every type: identifying formats inside values, own matricules, near-unique keys.

    ``known_ids``: temporary tables with a column ``identifier`` of matricules (the file's
    own valid ones, and at build time the population's): a value holding one is refused.
    Formats are looked for in every row; near-uniqueness is judged on ``published`` (SQL
    over the loaded row: the rows the extract will hold), because rows the linkage drops
    (invalid matricules, persons outside the population) would otherwise dilute a key
    with values the researchers chose and the extract never shows.
    """
    problems = []
    member = " OR ".join(f"run IN (SELECT identifier FROM {t})" for t in known_ids) or "false"
    for column in dataset.columns:
        if column not in loaded.positions:
            continue
        values = f"(SELECT DISTINCT trim({loaded.positions[column]}) AS v FROM {loaded.table} WHERE trim({loaded.positions[column]}) <> '')"
        for what, rule in CONTENT_RULES.items():
            found = con.execute(f"SELECT count(*) FROM {values} WHERE {rule}").fetchone()[0]
            if found:
                problems.append(f"column {column!r} holds {what} in {found} distinct values: remove them from the file")
        runs = f"(SELECT v, unnest(regexp_extract_all(v, '{DIGIT_RUN}')) AS run FROM {values} WHERE regexp_matches(v, '{DIGIT_RUN}'))"
        windows = (f"(SELECT v, substr(run, i, 13) AS w FROM {runs}, range(1, greatest(length(run) - 11, 1)) AS t(i) "
                   "WHERE length(run) >= 13)")
        matricules = con.execute(
            f"SELECT count(DISTINCT v) FROM {windows} WHERE coalesce(lmdp_matricule_ok(TRY_CAST(w AS BIGINT)), false)"
        ).fetchone()[0]
        if matricules:
            problems.append(f"column {column!r} holds a valid matricule inside {matricules} distinct values: remove them")
        own = con.execute(f"SELECT count(DISTINCT v) FROM {runs} WHERE {member}").fetchone()[0]
        if own:
            problems.append(f"column {column!r} holds matricules of this file or of the population in {own} distinct values")
        filled, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT trim({loaded.positions[column]})) FROM {loaded.table} "
            f"WHERE trim({loaded.positions[column]}) <> '' AND ({published})"
        ).fetchone()
        if filled >= NEAR_UNIQUE_MIN_VALUES and distinct >= NEAR_UNIQUE_SHARE * filled:
            problems.append(
                f"column {column!r} has {distinct} distinct values in the {filled} non-blank rows the extract would hold: "
                "a near-unique column is a key "
                "(a respondent number, an exact amount or date) that would let its holders find their respondents; "
                "remove it, or round or band it so that several respondents share each value"
            )
    return problems


def _declared_values(con, loaded: _Loaded, name: str, column: ExternalColumn) -> list[str]:
    sql_type = SQL_TYPES[column.type]
    raw = f"NULLIF(trim({loaded.positions[name]}), '')"
    typed = f"TRY_CAST({raw} AS {sql_type})"
    wrong = _offending_rows(con, loaded.table, f"{raw} IS NOT NULL AND {typed} IS NULL")
    problems = [f"column {name!r}: {len(wrong)} values are not of type {column.type} ({row_list(wrong)})"] if wrong else []
    if column.values is not None:
        allowed = [str(v) for v in column.values]
        outside = _offending_rows(con, loaded.table, f"{typed} IS NOT NULL AND NOT list_contains(?::{sql_type}[], {typed})", [allowed])
        if outside:
            problems.append(f"column {name!r}: {len(outside)} values are not among the declared values {column.values} ({row_list(outside)})")
    return problems


def check_external(
    con: duckdb.DuckDBPyConnection, path: Path, name: str, dataset: ExternalDataset, table: str, population: str | None = None
) -> tuple[_Loaded, list[int]]:
    """Load and check the file into temporary table ``table``; raise ExternalDataRefused naming every problem.

    ``population``: a table of the population's matricules (``identifier``), at build
    time. Returns the loaded file and the data-row numbers of invalid matricules (left
    out, not an error).
    """
    loaded = _load(con, path, table, dataset)
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    problems = ["the file has no rows"] if rows == 0 else []
    problems += _structure(loaded, name, dataset)
    invalid: list[int] = []
    install_macros(con)
    con.execute(f"ALTER TABLE {table} ADD COLUMN {VALID} BOOLEAN DEFAULT false")
    known = [population] if population else []
    published = "true"
    if dataset.id_column in loaded.positions:
        identifier = f"trim({loaded.positions[dataset.id_column]})"
        published = VALID + (f" AND {identifier} IN (SELECT identifier FROM {population})" if population else "")
        well_formed, digits_hold = identifier_checks(identifier, IdentifierFormat.matricule)
        con.execute(f"UPDATE {table} SET {VALID} = coalesce({well_formed} AND {digits_hold}, false)")
        invalid = _offending_rows(con, table, f"NOT {VALID}")
        duplicated = _offending_rows(
            con, table, f"{VALID} AND {identifier} IN (SELECT {identifier} FROM {table} WHERE {VALID} GROUP BY ALL HAVING count(*) > 1)"
        )
        if duplicated:
            problems.append(f"{len(duplicated)} rows share a matricule with another row ({row_list(duplicated)}): one row per person")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_ids AS SELECT DISTINCT {identifier} AS identifier FROM {table} WHERE {VALID}")
        known.append(f"{table}_ids")
    problems += _identifying_content(con, loaded, dataset, known, published)
    problems += [p for c, column in dataset.columns.items() if c in loaded.positions for p in _declared_values(con, loaded, c, column)]
    if problems:
        raise ExternalDataRefused(path, problems)
    return loaded, invalid


def unapproved_file(name: str, dataset: ExternalDataset, sha256: str) -> str | None:
    """Why a file whose checksum is ``sha256`` is not the file the approval names (None when it is)."""
    if sha256 == dataset.sha256:
        return None
    return (f"field external.{name}.sha256: the file is not the one the reviewers approved (its sha256 is {sha256}): a new "
            "file is reviewed like a new approval, and its checksum written there")


def link_external(
    con: duckdb.DuckDBPyConnection, path: Path, name: str, dataset: ExternalDataset, population_map: str
) -> ExternalTable:
    """Check the file and stage its rows of the population: person_id then the declared columns, typed.

    ``population_map(identifier, pseudonym)`` is the build's population with its person
    pseudonyms: joining to it pseudonymises and drops rows outside the population at
    once. The staged table is in no particular order; the builder sorts it.
    """
    raw = f"external_raw_{name}"
    sha256 = sha256_of(path) if path.is_file() else ""
    if sha256 and (unapproved := unapproved_file(name, dataset, sha256)):
        raise ExternalDataRefused(path, [unapproved])
    loaded, invalid = check_external(con, path, name, dataset, raw, population_map)
    if sha256 and sha256_of(path) != sha256:  # replaced between the checksum and the read: what was loaded is unapproved
        raise ExternalDataRefused(path, [f"the file changed while it was read; field external.{name}.sha256 names the "
                                         "approved file: build again once the file in place is the approved one"])
    staged, file_order = f"external_staged_{name}", f"external_order_{name}"
    identifier = f"trim(r.{loaded.positions[dataset.id_column]})"
    columns = ", ".join(f"TRY_CAST(NULLIF(trim(r.{loaded.positions[c]}), '') AS {SQL_TYPES[column.type]}) AS {q(c)}"
                        for c, column in dataset.columns.items())
    con.execute(f"CREATE TEMP TABLE {staged} AS SELECT p.pseudonym AS person_id, {columns} FROM {raw} r "
                f"JOIN {population_map} p ON p.identifier = {identifier} WHERE r.{VALID}")
    con.execute(f"CREATE TEMP TABLE {file_order} AS SELECT lpad(r.{ROW_NUMBER}::VARCHAR, 12, '0') AS identifier, p.pseudonym "
                f"FROM {raw} r JOIN {population_map} p ON p.identifier = {identifier} WHERE r.{VALID}")
    rows_read = con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]
    linked = con.execute(f"SELECT count(*) FROM {staged}").fetchone()[0]
    con.execute(f"DROP TABLE {raw}")
    valid = rows_read - len(invalid)
    linkage = Linkage(rows_read, len(invalid), valid, linked, valid - linked, invalid)
    return ExternalTable(f"external_{name}", path, sha256, linkage, dict(dataset.columns), staged, file_order)


def inspect_external(paths: PlatformPaths, project: str, name: str, dataset: ExternalDataset) -> tuple[int, list[int]]:
    """Check a dataset's file before any build (``lmdp approvals check``): its rows and the invalid matricules' rows.

    Raises ExternalDataRefused exactly as a build would, but for the population
    membership of values, which only a build knows.
    """
    with spill_folder(paths.external) as spill, connect(spill) as con:
        _, invalid = check_external(con, paths.external_file(project, dataset.file), name, dataset, "external_raw")
        return con.execute("SELECT count(*) FROM external_raw").fetchone()[0], invalid

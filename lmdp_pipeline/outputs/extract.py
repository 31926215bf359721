"""A request checked against the project's extract, and the SQL of each table's rows.

The extract documents itself: ``_dictionary`` lists every delivered column with its type,
level and codes, ``_manifest`` its researchers. A request may only name columns the
project received, in the table it names (or in ``individuals`` when it is joined), and
never a pseudonym: grouping, filtering or summing by ``person_id`` would publish one
person per cell. Every problem is reported at once, naming the file and the field.

A checked table becomes a ``ResolvedTable``: quoted column expressions and a filter whose
values are bound parameters, so no text of a request ever becomes SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ..contracts import ContractSet
from ..projects.approval import bounded
from ..projects.plan import PERSON_ID
from ..projects.scope import condition_sql
from ..sql import quote_identifier as q
from .request import DOMINANCE_STATISTICS, MAGNITUDE_STATISTICS, OutputRequest, TableSpec

INDIVIDUALS = "individuals"
INDIVIDUALS_MONTH = "i_month"
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
SOURCE, JOINED = "s", "i"
"""SQL aliases of the table a request reads and of ``individuals`` joined to it."""


@dataclass(frozen=True)
class ExtractColumn:
    table: str
    name: str
    data_type: str
    level: str
    codes: dict[str, str]

    @property
    def pseudonym(self) -> bool:
        return self.level == "pseudonym"

    @property
    def numeric(self) -> bool:
        return self.data_type.startswith((*INTEGER_TYPES, "FLOAT", "DOUBLE", "DECIMAL"))


@dataclass(frozen=True)
class ExtractDescription:
    """What one extract holds: its columns (from ``_dictionary``) and its ``_manifest``."""

    columns: dict[str, dict[str, ExtractColumn]]
    manifest: dict[str, str]

    @property
    def researchers(self) -> list[str]:
        return json.loads(self.manifest.get("researchers", "[]"))

    @property
    def output_threshold(self) -> int | None:
        """Persons per cell that the approval's risk acceptance set for this project's outputs (None: the policy's)."""
        value = self.manifest.get("output_threshold")
        return int(value) if value else None

    @property
    def identity(self) -> dict[str, str]:
        """What identifies the extract a result was computed from (its key and build), for the evidence."""
        return {k: self.manifest.get(k, "") for k in ("key_id", "build_time", "period", "approval_sha256")}


def describe_extract(con: duckdb.DuckDBPyConnection) -> ExtractDescription:
    columns: dict[str, dict[str, ExtractColumn]] = {}
    for table, name, data_type, level, codes in con.execute(
        "SELECT table_name, column_name, data_type, level, codes FROM _dictionary"
    ).fetchall():
        columns.setdefault(table, {})[name] = ExtractColumn(table, name, data_type, level, json.loads(codes) if codes else {})
    manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
    return ExtractDescription(columns, manifest)


@dataclass(frozen=True)
class ResolvedTable:
    """A table of a request, its names checked against the extract, ready to become SQL."""

    name: str
    spec: TableSpec
    month_column: str | None  # the source table's reference month (None: external tables)
    columns: dict[str, ExtractColumn]  # every name the table uses -> its column
    conditions: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    """The filter: (variable, operator, values in the column's type), all to hold; a value's ``not_null`` for magnitudes."""
    structural_zeros: list[dict[str, Any]] = field(default_factory=list)  # variable -> value in the column's type

    @property
    def grouping(self) -> list[str]:
        return self.spec.grouping

    @property
    def statistic(self) -> str:
        return self.spec.statistic

    @property
    def magnitude(self) -> bool:
        return self.spec.statistic in MAGNITUDE_STATISTICS

    @property
    def dominance(self) -> bool:
        return self.spec.statistic in DOMINANCE_STATISTICS

    @property
    def base_key(self) -> tuple[str, bool]:
        """Tables with the same base read the same rows, whatever their filters: one scan serves them all."""
        return self.spec.from_, self.spec.with_individuals

    def expression(self, name: str) -> str:
        column = self.columns[name]
        return f"{JOINED if column.table == INDIVIDUALS and self.spec.from_ != INDIVIDUALS else SOURCE}.{q(name)}"

    def rows_from(self, source_rows: str | None = None) -> str:
        """The FROM clause: the source table (or ``source_rows``, a relation with its columns), joined to individuals
        on person and month if asked."""
        source = f"{source_rows or q(self.spec.from_)} {SOURCE}"
        if not self.spec.with_individuals:
            return source
        if self.month_column is None:  # each person's latest month
            latest = (f"(SELECT * FROM {INDIVIDUALS} QUALIFY row_number() OVER "
                      f"(PARTITION BY {PERSON_ID} ORDER BY {INDIVIDUALS_MONTH} DESC) = 1)")
            return f"{source} JOIN {latest} {JOINED} ON {JOINED}.{PERSON_ID} = {SOURCE}.{PERSON_ID}"
        return (f"{source} JOIN {INDIVIDUALS} {JOINED} ON {JOINED}.{PERSON_ID} = {SOURCE}.{PERSON_ID} "
                f"AND {JOINED}.{INDIVIDUALS_MONTH} = {SOURCE}.{q(self.month_column)}")

    def column_source(self, name: str) -> tuple[str, str]:
        """The extract table a column is read from, and its name there."""
        return self.columns[name].table, name

    def where(self, prefix: str = "f") -> tuple[str, dict[str, Any]]:
        """The rows the table reads as an SQL condition, values as parameters named from ``prefix``."""
        params: dict[str, Any] = {}
        parts = [condition_sql(self.expression(variable), operator, values, f"{prefix}{position}", params)
                 for position, (variable, operator, values) in enumerate(self.conditions)]
        return " AND ".join(parts) or "TRUE", params


def _coerce(column: ExtractColumn, value: Any) -> Any:
    """A request value in the column's type; ValueError (a message naming the value) when it has none."""
    kind = column.data_type
    wrong = ValueError(f"{bounded(repr(value), 40)} is not a {kind} value, the type of {column.name}")
    try:
        if kind.startswith(INTEGER_TYPES):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise wrong
            return int(value)
        if kind.startswith(("FLOAT", "DOUBLE", "DECIMAL")):
            if isinstance(value, bool):
                raise wrong
            return float(value)
        if kind == "DATE":
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if kind == "BOOLEAN":
            if not isinstance(value, bool):
                raise wrong
            return value
    except (TypeError, ValueError):
        raise wrong from None
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    if column.codes and text not in column.codes:
        raise ValueError(f"{bounded(repr(text), 40)} is not a code of {column.name} ({bounded(', '.join(column.codes), 120)})")
    return text


class _Resolver:
    """Looks up every name of one table spec in the extract; collects problems instead of stopping at the first."""

    def __init__(self, description: ExtractDescription, contracts: ContractSet, path: Path, table: str, spec: TableSpec):
        self.description, self.contracts, self.path, self.table, self.spec = description, contracts, path, table, spec
        self.problems: list[str] = []
        self.found: dict[str, ExtractColumn] = {}

    def problem(self, field_name: str, text: str) -> None:
        self.problems.append(f"{self.path}: field tables.{self.table}.{field_name}: {text}")

    def column(self, field_name: str, name: str, role: str) -> ExtractColumn | None:
        source = self.description.columns.get(self.spec.from_, {})
        joined = self.description.columns.get(INDIVIDUALS, {}) if self.spec.with_individuals else {}
        hits = [c for c in (source.get(name), joined.get(name)) if c is not None]
        if len(hits) == 2 and name != PERSON_ID:
            self.problem(field_name, f"{name} is a column of both {self.spec.from_} and individuals: rename it in the approval")
            return None
        if not hits:
            self.problem(field_name, self._unknown(name))
            return None
        column = hits[0]
        if column.pseudonym:
            self.problem(field_name, f"{name} is a pseudonym: a table cannot be {role} by it (each of its values is one "
                                     "person or employer)")
            return None
        self.found[name] = column
        return column

    def _unknown(self, name: str) -> str:
        if name in self.description.columns.get(INDIVIDUALS, {}):
            return f"{name} is a column of individuals, not of {self.spec.from_}: add with_individuals: true to join it"
        registers = [c.register for c in self.contracts if name in {v.name for v in c.variables}]
        if registers:
            return (f"{registers[0]}.{name} exists in the data contracts, but project {self.description.manifest.get('project')} "
                    f"did not receive it in {self.spec.from_}: it is not in the extract's _dictionary")
        return f"unknown variable {bounded(name, 64)}: not a column of {self.spec.from_}" + (
            " or individuals" if self.spec.with_individuals else "")


def resolve_table(description: ExtractDescription, contracts: ContractSet, path: Path, name: str, spec: TableSpec
                  ) -> tuple[ResolvedTable | None, list[str]]:
    """One table of a request checked against the extract: its columns, filter and structural zeros."""
    resolver = _Resolver(description, contracts, path, name, spec)
    columns = description.columns.get(spec.from_)
    if columns is None:
        known = sorted(t for t in description.columns)
        reason = ("the project did not receive it" if spec.from_ in contracts.registers
                  else "no such table")
        return None, [f"{path}: field tables.{name}.from: {spec.from_}: {reason}; the extract has {', '.join(known)}"]
    if PERSON_ID not in columns:
        return None, [f"{path}: field tables.{name}.from: {spec.from_} has no {PERSON_ID}: tables count persons"]
    if spec.with_individuals and INDIVIDUALS not in description.columns:
        resolver.problem("with_individuals", "the project did not receive individuals")
        return None, resolver.problems
    resolver.column("rows", spec.rows, "grouped")
    if spec.columns:
        resolver.column("columns", spec.columns, "grouped")
    if spec.value:
        value = resolver.column("value", spec.value, "summarised")
        if value is not None and not value.numeric:
            resolver.problem("value", f"{spec.value} is {value.data_type}, not a number: {spec.statistic} needs numbers")
    month = contracts[spec.from_].delivery.month_column if spec.from_ in contracts.registers else None
    conditions = []
    for variable, condition in (spec.filter or {}).items():
        column = resolver.column(f"filter.{variable}", variable, "filtered")
        if column is None:
            continue
        try:
            conditions.append((variable, condition.operator, [_coerce(column, v) for v in condition.values]))
        except ValueError as error:
            resolver.problem(f"filter.{variable}", bounded(str(error), 200))
    if spec.statistic in MAGNITUDE_STATISTICS:
        conditions.append((spec.value, "not_null", []))  # a statistic of a value reads the rows that have one
    zeros = []
    for position, zero in enumerate(spec.structural_zeros):
        values = {}
        for variable, value in zero.items():
            column = resolver.found.get(variable)
            if column is None:
                continue
            try:
                values[variable] = _coerce(column, value)
            except ValueError as error:
                resolver.problem(f"structural_zeros[{position}].{variable}", bounded(str(error), 200))
        zeros.append(values)
    if resolver.problems:
        return None, resolver.problems
    return ResolvedTable(name, spec, month, resolver.found, conditions, zeros), []


def resolve_request(request: OutputRequest, description: ExtractDescription, contracts: ContractSet, path: Path
                    ) -> tuple[list[ResolvedTable], list[str]]:
    """Every table of a request checked against the extract, and the requester against its researchers."""
    problems = []
    if request.requester not in description.researchers:
        problems.append(f"{path}: field requester: {request.requester} is not a researcher of project {request.project} "
                        f"(the extract's researchers: {', '.join(description.researchers) or 'none'})")
    tables = []
    for name, spec in request.tables.items():
        table, found = resolve_table(description, contracts, path, name, spec)
        problems += found
        if table is not None:
            tables.append(table)
    return tables, problems

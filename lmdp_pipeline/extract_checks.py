"""Blocking checks on a project's extract, run on the candidate file before it is published.

They run on the build's own connection, after every table is written and before the
file gets its name. Each check derives what the approval allows from the contracts
(codes of the approved level, period, columns, restricted items) and compares it with
what the tables hold, so a bug in how a table was written cannot ship data the project
was not granted. Two facts come from the build itself: the population's pseudonym map
(the population is computed once per build) and the identifier maps, which hold every
identifier the build read; a value in the extract can only come from those rows, so
they are the identified zone a leaked identifier would belong to.

Checks look at the distinct values of each column (collected once, in one temporary
table), not at every cell: a few hundred codes instead of millions of rows. Results
carry counts and names, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from .approvals import Approval
from .contracts import ContractSet, VariableType
from .extract import DOCUMENTATION_TABLES, POPULATION_MAP, delivered_variables, planned_columns
from .sql import quote_identifier as q
from .sql import quote_literal

IDENTIFIER_PATTERN = r"[0-9]{8,13}"
PSEUDONYM_PATTERN = r"[0-9a-f]{16}"


@dataclass
class CheckOutcome:
    name: str
    description: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


CHECKS = {
    "no_direct_identifiers": "No matricule, employer number, provider code, name or address in any cell of a data table.",
    "scope_and_period": "Rows only for the project's population, and only inside its period.",
    "levels_not_finer": (
        "No column finer than approved: codes of the approved level only, truncated dates, banded numbers; "
        "external columns only their declared values."
    ),
    "approved_items_only": "Exactly the approved registers, variables and external datasets; restricted items only when justified.",
    "pseudonyms_unique": "One pseudonym per person: no two persons share a person_id.",
}


VALUES_TABLE = "column_values"


def _collect_values(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Temporary table ``column_values(table_name, column_name, data_type, value)``: every distinct non-null value."""
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND list_contains(?, table_name)",
        [tables],
    ).fetchall()
    selects = [  # distinct first, then cast: casting every row first costs twice as much
        f"SELECT {quote_literal(table)}, {quote_literal(column)}, {quote_literal(data_type)}, v::VARCHAR "
        f"FROM (SELECT DISTINCT {q(column)} AS v FROM {q(table)} WHERE {q(column)} IS NOT NULL)"
        for table, column, data_type in columns
    ]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {VALUES_TABLE} (table_name VARCHAR, column_name VARCHAR, data_type VARCHAR, value VARCHAR)")
    if selects:
        con.execute(f"INSERT INTO {VALUES_TABLE} {' UNION ALL '.join(selects)}")


def persons_per_table(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Distinct person_ids of each data table, from the values the checks collected (no second scan)."""
    return dict(con.execute(f"SELECT table_name, count(*) FROM {VALUES_TABLE} WHERE column_name = 'person_id' GROUP BY ALL").fetchall())


def _values(con, where: str, params: list | None = None) -> list[tuple[str, str, int]]:
    """(table, column, distinct values) for the values matching ``where``, per column."""
    return con.execute(
        f"SELECT table_name, column_name, count(*) FROM {VALUES_TABLE} WHERE {where} GROUP BY ALL ORDER BY ALL", params or []
    ).fetchall()


def _no_direct_identifiers(con, identifier_maps: list[str]) -> list[str]:
    text = "data_type = 'VARCHAR'"
    problems = [f"{t}.{c}: {n} distinct values look like identifiers"
                for t, c, n in _values(con, f"{text} AND regexp_full_match(value, '{IDENTIFIER_PATTERN}')")]
    problems += [f"{t}.{c}: {n} distinct values hold spaces (names, addresses?)"
                 for t, c, n in _values(con, f"{text} AND regexp_matches(value, '\\s')")]
    if identifier_maps:
        zone = " UNION ALL ".join(f"SELECT identifier FROM {m}" for m in identifier_maps)
        problems += [f"{t}.{c}: {n} distinct values are identifiers of the identified zone"
                     for t, c, n in _values(con, f"{text} AND value IN ({zone})")]
    return problems


def _scope_and_period(con, approval: Approval, contracts: ContractSet) -> list[str]:
    problems = []
    for register in approval.variables:
        month = q(contracts[register].delivery.month_column)
        outside = con.execute(
            f"SELECT count(*) FROM {q(register)} WHERE {month} NOT BETWEEN ? AND ?", [approval.period.from_, approval.period.to]
        ).fetchone()[0]
        if outside:
            problems.append(f"{register}: {outside} rows outside the period {approval.period.from_} to {approval.period.to}")
    strangers = _values(con, f"column_name = 'person_id' AND value NOT IN (SELECT pseudonym FROM {POPULATION_MAP})")
    problems += [f"{t}: {n} persons outside the population" for t, _, n in strangers]
    return problems


def _finer_than_level(variable, level) -> tuple[str, list] | None:
    """A condition on ``value`` (text) true for values finer than ``level``, or None when the level is the finest."""
    if level.code_level or variable.codes is not None:
        codes = variable.codes.level(level.code_level) if level.code_level else variable.codes.finest
        return "NOT list_contains(?, value)", [list(codes.labels)]
    if level.truncate == "month":
        return "NOT regexp_full_match(value, '[0-9]{4}-[0-9]{2}')", []
    if level.truncate == "year" or (variable.type is VariableType.month and level.truncate):
        return "NOT regexp_full_match(value, '[0-9]{4}')", []
    if level.band is not None and level.band.width is not None:
        return f"(value::DOUBLE - {level.band.origin:g}) % {level.band.width:g} <> 0", []
    if level.band is not None:
        return "NOT list_contains(?, value::DOUBLE)", [level.band.breaks]
    return None


def _levels_not_finer(con, approval: Approval, contracts: ContractSet) -> list[str]:
    problems = []
    for register, requested in approval.variables.items():
        for variable, level_name in delivered_variables(contracts[register], requested):
            finer = None if variable.identifier is not None else _finer_than_level(variable, variable.level(level_name))
            if finer is None:
                continue
            condition, params = finer
            for _, _, count in _values(con, f"table_name = ? AND column_name = ? AND {condition}", [register, variable.name, *params]):
                problems.append(f"{register}.{variable.name}: {count} distinct values finer than level '{level_name}'")
    for name, dataset in approval.external.items():
        for column, declared in dataset.columns.items():
            if declared.values is None:
                continue
            allowed = [str(v) for v in declared.values]
            for _, _, count in _values(con, "table_name = ? AND column_name = ? AND NOT list_contains(?, value)",
                                       [f"external_{name}", column, allowed]):
                problems.append(f"external_{name}.{column}: {count} distinct values outside the declared values")
    return problems


def _approved_items_only(con, approval: Approval, contracts: ContractSet) -> list[str]:
    expected = {register: [c.name for c in planned_columns(approval, contracts, register)] for register in approval.variables}
    expected |= {f"external_{name}": ["person_id", *dataset.columns] for name, dataset in approval.external.items()}
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    problems = [f"table {t} was not approved" for t in sorted(tables - set(expected) - DOCUMENTATION_TABLES)]
    others = con.execute(
        """SELECT 'view ' || view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT internal
           UNION ALL SELECT DISTINCT 'macro ' || function_name FROM duckdb_functions()
           WHERE database_name = current_database() AND NOT internal ORDER BY 1"""
    ).fetchall()
    problems += [f"{what} was not approved (an extract holds tables only)" for (what,) in others]
    for table, columns in expected.items():
        actual = [c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name = ? ORDER BY column_index", [table]
        ).fetchall()]
        if actual != columns:
            problems.append(f"{table}: columns {sorted(set(actual) ^ set(columns))} differ from the approval")
    for register in approval.variables:
        if contracts[register].protection == "restricted" and register not in approval.justifications:
            problems.append(f"{register}: restricted register delivered without a justification")
    return problems


def _pseudonyms_unique(con) -> list[str]:
    collisions = con.execute(f"SELECT count(*) - count(DISTINCT pseudonym) FROM {POPULATION_MAP}").fetchone()[0]
    problems = [f"{collisions} person pseudonyms are shared by two persons"] if collisions else []
    malformed = _values(con, f"column_name = 'person_id' AND NOT regexp_full_match(value, '{PSEUDONYM_PATTERN}')")
    problems += [f"{t}: {n} person_id values are not pseudonyms" for t, _, n in malformed]
    return problems


def check_extract(con: duckdb.DuckDBPyConnection, approval: Approval, contracts: ContractSet, identifier_maps: list[str]) -> list[CheckOutcome]:
    """Run every check on the candidate extract open on ``con`` (the build's connection)."""
    data_tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
                   if t not in DOCUMENTATION_TABLES]
    _collect_values(con, data_tables)
    results = {
        "no_direct_identifiers": _no_direct_identifiers(con, identifier_maps),
        "scope_and_period": _scope_and_period(con, approval, contracts),
        "levels_not_finer": _levels_not_finer(con, approval, contracts),
        "approved_items_only": _approved_items_only(con, approval, contracts),
        "pseudonyms_unique": _pseudonyms_unique(con),
    }
    return [CheckOutcome(name, CHECKS[name], problems) for name, problems in results.items()]

"""Blocking checks on a project's extract, run on the candidate file before it is published.

Each check re-derives what the approval allows from the contracts and the warehouse
and compares it with what the file holds, so a bug in the builder cannot ship data the
project was not granted. Results carry counts and names, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .approvals import Approval
from .contracts import ContractSet, IdentifierKind, VariableType
from .extract import DOCUMENTATION_TABLES, delivered_variables, planned_columns
from .keys import ProjectKey
from .pseudonyms import build_map
from .scope import population_sql, register_files
from .sql import quote_identifier as q

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
    "levels_not_finer": "No column finer than approved: codes of the approved level only, truncated dates, banded numbers.",
    "approved_items_only": "Exactly the approved registers and variables; restricted items only when justified.",
    "pseudonyms_unique": "One pseudonym per person: no two persons share a person_id.",
}


def _text_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [c for (c,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND data_type = 'VARCHAR'", [table]
    ).fetchall()]


def _no_direct_identifiers(con, approval: Approval, contracts: ContractSet, warehouse: Path) -> list[str]:
    problems = []
    suspects = []  # distinct text values that are not pseudonyms: the only cells an identifier could hide in
    for table in approval.variables:
        for column in _text_columns(con, table):
            found = con.execute(
                f"""SELECT count(*) FILTER (WHERE regexp_full_match({q(column)}, '{IDENTIFIER_PATTERN}')),
                           count(*) FILTER (WHERE regexp_matches({q(column)}, '\\s'))
                    FROM {q(table)}"""
            ).fetchone()
            for count, what in zip(found, ("look like identifiers", "hold spaces (names, addresses?)")):
                if count:
                    problems.append(f"{table}.{column}: {count} cells {what}")
            suspects.append(f"SELECT DISTINCT {q(column)} AS value, '{table}.{column}' AS place FROM {q(table)} "
                            f"WHERE NOT regexp_full_match({q(column)}, '{PSEUDONYM_PATTERN}')")
    if not suspects:
        return problems
    con.execute(f"CREATE TEMP TABLE suspects AS {' UNION ALL '.join(suspects)}")
    # Compared with every identifier of the registers the extract read, in its period.
    for register in sorted({b.register for b in approval.population} | set(approval.variables)):
        contract = contracts[register]
        month = q(contract.delivery.month_column)
        for variable in contract.identifiers:
            hits = con.execute(
                f"""SELECT place, count(*) FROM suspects WHERE value IN (
                        SELECT {q(variable.name)} FROM {register_files(warehouse, register)} WHERE {month} BETWEEN $first AND $last)
                    GROUP BY place""",
                {"first": approval.period.from_, "last": approval.period.to},
            ).fetchall()
            problems += [f"{place}: {count} cells are identifiers of the identified zone ({register}.{variable.name})" for place, count in hits]
    return problems


def _scope_and_period(con, approval: Approval, contracts: ContractSet, warehouse: Path, key: ProjectKey) -> list[str]:
    sql, params = population_sql(approval, contracts, warehouse)
    con.execute(f"CREATE TEMP TABLE population AS {sql}", params)
    build_map(con, "population", "person", IdentifierKind.person, key, "population_map")
    problems = []
    for register in approval.variables:
        contract = contracts[register]
        month = q(contract.delivery.month_column)
        outside = con.execute(
            f"SELECT count(*) FROM {q(register)} WHERE {month} NOT BETWEEN ? AND ?", [approval.period.from_, approval.period.to]
        ).fetchone()[0]
        if outside:
            problems.append(f"{register}: {outside} rows outside the period {approval.period.from_} to {approval.period.to}")
        columns = {c.name for c in planned_columns(approval, contracts, register)}
        if "person_id" in columns:
            strangers = con.execute(
                f"SELECT count(*) FROM {q(register)} WHERE person_id NOT IN (SELECT pseudonym FROM population_map)"
            ).fetchone()[0]
            if strangers:
                problems.append(f"{register}: {strangers} rows of persons outside the population")
    return problems


def _levels_not_finer(con, approval: Approval, contracts: ContractSet) -> list[str]:
    problems = []
    for register, requested in approval.variables.items():
        contract = contracts[register]
        for variable, level_name in delivered_variables(contract, requested):
            if variable.identifier is not None:
                continue
            level, column = variable.level(level_name), q(variable.name)
            if level.code_level or variable.codes is not None:
                codes = list((variable.codes.level(level.code_level) if level.code_level else variable.codes.finest).labels)
                bad = con.execute(f"SELECT count(*) FROM {q(register)} WHERE {column} IS NOT NULL AND NOT list_contains(?, {column})", [codes]).fetchone()[0]
            elif level.truncate == "month":
                bad = con.execute(f"SELECT count(*) FROM {q(register)} WHERE NOT regexp_full_match({column}, '[0-9]{{4}}-[0-9]{{2}}')").fetchone()[0]
            elif level.truncate == "year" or (variable.type is VariableType.month and level.truncate):
                bad = con.execute(f"SELECT count(*) FROM {q(register)} WHERE {column} NOT BETWEEN 1850 AND 2200").fetchone()[0]
            elif level.band is not None and level.band.width is not None:
                bad = con.execute(
                    f"SELECT count(*) FROM {q(register)} WHERE ({column} - {level.band.origin:g}) % {level.band.width:g} <> 0"
                ).fetchone()[0]
            elif level.band is not None:
                bad = con.execute(f"SELECT count(*) FROM {q(register)} WHERE NOT list_contains(?, {column}::DOUBLE)", [level.band.breaks]).fetchone()[0]
            else:
                continue  # delivered as is: the finest level was approved
            if bad:
                problems.append(f"{register}.{variable.name}: {bad} values finer than level '{level_name}'")
    return problems


def _approved_items_only(con, approval: Approval, contracts: ContractSet) -> list[str]:
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    problems = [f"table {t} was not approved" for t in sorted(tables - set(approval.variables) - DOCUMENTATION_TABLES - {
        f"external_{name}" for name in approval.external})]
    for register in approval.variables:
        expected = [c.name for c in planned_columns(approval, contracts, register)]
        actual = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [register]).fetchall()]
        if actual != expected:
            problems.append(f"{register}: columns {sorted(set(actual) ^ set(expected))} differ from the approval")
        if contracts[register].protection == "restricted" and register not in approval.justifications:
            problems.append(f"{register}: restricted register delivered without a justification")
    return problems


def _pseudonyms_unique(con, approval: Approval) -> list[str]:
    collisions = con.execute("SELECT count(*) - count(DISTINCT pseudonym) FROM population_map").fetchone()[0]
    problems = [f"{collisions} person pseudonyms are shared by two persons"] if collisions else []
    for register in approval.variables:
        if "person_id" in [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [register]).fetchall()]:
            malformed = con.execute(f"SELECT count(*) FROM {q(register)} WHERE NOT regexp_full_match(person_id, '[0-9a-f]{{16}}')").fetchone()[0]
            if malformed:
                problems.append(f"{register}: {malformed} person_id values are not pseudonyms")
    return problems


def check_extract(path: Path, approval: Approval, contracts: ContractSet, warehouse: Path, key: ProjectKey) -> list[CheckOutcome]:
    """Run every check on an extract file (read only)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        results = {
            "no_direct_identifiers": _no_direct_identifiers(con, approval, contracts, warehouse),
            "scope_and_period": _scope_and_period(con, approval, contracts, warehouse, key),
            "levels_not_finer": _levels_not_finer(con, approval, contracts),
            "approved_items_only": _approved_items_only(con, approval, contracts),
            "pseudonyms_unique": _pseudonyms_unique(con, approval),
        }
    finally:
        con.close()
    return [CheckOutcome(name, CHECKS[name], problems) for name, problems in results.items()]

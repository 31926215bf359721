"""A project's population and period, compiled to SQL over the warehouse.

Column names come from the contracts (checked by ``rules.check_approval`` and
quoted); every value from an approval is bound as a statement parameter, so no text of
a spec ever becomes SQL. The population is the persons with at least one row in the
period matching every condition of a block, in every block.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ..contracts import Contract, ContractSet, Variable, VariableType
from ..paths import warehouse_glob, warehouse_months
from ..period import Period
from ..spill import connect, spill_folder
from ..sql import quote_identifier as q
from ..sql import quote_literal
from .approval import Approval, Condition
from .rules import registers_read


def register_files(warehouse: Path, register: str) -> str:
    return f"read_parquet({quote_literal(warehouse_glob(warehouse, register))})"


def _coerce(variable: Variable, value: Any) -> Any:
    """A spec value in the column's type (``rules`` checked it has one): codes are text even when YAML read them as numbers."""
    if variable.type is VariableType.date:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if variable.type is VariableType.integer:
        return int(value)
    if variable.type is VariableType.decimal:
        return float(value)
    return str(value)


def condition_sql(expression: str, operator: str, values: list[Any], name: str, params: dict[str, Any]) -> str:
    """One condition (in, not_in, between, eq; not_null) on ``expression`` as SQL; its values become parameters named after ``name``."""
    if operator == "not_null":
        return f"{expression} IS NOT NULL"
    if operator in ("in", "not_in"):
        params[name] = values
        test = f"list_contains(${name}, {expression})"
        return test if operator == "in" else f"NOT {test}"
    if operator == "between":
        params[f"{name}_low"], params[f"{name}_high"] = values
        return f"{expression} BETWEEN ${name}_low AND ${name}_high"
    params[name] = values[0]
    return f"{expression} = ${name}"


def _condition_sql(variable: Variable, condition: Condition, name: str, params: dict[str, Any]) -> str:
    return condition_sql(q(variable.name), condition.operator, [_coerce(variable, v) for v in condition.values], name, params)


def _period_sql(contract: Contract) -> str:
    return f"{q(contract.delivery.month_column)} BETWEEN $period_from AND $period_to"


def population_sql(approval: Approval, contracts: ContractSet, warehouse: Path, period: Period) -> tuple[str, dict[str, Any]]:
    """SQL for the distinct matricules (column ``person``) of the population, and its parameters."""
    params: dict[str, Any] = period_parameters(period)
    blocks = []
    for index, block in enumerate(approval.population):
        contract = contracts[block.register]
        conditions = [_period_sql(contract)] + [
            _condition_sql(contract.variable(column), condition, f"b{index}_{position}", params)
            for position, (column, condition) in enumerate(block.where.items())
        ]
        blocks.append(
            f"SELECT DISTINCT {q(contract.person_identifier.name)} AS person "
            f"FROM {register_files(warehouse, block.register)} WHERE {' AND '.join(conditions)}"
        )
    return " INTERSECT ".join(f"({b})" for b in blocks), params


def period_parameters(period: Period) -> dict[str, str]:
    """The resolved period as statement parameters (a rolling period's end is a month by now)."""
    return {"period_from": str(period.first), "period_to": str(period.last)}


def register_rows_sql(contract: Contract, warehouse: Path, population: str | None, columns: list[str]) -> str:
    """``columns`` of one register's rows inside the period and, where it names persons, for the population only.

    ``population`` is a table ``(identifier, pseudonym)`` of the population's matricules;
    the join that filters to it also brings the person's pseudonym as
    ``person_pseudonym``, so the matricule need not leave this query. Registers without
    a person column (enterprises) keep every row of the period.
    """
    files, period = register_files(warehouse, contract.register), _period_sql(contract)
    selected = ", ".join(f"r.{q(c)}" for c in columns)
    if population is None:
        return f"SELECT {selected} FROM {files} r WHERE {period}"
    person = q(contract.person_identifier.name)
    return (
        f"SELECT p.pseudonym AS person_pseudonym, {selected} FROM {files} r "
        f"JOIN {population} p ON p.identifier = r.{person} WHERE {period}"
    )


def months_held(warehouse: Path, approval: Approval, contracts: ContractSet) -> dict[str, list[str]]:
    """The warehouse months of every known register the approval reads."""
    return {r: warehouse_months(warehouse, r) for r in registers_read(approval) if r in contracts.registers}


def estimate(approval: Approval, contracts: ContractSet, warehouse: Path, period: Period) -> tuple[int, dict[str, int]]:
    """Persons in the population and rows per requested register, counted in the warehouse."""
    sql, params = population_sql(approval, contracts, warehouse, period)
    with spill_folder(warehouse) as spill, connect(spill) as con:
        # no key is needed to count: the population table gets empty pseudonyms
        con.execute(f"CREATE TEMP TABLE population AS SELECT person AS identifier, NULL AS pseudonym FROM ({sql})", params)
        persons = con.execute("SELECT count(*) FROM population").fetchone()[0]
        rows = {}
        for register in approval.variables:
            contract = contracts[register]
            population = "population" if contract.has_persons else None
            sql = register_rows_sql(contract, warehouse, population, [contract.delivery.month_column])
            rows[register] = con.execute(f"SELECT count(*) FROM ({sql})", period_parameters(period)).fetchone()[0]
    return persons, rows

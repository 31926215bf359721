"""The rows the risk measures read, as SQL: ``unit, month, q0, q1, ...`` with every quasi-identifier at its approved level.

Three sources give the same shape, so one set of measures serves all:

- ``extract_rows``: a table of the candidate extract, as it will be published (or the
  staged rows of an external dataset in a preview);
- ``warehouse_rows`` with a population table: the project's rows read from the
  warehouse, for the preview ``lmdp approvals check`` gives before any key exists;
- ``warehouse_rows`` without one: the whole register over the period, whose
  combinations counted per month are the population frequencies.

Levels come from ``projects.granularity`` (the build's own expressions) and the rows
from ``projects.scope`` (the build's own selection), so a preview measures what the
build will deliver. A unit is a person (or an employer for ``enterprises``); in the
warehouse it is the matricule, which never leaves the connection's temporary tables.
"""

from __future__ import annotations

from pathlib import Path

from ..contracts import ContractSet
from ..projects.granularity import level_expression
from ..projects.scope import register_rows_sql
from ..sql import quote_identifier as q
from ..sql import quote_literal
from .model import EMPLOYER_ID, ENTERPRISES, NO_MONTH, MeasuredTable, Sensitive

def pseudonym_unit(column: str) -> str:
    """A pseudonym (16 hex digits, 64 bits) as the integer it spells: joins and counts on integers are twice as fast.

    A value that is not a pseudonym becomes NULL; ``pseudonyms_unique`` refuses such an extract anyway.
    """
    return f"TRY_CAST('0x' || {column} AS UBIGINT)"


def identifier_unit(column: str) -> str:
    """A matricule or employer number (fixed-length digits, checked at ingestion) as an integer: one per identifier."""
    return f"TRY_CAST({column} AS BIGINT)"


def _columns(values: list[str]) -> str:
    return ", ".join(f"{value} AS q{i}" for i, value in enumerate(values))


def extract_rows(table: MeasuredTable, relation: str | None = None) -> str:
    """The rows of ``table`` as delivered in the extract, or in ``relation``: an external dataset staged by a preview,
    whose person_id is already the preview's integer."""
    values = [f"t.{q(qi.column)}" for qi in table.own]
    join = ""
    if table.linked:
        join = f"LEFT JOIN {q(ENTERPRISES)} e ON e.{EMPLOYER_ID} = t.{EMPLOYER_ID} AND e.e_month = t.{q(table.month)}"
        values += [f"e.{q(qi.column)}" for qi in table.linked]
    month = f"t.{q(table.month)}" if table.month else quote_literal(NO_MONTH)
    if relation:
        unit = f"t.{q(table.unit)}"
    else:  # enterprises without employer_id: each row is one employer in one month
        unit = pseudonym_unit(f"t.{q(table.unit)}") if table.unit else "t.rowid"
    return f"SELECT {unit} AS unit, {month} AS month, {_columns(values)} FROM {q(relation or table.name)} t {join}"


def warehouse_rows(table: MeasuredTable, contracts: ContractSet, warehouse: Path, population: str | None) -> str:
    """The rows of ``table`` read from the warehouse: the project's (``population``: its ``(identifier, pseudonym)``
    table, the pseudonym becoming the unit), or every row of the register (``population`` None). Period parameters:
    ``scope.period_parameters``."""
    contract = contracts[table.register]
    unit = contract.person_identifier if contract.has_persons else contract.identifiers[0]
    needed = [table.month, *(qi.column for qi in table.own), *([table.employer] if table.linked else [])]
    chosen = population if contract.has_persons else None
    rows = register_rows_sql(contract, warehouse, chosen, needed if chosen else [unit.name, *needed])
    values = [level_expression(qi.variable, qi.level, f"r.{q(qi.column)}") for qi in table.own]
    join = ""
    if table.linked:
        employers = contracts[ENTERPRISES]
        linked = [qi.column for qi in table.linked]
        join = (f"LEFT JOIN ({register_rows_sql(employers, warehouse, None, ['e_employer', 'e_month', *linked])}) e "
                f"ON e.e_employer = r.{q(table.employer)} AND e.e_month = r.{q(table.month)}")
        values += [level_expression(qi.variable, qi.level, f"e.{q(qi.column)}") for qi in table.linked]
    unit_value = "r.person_pseudonym" if chosen else identifier_unit(f"r.{q(unit.name)}")
    if table.unit is None:  # an extract without employer_id: each employer-month is a unit of its own, as in extract_rows
        unit_value = f"hash({unit_value}, r.{q(table.month)})"
    return f"SELECT {unit_value} AS unit, r.{q(table.month)} AS month, {_columns(values)} FROM ({rows}) r {join}"


def sensitive_extract_rows(sensitive: Sensitive) -> str:
    """``unit, month, value`` of a restricted variable in the candidate extract."""
    return (f"SELECT {pseudonym_unit('person_id')} AS unit, {q(sensitive.month)} AS month, {q(sensitive.column)}::VARCHAR AS value "
            f"FROM {q(sensitive.table)} WHERE {q(sensitive.column)} IS NOT NULL")


def sensitive_warehouse_rows(sensitive: Sensitive, contracts: ContractSet, warehouse: Path, population: str) -> str:
    """The same from the warehouse, for the project's population (``population`` as in ``warehouse_rows``)."""
    rows = register_rows_sql(contracts[sensitive.table], warehouse, population, [sensitive.month, sensitive.column])
    value = level_expression(sensitive.variable, sensitive.level, f"r.{q(sensitive.column)}")
    return (f"SELECT r.person_pseudonym AS unit, r.{q(sensitive.month)} AS month, {value}::VARCHAR AS value "
            f"FROM ({rows}) r WHERE r.{q(sensitive.column)} IS NOT NULL")

"""Type a delivery as its contract says and compute the row flags validation looks at.

Everything here is DuckDB SQL generated from the contract, so no register has code of
its own. Values that do not parse become NULL with a ``_type_<column>`` flag set to
false; ``_unique_key`` and ``_ref_<column>`` flags carry the rules that need the whole
file or another register (a chunked validator could not see them).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..contracts import Contract, ContractSet, Variable, VariableType
from ..sql import quote_identifier as q
from ..sql import quote_literal

ROW = "_row"
UNIQUE_KEY = "_unique_key"

TYPE_PATTERNS = {
    VariableType.integer: r"-?[0-9]{1,18}",
    VariableType.decimal: r"-?[0-9]{1,15}(\.[0-9]{1,2})?",
    VariableType.date: r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    VariableType.month: r"[0-9]{4}-(0[1-9]|1[0-2])",
}
SQL_TYPES = {
    VariableType.integer: "BIGINT",
    VariableType.decimal: "DECIMAL(18, 2)",
    VariableType.date: "DATE",
}


def type_flag(variable: Variable) -> str:
    return f"_type_{variable.name}"


def reference_flag(column: str) -> str:
    return f"_ref_{column}"


def sql_type(variable: Variable) -> str:
    return SQL_TYPES.get(variable.type, "VARCHAR")


def _typed_expression(variable: Variable) -> str:
    raw = f"NULLIF({q(variable.name)}, '')"
    pattern = TYPE_PATTERNS.get(variable.type)
    if pattern is None:
        return raw
    matches = f"regexp_full_match({raw}, '{pattern}')"
    if variable.type is VariableType.date:
        return f"CASE WHEN {matches} THEN TRY_STRPTIME({raw}, '%Y-%m-%d')::DATE END"
    if variable.type is VariableType.month:
        return f"CASE WHEN {matches} THEN {raw} END"
    return f"CASE WHEN {matches} THEN TRY_CAST({raw} AS {sql_type(variable)}) END"


def typed_columns_sql(contract: Contract) -> str:
    """The raw text columns parsed to their contract types, plus one type flag per parsed column."""
    parts = [ROW]
    for variable in contract.variables:
        typed = _typed_expression(variable)
        parts.append(f"{typed} AS {q(variable.name)}")
        if variable.type in TYPE_PATTERNS:
            raw = f"NULLIF({q(variable.name)}, '')"
            parts.append(f"({raw} IS NULL OR {typed} IS NOT NULL) AS {q(type_flag(variable))}")
    return ", ".join(parts)


def warehouse_file(warehouse: Path, register: str, month: str) -> Path:
    return warehouse / register / f"{register}_{month}.parquet"


def flags_sql(contract: Contract, contracts: ContractSet, warehouse: Path, month: str) -> tuple[str, list[str]]:
    """SELECT over ``typed`` adding the key and reference flags.

    Returns the SQL and the references whose target is not in the warehouse yet (their
    flags are false on every non-empty row).
    """
    key = ", ".join(q(c) for c in contract.key)
    parts = ["typed.*", f"count(*) OVER (PARTITION BY {key}) = 1 AS {UNIQUE_KEY}"]
    joins = []
    missing = []
    for index, ref in enumerate(contract.quality.references):
        target = warehouse_file(warehouse, ref.register, month) if ref.same_month else None
        column = q(ref.column)
        flag = q(reference_flag(ref.column))
        if target is not None and not target.exists():
            missing.append(f"{ref.register} {month}")
            parts.append(f"{column} IS NULL AS {flag}")
            continue
        pattern = target if target is not None else warehouse / ref.register / "*.parquet"
        source = f"read_parquet({quote_literal(pattern)})"
        alias = f"ref{index}"
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT {q(ref.to_column)} AS id FROM {source}) {alias} ON typed.{column} = {alias}.id"
        )
        parts.append(f"(typed.{column} IS NULL OR {alias}.id IS NOT NULL) AS {flag}")
    return f"SELECT {', '.join(parts)} FROM typed {' '.join(joins)}", missing


def stage(
    con: duckdb.DuckDBPyConnection,
    scan: str,
    contract: Contract,
    contracts: ContractSet,
    warehouse: Path,
    month: str,
) -> list[str]:
    """Create table ``staged`` (in the private in-memory database): typed columns, flags, file row numbers. Direct identifiers are never selected."""
    variables = ", ".join(q(v.name) for v in contract.variables)
    con.execute(f"CREATE OR REPLACE TABLE raw AS SELECT row_number() OVER () AS {ROW}, {variables} FROM {scan}")
    con.execute(f"CREATE OR REPLACE VIEW typed AS SELECT {typed_columns_sql(contract)} FROM raw")
    select, missing = flags_sql(contract, contracts, warehouse, month)
    con.execute(f"CREATE OR REPLACE TABLE staged AS {select}")
    con.execute("DROP TABLE raw")
    return missing

"""Write one register-month as the source agency would: a UTF-8 CSV with a header.

DuckDB formats and writes the file (dates as YYYY-MM-DD, amounts with two decimals,
empty for missing), sorted by the register's key so the bytes are the same on every
run. The file appears under its final name only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from ..contracts import Contract, VariableType
from ..sql import quote_identifier


def _select_expression(contract: Contract, column: str) -> str:
    name = quote_identifier(column)
    if column in {v.name for v in contract.variables}:
        if contract.variable(column).type is VariableType.decimal:
            return f"CAST(round({name}, 2) AS DECIMAL(18, 2)) AS {name}"
    return name


def write_delivery(con: duckdb.DuckDBPyConnection, contract: Contract, columns: dict, path: Path) -> int:
    """Write ``columns`` (arrays named as in the contract) to ``path``; return the row count."""
    missing = [c for c in contract.delivered_columns if c not in columns]
    if missing:
        raise ValueError(f"{contract.register}: generator produced no column {missing}")
    table = pa.table({name: columns[name] for name in contract.delivered_columns})
    select = ", ".join(_select_expression(contract, c) for c in contract.delivered_columns)
    order = ", ".join(quote_identifier(c) for c in contract.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    con.register("delivery_rows", table)
    try:
        con.execute(
            f"COPY (SELECT {select} FROM delivery_rows ORDER BY {order}) TO ? (FORMAT csv, HEADER, DELIMITER ',')",
            [str(partial)],
        )
    finally:
        con.unregister("delivery_rows")
    os.replace(partial, path)
    return table.num_rows

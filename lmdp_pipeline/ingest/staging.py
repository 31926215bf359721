"""Type a delivery as its contract says and evaluate its row rules, in one DuckDB statement.

Everything here is SQL generated from the contract, so no register has code of its
own. Values that do not parse become NULL. Every row rule (type, required value,
identifier format and check digits, unique key, reference) is a boolean expression;
their results are packed into bit flags (``_flags_<n>``, one bit per rule), which the
Great Expectations suite then checks with one expectation per word: evaluating twenty
rules on a million rows costs one pandas pass, not twenty. Rules that need the whole
file (unique key) or another register (references) can only be computed here anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..contracts import Contract, Variable, VariableType
from ..identifiers import identifier_checks, install_macros
from ..paths import warehouse_file
from ..sql import quote_identifier as q
from ..sql import quote_literal
from .report import Check

ROW = "_row"
BITS_PER_WORD = 62

TYPE_PATTERNS = {  # only where a cast alone would accept more than the contract's format
    VariableType.date: r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    VariableType.month: r"[0-9]{4}-(0[1-9]|1[0-2])",
}
PARSED_TYPES = (VariableType.integer, VariableType.decimal, VariableType.date, VariableType.month)
SQL_TYPES = {
    VariableType.integer: "BIGINT",
    VariableType.decimal: "DECIMAL(18, 2)",
    VariableType.date: "DATE",
}


@dataclass(frozen=True)
class RowRule:
    """One row-level contract rule: ``passes`` is SQL over the typed row, true when obeyed."""

    check: Check
    rule: str
    column: str | None
    hint: str
    passes: str

    def bit(self, index: int) -> tuple[int, int]:
        """(word, bit) of the rule's flag."""
        return divmod(index, BITS_PER_WORD)


def flag_word(word: int) -> str:
    return f"_flags_{word}"


def sql_type(variable: Variable) -> str:
    return SQL_TYPES.get(variable.type, "VARCHAR")


def _raw(variable: Variable) -> str:
    return f"NULLIF({q(variable.name)}, '')"


def _typed(variable: Variable) -> str:
    raw = _raw(variable)
    if variable.type is VariableType.date:
        return f"CASE WHEN regexp_full_match({raw}, '{TYPE_PATTERNS[variable.type]}') THEN TRY_STRPTIME({raw}, '%Y-%m-%d')::DATE END"
    if variable.type is VariableType.month:
        return f"CASE WHEN regexp_full_match({raw}, '{TYPE_PATTERNS[variable.type]}') THEN {raw} END"
    if variable.type in PARSED_TYPES:
        return f"TRY_CAST({raw} AS {sql_type(variable)})"
    return raw


def _type_ok(variable: Variable) -> str:
    return f"_type_ok_{variable.name}"


def _well_formed(variable: Variable) -> str:
    return f"_well_formed_{variable.name}"


def _checked(variable: Variable) -> str:
    return f"_checked_{variable.name}"


def _identifier_columns(variable: Variable) -> list[str]:
    well_formed, checked = identifier_checks(_raw(variable), variable.identifier_format)
    return [f"{well_formed} AS {q(_well_formed(variable))}", f"{checked} AS {q(_checked(variable))}"]


def row_rules(contract: Contract) -> list[RowRule]:
    """Every row rule of the contract, in a stable order (the order fixes the bits)."""
    rules: list[RowRule] = []
    for v in contract.variables:
        name = q(v.name)
        parsed = v.type in PARSED_TYPES
        if parsed:
            rules.append(RowRule(Check.values, f"type {v.type}", v.name, f"values must be {v.format}", q(_type_ok(v))))
        if not v.nullable:
            unparsed = f" OR NOT {q(_type_ok(v))}" if parsed else ""  # already reported as a type error
            rules.append(RowRule(Check.values, "required", v.name, "every row needs a value", f"{name} IS NOT NULL{unparsed}"))
        if v.identifier_format is not None:
            well_formed, checked = q(_well_formed(v)), q(_checked(v))
            rules.append(RowRule(
                Check.identifiers, f"{v.identifier_format} format", v.name, v.format, f"{name} IS NULL OR {well_formed}"
            ))
            rules.append(RowRule(
                Check.identifiers, f"{v.identifier_format} check digits", v.name, "a digit is mistyped or transposed",
                f"{name} IS NULL OR NOT {well_formed} OR {checked}",
            ))
    key = "+".join(contract.key)
    rules.append(RowRule(Check.integrity, f"unique key {key}", None, "rows repeat the same key", "_unique_key"))
    for index, ref in enumerate(contract.quality.references):
        rules.append(RowRule(
            Check.integrity, f"exists in {ref.register}.{ref.to_column}", ref.column,
            f"the {ref.register} delivery of the month must hold every {ref.column}",
            f"_reference_ok_{index}",
        ))
    return rules


def _flags(rules: list[RowRule]) -> list[str]:
    words: dict[int, list[str]] = {}
    for index, rule in enumerate(rules):
        word, bit = rule.bit(index)
        words.setdefault(word, []).append(f"(CASE WHEN coalesce(({rule.passes}), false) THEN 0 ELSE {1 << bit} END)")
    return [f"({' | '.join(terms)})::BIGINT AS {flag_word(word)}" for word, terms in sorted(words.items())]


def _referenced_ids(ref, warehouse: Path, month: str) -> tuple[str, bool]:
    """SQL for the distinct ids of a referenced register, and whether its month is in the warehouse."""
    target = warehouse_file(warehouse, ref.register, month) if ref.same_month else None
    if target is not None and not target.exists():
        return "SELECT NULL::VARCHAR AS id WHERE false", False
    pattern = target if target is not None else warehouse / ref.register / "*.parquet"
    return f"SELECT DISTINCT {q(ref.to_column)} AS id FROM read_parquet({quote_literal(pattern)})", True


def _whole_file_rules(con: duckdb.DuckDBPyConnection, contract: Contract, warehouse: Path, month: str):
    """Columns and joins for the unique key and the references, and the missing referenced months.

    A cheap aggregate over the loaded file decides first whether any row breaks the
    rule; only then is the rule joined back to every row to flag the offenders. Clean
    deliveries, the usual case, skip the joins.
    """
    key = ", ".join(q(c) for c in contract.key)
    duplicated = con.execute(f"SELECT count(*) FROM (SELECT {key} FROM source GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    if duplicated:
        same_key = " AND ".join(f"typed.{q(c)} IS NOT DISTINCT FROM duplicates.{q(c)}" for c in contract.key)
        columns = [f"duplicates.{q(contract.key[0])} IS NULL AS _unique_key"]
        joins = [f"LEFT JOIN (SELECT {key} FROM typed GROUP BY ALL HAVING count(*) > 1) duplicates ON {same_key}"]
    else:
        columns, joins = ["true AS _unique_key"], []
    missing = []
    for index, ref in enumerate(contract.quality.references):
        ids, present = _referenced_ids(ref, warehouse, month)
        if not present:
            missing.append(f"{ref.register} {month}")
        column = q(ref.column)
        unknown = con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT NULLIF({column}, '') AS id FROM source) s "
            f"WHERE s.id IS NOT NULL AND s.id NOT IN (SELECT id FROM ({ids}))"
        ).fetchone()[0]
        if unknown:
            columns.append(f"(typed.{column} IS NULL OR ref{index}.id IS NOT NULL) AS _reference_ok_{index}")
            joins.append(f"LEFT JOIN ({ids}) ref{index} ON typed.{column} = ref{index}.id")
        else:
            columns.append(f"true AS _reference_ok_{index}")
    return columns, joins, missing


def stage(con: duckdb.DuckDBPyConnection, scan: str, contract: Contract, warehouse: Path, month: str) -> tuple[list[RowRule], list[str]]:
    """Create table ``staged`` (typed variables, ``_row``, flag words) in the private in-memory database.

    Direct identifiers are never selected from the file, so they never reach memory
    beyond the CSV reader. ``_row`` is the data row number in the file (the loaded
    table keeps file order, so its rowid is free where a window function would
    serialise the scan). Returns the row rules (bit order) and missing referenced months.
    """
    install_macros(con)
    rules = row_rules(contract)
    variables = ", ".join(q(v.name) for v in contract.variables)
    typed = ", ".join(
        [f"rowid + 1 AS {ROW}"]
        + [f"{_typed(v)} AS {q(v.name)}" for v in contract.variables]
        + [f"({_raw(v)} IS NULL OR {_typed(v)} IS NOT NULL) AS {q(_type_ok(v))}" for v in contract.variables if v.type in PARSED_TYPES]
        + [column for v in contract.identifiers for column in _identifier_columns(v)]
    )
    con.execute(f"CREATE OR REPLACE TABLE source AS SELECT {variables} FROM {scan}")
    whole_file, joins, missing = _whole_file_rules(con, contract, warehouse, month)
    con.execute(f"""
        CREATE OR REPLACE TABLE staged AS
        WITH typed AS MATERIALIZED (SELECT {typed} FROM source),
             checked AS (SELECT typed.*, {', '.join(whole_file)} FROM typed {' '.join(joins)})
        SELECT {ROW}, {variables}, {', '.join(_flags(rules))} FROM checked
    """)
    con.execute("DROP TABLE source")
    return rules, missing

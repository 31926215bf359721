"""Differencing: a new cell against every cell already released for the project with the same grouping.

Two published cells with the same grouping (the same variables at the same values,
totals included: a one-way table's cells are a two-way table's row totals) but drawn
from different filters or populations tell, by subtraction, about the persons in one and
not the other. When the two populations differ by between 1 and threshold-1 persons,
the new cell is disclosive by differencing and is suppressed, with the earlier release
named in the checker's evidence. "Already released" is every table of the project's
ledger and every earlier table of the same request.

The persons behind an earlier cell are not stored: its table's definition is, with a
fingerprint of each published cell (persons, and the XOR of the MD5 of their
pseudonyms). Earlier tables on the same rows as the new one (same source table, same
join) are recomputed from the extract in one scan, every filter a bit of a mask, and
the symmetric difference of each pair of cells counted exactly. A recomputed cell whose
fingerprint is not the released one (the extract was rebuilt since, with other months
or persons), an earlier table on other rows, and cells pooled into ``(other
categories)`` are compared by their fingerprints alone: the same persons, or counts at
least the threshold apart, are safe; anything else is treated as disclosive. That is
stricter than needed, never looser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ..projects.approval import RESERVED_PREFIX
from ..projects.scope import condition_sql
from ..sql import quote_identifier as q
from .extract import SOURCE, ResolvedTable
from .rules import DIFFERENCING, SUPPRESSING
from .tables import OTHER, Cell, TableCells, raw_label_sql
from ..projects.plan import PERSON_ID

MASK_BITS = 64
RESERVED = f"{RESERVED_PREFIX}mask"
"""The masks' column names beside a table's own columns (``lmdp_`` names are the platform's, never a researcher's)."""

CellKey = tuple[tuple[str, str], ...]
"""A cell's grouping, as sorted (variable, label) pairs: the same in every table that has that cell."""


def cell_key(labels: dict[str, str]) -> CellKey:
    return tuple(sorted(labels.items()))


@dataclass
class EarlierTable:
    """A table already released (or published earlier in the same request): what differencing compares with."""

    request: str
    name: str
    released: str  # when (ISO time), for the evidence
    resolved: ResolvedTable | None  # its definition on the current extract; None when it no longer resolves
    cells: dict[CellKey, tuple[int, int]] = field(default_factory=dict)  # published cells: persons, fingerprint

    @property
    def label(self) -> str:
        return f"table {self.name} of request {self.request} (released {self.released})"


def published_cells(cells: TableCells, published: list[Cell]) -> dict[CellKey, tuple[int, int]]:
    return {cell_key(c.key(cells.table)): (c.persons, c.fingerprint) for c in published}


@dataclass(frozen=True)
class _ColumnTest:
    """What the filters say about one column: per 64 tables, an SQL mask (bit i: table i's conditions on it hold)."""

    expression: str  # the column, as the rows' FROM clause names it
    masks: list[str]
    join: str = ""  # the join that brings the masks, for masks read from a temporary table

    @property
    def on_source(self) -> bool:
        return self.expression.startswith(f"{SOURCE}.")


def _column_tests(con: duckdb.DuckDBPyConnection, tables: list[ResolvedTable], chunks: int) -> list[_ColumnTest]:
    """Every column some table's filter tests, with the masks of its values (``_ColumnTest``).

    A column's conditions are evaluated on its distinct values only (a temporary table
    of values and masks, joined to the rows), never on every row; a column whose only
    condition is having a value (a statistic's value variable) is tested inline. A row's
    mask is the AND of its columns' masks: bit i is set when table i keeps the row.
    """
    by_column: dict[str, list[tuple[int, ResolvedTable, str, str, list]]] = {}
    for index, table in enumerate(tables):
        for variable, operator, values in table.conditions:
            by_column.setdefault(table.expression(variable), []).append((index, table, variable, operator, values))
    ranges = [range(c * MASK_BITS, min(len(tables), (c + 1) * MASK_BITS)) for c in range(chunks)]
    tests = []
    for number, (expression, conditions) in enumerate(by_column.items()):
        if all(operator == "not_null" for _, _, _, operator, _ in conditions):
            needing = {index for index, *_ in conditions}
            tests.append(_ColumnTest(expression, [
                f"(CASE WHEN {expression} IS NULL THEN {sum(1 << (i % MASK_BITS) for i in indices if i not in needing)} "
                f"ELSE {sum(1 << (i % MASK_BITS) for i in indices)} END)::UBIGINT" for indices in ranges]))
            continue
        params: dict = {}
        holds: dict[int, list[str]] = {}
        for position, (index, _, _, operator, values) in enumerate(conditions):
            holds.setdefault(index, []).append(condition_sql("v", operator, values, f"c{position}", params))
        masks = [" | ".join(f"((CASE WHEN {' AND '.join(holds.get(i, ['TRUE']))} THEN 1 ELSE 0 END)::UBIGINT << {i % MASK_BITS})"
                            for i in indices) + f" AS m{c}" for c, indices in enumerate(ranges)]
        source, column = conditions[0][1].column_source(conditions[0][2])
        name = f"filter_bits_{number}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT v, {', '.join(masks)} "
                    f"FROM (SELECT DISTINCT {q(column)} AS v FROM {q(source)})", params)
        tests.append(_ColumnTest(expression, [f"b{number}.m{c}" for c in range(chunks)],
                                 f"JOIN {name} b{number} ON b{number}.v IS NOT DISTINCT FROM {expression}"))
    return tests


def _recompute(con: duckdb.DuckDBPyConnection, table: ResolvedTable, earlier: list[ResolvedTable]) -> dict:
    """For every cell of ``table`` and every earlier table on the same rows: (persons, fingerprint, symmetric difference).

    One scan of the rows; bit 0 of the masks is the new table's filter, bit k the k-th
    earlier table's (``_column_tests``). The source table's own columns are tested first,
    so that the join to individuals only sees rows some table keeps. Persons are then
    aggregated per cell (totals through GROUPING SETS) with their masks OR-ed, and per
    distinct (cell, mask) pattern, so the per-table counts are taken over a few patterns
    rather than over persons.
    """
    spec, tables = table.spec, [table, *earlier]
    two_way = spec.columns is not None
    chunks = range((len(tables) + MASK_BITS - 1) // MASK_BITS)
    tests = _column_tests(con, tables, len(chunks))
    every = [(1 << min(MASK_BITS, len(tables) - c * MASK_BITS)) - 1 for c in chunks]  # rows no filter tests: every table's

    def combine(found: list[_ColumnTest], first: str | None, alias: str) -> str:
        return ", ".join(" & ".join([*([f"{first}{c}"] if first else []), *(t.masks[c] for t in found)] or [f"{every[c]}::UBIGINT"])
                         + f" AS {alias}{c}" for c in chunks)

    own, joined = [t for t in tests if t.on_source], [t for t in tests if not t.on_source]
    source_rows = (f"(SELECT * FROM (SELECT {SOURCE}.*, {combine(own, None, RESERVED)} FROM {q(spec.from_)} {SOURCE} "
                   f"{' '.join(t.join for t in own)}) WHERE {' OR '.join(f'{RESERVED}{c} <> 0' for c in chunks)})")
    names = [f"m{c}" for c in chunks]
    keys = f"{raw_label_sql(table.expression(spec.rows))} AS ka" + (
        f", {raw_label_sql(table.expression(spec.columns))} AS kb" if two_way else "")
    sets = "(ka, kb, person_id), (ka, person_id), (kb, person_id), (person_id)" if two_way else "(ka, person_id), (person_id)"
    grouping = "GROUPING(ka) AS ga, GROUPING(kb) AS gb, ka, kb" if two_way else "GROUPING(ka) AS ga, 1 AS gb, ka, NULL AS kb"
    bit = "((CASE k // 64 " + " ".join(f"WHEN {c} THEN m{c}" for c in chunks) + " END) >> (k % 64)::UBIGINT) & 1::UBIGINT = 1"
    new = "m0 & 1::UBIGINT = 1"
    found = con.execute(f"""
        WITH marked AS (
            SELECT {SOURCE}.{PERSON_ID} AS person_id, {keys}, {combine(joined, f"{SOURCE}.{RESERVED}", "m")}
            FROM {table.rows_from(source_rows)} {" ".join(t.join for t in joined)}),
        per_person AS (
            SELECT {grouping}, person_id, {", ".join(f"bit_or({n}) AS {n}" for n in names)}
            FROM marked WHERE {" OR ".join(f"{n} <> 0" for n in names)} GROUP BY GROUPING SETS ({sets})),
        patterns AS (
            SELECT ga, gb, ka, kb, {", ".join(names)}, count(*) AS n, bit_xor(md5_number_lower(person_id)) AS h
            FROM per_person GROUP BY ALL)
        SELECT ga, gb, ka, kb, k, sum(n) FILTER ({bit}), bit_xor(h) FILTER ({bit}),
               coalesce(sum(n) FILTER ({new}), 0), coalesce(sum(n) FILTER (({bit}) AND {new}), 0)
        FROM patterns, range(1, {len(tables)}) t(k)
        GROUP BY ga, gb, ka, kb, k HAVING sum(n) FILTER ({bit}) > 0
    """).fetchall()
    return {(None if ga else ka, None if gb else kb, k - 1): (int(n), int(h), int(n) + int(mine) - 2 * int(both))
            for ga, gb, ka, kb, k, n, h, mine, both in found}


def difference(con: duckdb.DuckDBPyConnection, cells: TableCells, earlier: list[EarlierTable], threshold: int) -> int:
    """Mark the cells of ``cells`` disclosive by differencing with ``earlier``; return how many earlier cells were compared."""
    table = cells.table
    candidates = {cell_key(c.key(table)): c for c in cells.cells.values() if not set(c.reasons) & set(SUPPRESSING)}
    matching = [(e, [k for k in e.cells if k in candidates]) for e in earlier]
    matching = [(e, keys) for e, keys in matching if keys]
    exact = [e for e, _ in matching if e.resolved is not None and e.resolved.base_key == table.base_key]
    recomputed = _recompute(con, table, [e.resolved for e in exact]) if exact else {}
    index = {id(e): k for k, e in enumerate(exact)}
    compared = 0
    for earlier_table, keys in matching:
        for key in keys:
            compared += 1
            cell = candidates[key]
            persons, fingerprint = earlier_table.cells[key]
            position = (cell.row, cell.col if table.spec.columns else None, index.get(id(earlier_table)))
            again = recomputed.get(position) if OTHER not in dict(key).values() else None
            if again is not None and again[:2] == (persons, fingerprint):
                if 1 <= again[2] < threshold:
                    _flag(cell, earlier_table, f"its persons differ from that cell's by between 1 and {threshold - 1}")
            elif (cell.persons, cell.fingerprint) != (persons, fingerprint) and abs(cell.persons - persons) < threshold:
                _flag(cell, earlier_table, f"its persons are not that cell's and the two counts are less than {threshold} apart "
                                           "(the exact difference is not computed: the tables read different rows, or the "
                                           "earlier one no longer recomputes from this extract)")
    return compared


def _flag(cell: Cell, earlier: EarlierTable, why: str) -> None:
    if DIFFERENCING not in cell.reasons:
        cell.reasons.append(DIFFERENCING)
    cell.notes.append(f"differencing with the same cell of {earlier.label}: {why}")

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

from .extract import SOURCE, ResolvedTable
from .rules import DIFFERENCING, SUPPRESSING
from .tables import OTHER, Cell, TableCells, raw_label_sql
from ..projects.plan import PERSON_ID

MASK_BITS = 64

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


def _recompute(con: duckdb.DuckDBPyConnection, table: ResolvedTable, earlier: list[ResolvedTable]) -> dict:
    """For every cell of ``table`` and every earlier table on the same rows: (persons, fingerprint, symmetric difference).

    One scan of the rows any of the filters keeps; each earlier filter is one bit of a
    mask. Persons are aggregated per cell (totals through GROUPING SETS) with their masks
    OR-ed, then per distinct (cell, mask) pattern, so the per-table counts are taken over
    a few patterns rather than over persons.
    """
    spec = table.spec
    two_way = spec.columns is not None
    chunks = range((len(earlier) + MASK_BITS - 1) // MASK_BITS)
    masks = [
        " | ".join(f"((CASE WHEN {e.rows_condition()} THEN 1 ELSE 0 END)::UBIGINT << {k % MASK_BITS})"
                   for k, e in enumerate(earlier) if k // MASK_BITS == chunk)
        for chunk in chunks
    ]
    params = {k: v for e in [table, *earlier] for k, v in e.params.items()}
    keys = f"{raw_label_sql(table.expression(spec.rows))} AS ka" + (
        f", {raw_label_sql(table.expression(spec.columns))} AS kb" if two_way else "")
    sets = "(ka, kb, person_id), (ka, person_id), (kb, person_id), (person_id)" if two_way else "(ka, person_id), (person_id)"
    grouping = "GROUPING(ka) AS ga, GROUPING(kb) AS gb, ka, kb" if two_way else "GROUPING(ka) AS ga, 1 AS gb, ka, NULL AS kb"
    mask_names = [f"m{chunk}" for chunk in chunks]
    bit = "((CASE k // 64 " + " ".join(f"WHEN {c} THEN m{c}" for c in chunks) + " END) >> (k % 64)::UBIGINT) & 1::UBIGINT = 1"
    found = con.execute(f"""
        WITH scan AS (
            SELECT {SOURCE}.{PERSON_ID} AS person_id, {keys}, ({table.rows_condition()}) AS f_new,
                   {", ".join(f"{m} AS {n}" for m, n in zip(masks, mask_names))}
            FROM {table.rows_from()}
            WHERE ({table.rows_condition()}) OR {" OR ".join(f"({e.rows_condition()})" for e in earlier)}),
        per_person AS (
            SELECT {grouping}, person_id, bool_or(f_new) AS f_new, {", ".join(f"bit_or({n}) AS {n}" for n in mask_names)}
            FROM scan GROUP BY GROUPING SETS ({sets})),
        patterns AS (
            SELECT ga, gb, ka, kb, f_new, {", ".join(mask_names)}, count(*) AS n, bit_xor(md5_number_lower(person_id)) AS h
            FROM per_person GROUP BY ALL)
        SELECT ga, gb, ka, kb, k, sum(n) FILTER ({bit}), bit_xor(h) FILTER ({bit}),
               coalesce(sum(n) FILTER (({bit}) <> f_new), 0)
        FROM patterns, range({len(earlier)}) t(k)
        GROUP BY ga, gb, ka, kb, k HAVING sum(n) FILTER ({bit}) > 0
    """, params).fetchall()
    return {(None if ga else ka, None if gb else kb, k): (int(n), int(h), int(diff)) for ga, gb, ka, kb, k, n, h, diff in found}


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

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

Everything is SQL: the earlier cells are read by DuckDB from the ledger's files (and,
for the tables before it in the request, from lists), matched with the new cells on
their grouping whatever the earlier table's orientation, joined to the recomputation,
and only the disclosive pairs come back to Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ..projects.approval import RESERVED_PREFIX
from ..projects.plan import PERSON_ID
from ..sql import quote_identifier as q
from .extract import SOURCE, ResolvedTable
from .rules import DIFFERENCING, SUPPRESSING
from .tables import OTHER, Cell, TableCells, raw_label_sql

MASK_BITS = 64
RESERVED = f"{RESERVED_PREFIX}mask"
"""The masks' column names beside a table's own columns (``lmdp_`` names are the platform's, never a researcher's)."""

LEDGER_COLUMNS = {
    "request": "VARCHAR", "released": "VARCHAR",
    "tables": 'STRUCT(name VARCHAR, "rows" VARCHAR, "columns" VARCHAR, '
              'cells STRUCT("row" VARCHAR[], col VARCHAR[], persons BIGINT[], fingerprint VARCHAR[]))[]',
}
"""What DuckDB reads of a ledger record (``ledger.ReleasedTable.as_record`` writes it)."""


def published_cells(cells: TableCells, published: list[Cell]) -> dict[str, list]:
    """A table's published cells as the ledger keeps them: row and column labels (None: a total), persons, fingerprints."""
    return {"row": [c.row for c in published], "col": [c.col for c in published], "persons": [c.persons for c in published],
            "fingerprint": [f"{c.fingerprint:016x}" for c in published]}


@dataclass
class EarlierTable:
    """A table already released (or published earlier in the same request): what differencing compares with."""

    request: str
    name: str
    released: str  # when (ISO time), for the evidence
    resolved: ResolvedTable | None  # its definition on the current extract; None when it no longer resolves
    rows: str
    columns: str | None
    source: str  # the extract table it reads (``from``)
    ledger: tuple[str, int] | None = None  # its ledger file and position there: DuckDB reads its cells from it
    cells: dict[str, list] | None = None  # or its cells (``published_cells``), for a table earlier in the same request

    @property
    def label(self) -> str:
        return f"table {self.name} of request {self.request} (released {self.released})"


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

    A column's conditions are evaluated on its distinct values only, never on every row,
    and as data rather than as SQL: every table's conditions on the column are rows of a
    temporary table (``in``, ``eq`` and ``not_in`` one row per value, ``between`` one row),
    so the statement that finds, for each value, the tables whose conditions fail is the
    same whatever the number of tables. A column whose only condition is having a value
    (a statistic's value variable) is tested inline. A row's mask is the AND of its
    columns' masks: bit i is set when table i keeps the row.
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
        _, table, variable, _, _ = conditions[0]
        source, column = table.column_source(variable)
        kind = table.columns[variable].data_type
        name = f"filter_bits_{number}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_conditions (idx INTEGER, op VARCHAR, a {kind}, b {kind})")
        rows = []
        for index, _, _, operator, values in conditions:
            if operator == "between":
                rows.append((index, operator, values[0], values[1]))
            elif operator == "not_null":
                rows.append((index, operator, None, None))
            else:
                rows += [(index, "in" if operator == "eq" else operator, value, None) for value in values]
        columns = list(zip(*rows))  # one statement for all of them: executemany is one statement per row
        con.execute(f"INSERT INTO {name}_conditions SELECT unnest($idx), unnest($op), unnest($a), unnest($b)",
                    {"idx": list(columns[0]), "op": list(columns[1]), "a": list(columns[2]), "b": list(columns[3])})
        every = ", ".join(f"{sum(1 << (i % MASK_BITS) for i in indices)}::UBIGINT - coalesce(bit_or(1::UBIGINT << (f.idx % "
                          f"{MASK_BITS})) FILTER (f.idx // {MASK_BITS} = {c}), 0) AS m{c}" for c, indices in enumerate(ranges))
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {name} AS
            WITH vals AS (SELECT DISTINCT {q(column)} AS v FROM {q(source)}),
            conditions AS (SELECT * FROM {name}_conditions),
            fails AS (  -- (value, table) where one of the table's conditions on the column does not hold
                SELECT vals.v, t.idx FROM vals, (SELECT DISTINCT idx FROM conditions WHERE op = 'in') t
                WHERE NOT EXISTS (SELECT 1 FROM conditions c WHERE c.op = 'in' AND c.idx = t.idx AND c.a = vals.v)
                UNION ALL
                SELECT vals.v, c.idx FROM vals, conditions c
                WHERE (c.op = 'not_in' AND (vals.v IS NULL OR c.a = vals.v))
                   OR (c.op = 'between' AND (vals.v IS NULL OR NOT vals.v BETWEEN c.a AND c.b))
                   OR (c.op = 'not_null' AND vals.v IS NULL))
            SELECT vals.v, {every} FROM vals LEFT JOIN fails f ON f.v IS NOT DISTINCT FROM vals.v GROUP BY vals.v
        """)
        tests.append(_ColumnTest(expression, [f"b{number}.m{c}" for c in range(chunks)],
                                 f"JOIN {name} b{number} ON b{number}.v IS NOT DISTINCT FROM {expression}"))
    return tests


def _recompute(con: duckdb.DuckDBPyConnection, table: ResolvedTable, earlier: list[ResolvedTable], numbers: list[int]) -> None:
    """Temporary table ``recomputed(r, c, k, n, h, diff)``: for every cell of ``table`` and every earlier table on the
    same rows (``numbers``: their indices among all earlier tables), that table's persons and fingerprint in the cell
    and the symmetric difference with the new table's.

    One scan of the rows; bit 0 of the masks is the new table's filter, bit k the k-th
    earlier table's (``_column_tests``). The source table's own columns are tested first,
    so that the join to individuals only sees rows some table keeps. Persons are then
    aggregated per cell (totals through GROUPING SETS) with their masks OR-ed, and per
    distinct (cell, mask) pattern, so the per-table counts are taken over a few patterns
    rather than over persons.

    For a sum, mean or median the persons that differ also include those both tables keep
    with rows only one of them keeps: their contributions differ, and the two cells give
    the difference away (a review of 2026-12-01 read one job's hours from two sums whose
    filters kept the same persons). Per person, the OR of each row's mask XOR-ed with its
    new-table bit marks the earlier tables that keep another set of their rows.
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
    needed = {PERSON_ID, *([q(table.month_column)] if table.month_column else []),
              *(table.expression(v).split(".", 1)[1] for v in table.grouping if table.expression(v).startswith(f"{SOURCE}."))}
    source_rows = (f"(SELECT * FROM (SELECT {', '.join(f'{SOURCE}.{c}' for c in sorted(needed))}, {combine(own, None, RESERVED)} "
                   f"FROM {q(spec.from_)} {SOURCE} {' '.join(t.join for t in own)}) "
                   f"WHERE {' OR '.join(f'{RESERVED}{c} <> 0' for c in chunks)})")
    names = [f"m{c}" for c in chunks]
    keys = f"{raw_label_sql(table.expression(spec.rows))} AS ka" + (
        f", {raw_label_sql(table.expression(spec.columns))} AS kb" if two_way else "")
    sets = "(ka, kb, person_id), (ka, person_id), (kb, person_id), (person_id)" if two_way else "(ka, person_id), (person_id)"
    grouping = "GROUPING(ka) AS ga, GROUPING(kb) AS gb, ka, kb" if two_way else "GROUPING(ka) AS ga, 1 AS gb, ka, NULL AS kb"

    def bit(masks: str) -> str:
        """SQL: bit k of the ``masks`` (``m``: the tables that keep a pattern; ``d``: those that keep other rows)."""
        return f"((CASE k // 64 {' '.join(f'WHEN {c} THEN {masks}{c}' for c in chunks)} END) >> (k % 64)::UBIGINT) & 1::UBIGINT = 1"

    new = "m0 & 1::UBIGINT = 1"
    every_bit = f"CASE WHEN {new} THEN {(1 << MASK_BITS) - 1}::UBIGINT ELSE 0::UBIGINT END"
    rows_apart = [f"d{c}" for c in chunks]  # per person: the tables that keep other rows of theirs than the new one
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE recomputed AS
        WITH marked AS (
            SELECT {SOURCE}.{PERSON_ID} AS person_id, {keys}, {combine(joined, f"{SOURCE}.{RESERVED}", "m")}
            FROM {table.rows_from(source_rows)} {" ".join(t.join for t in joined)}),
        per_person AS (
            SELECT {grouping}, person_id, {", ".join(f"bit_or({n}) AS {n}" for n in names)},
                   {", ".join(f"bit_or(xor(m{c}, {every_bit})) AS d{c}" for c in chunks)}
            FROM marked WHERE {" OR ".join(f"{n} <> 0" for n in names)} GROUP BY GROUPING SETS ({sets})),
        patterns AS (
            SELECT ga, gb, ka, kb, {", ".join(names)}, {", ".join(rows_apart)}, count(*) AS n,
                   bit_xor(md5_number_lower(person_id)) AS h
            FROM per_person GROUP BY ALL),
        mine AS (SELECT ga, gb, ka, kb, sum(n) FILTER ({new}) AS n FROM patterns GROUP BY ALL),
        counted AS (  -- each pattern once per earlier table that keeps it
            SELECT ga, gb, ka, kb, k, sum(n) AS n, bit_xor(h) AS h, coalesce(sum(n) FILTER ({new}), 0) AS shared,
                   coalesce(sum(n) FILTER ({new} AND {bit("d")}), 0) AS shared_apart
            FROM patterns, range(1, {len(tables)}) t(k) WHERE {bit("m")}
            GROUP BY ga, gb, ka, kb, k)
        SELECT CASE WHEN c.ga = 1 THEN NULL ELSE c.ka END AS r, CASE WHEN c.gb = 1 THEN NULL ELSE c.kb END AS c,
               $numbers[c.k] AS k, c.n, c.h,
               c.n + coalesce(m.n, 0) - 2 * c.shared + {"c.shared_apart" if table.magnitude else "0"} AS diff
        FROM counted c JOIN mine m ON m.ga = c.ga AND m.gb = c.gb AND m.ka IS NOT DISTINCT FROM c.ka
                                  AND m.kb IS NOT DISTINCT FROM c.kb
    """, {"numbers": numbers})


def _earlier_cells(con: duckdb.DuckDBPyConnection, earlier: list[EarlierTable]) -> None:
    """Temporary table ``earlier_cells``: every published cell of every earlier table, with its table's index ``k``."""
    con.execute("CREATE OR REPLACE TEMP TABLE earlier_cells (k INTEGER, rows_var VARCHAR, cols_var VARCHAR, "
                "row_label VARCHAR, col_label VARCHAR, persons BIGINT, fingerprint UBIGINT)")
    from_ledger = [(k, e.ledger) for k, e in enumerate(earlier) if e.ledger is not None]
    if from_ledger:
        con.execute("""
            INSERT INTO earlier_cells
            SELECT k, rows_var, cols_var, row_label, col_label, persons, ('0x' || fingerprint)::UBIGINT FROM (
                SELECT m.k, t."rows" AS rows_var, t."columns" AS cols_var, unnest(t.cells."row") AS row_label,
                       unnest(t.cells.col) AS col_label, unnest(t.cells.persons) AS persons,
                       unnest(t.cells.fingerprint) AS fingerprint
                FROM (SELECT filename, unnest(tables) AS t, generate_subscripts(tables, 1) AS position
                      FROM read_json($files, filename = true, columns = $columns)) x
                JOIN (SELECT unnest($ks) AS k, unnest($files_of) AS file, unnest($positions) AS position) m
                  ON m.file = x.filename AND m.position = x.position)
        """, {"files": sorted({file for _, (file, _) in from_ledger}), "columns": LEDGER_COLUMNS,
              "ks": [k for k, _ in from_ledger], "files_of": [file for _, (file, _) in from_ledger],
              "positions": [position for _, (_, position) in from_ledger]})
    for k, e in enumerate(earlier):
        if e.cells is not None and e.cells["row"]:
            con.execute("INSERT INTO earlier_cells SELECT $k, $rows, $cols, unnest($row), unnest($col), unnest($persons), "
                        "('0x' || unnest($fingerprint))::UBIGINT", {"k": k, "rows": e.rows, "cols": e.columns, **e.cells})


def difference(con: duckdb.DuckDBPyConnection, cells: TableCells, earlier: list[EarlierTable], threshold: int) -> int:
    """Mark the cells of ``cells`` disclosive by differencing with ``earlier``; return how many earlier cells were compared."""
    table = cells.table
    if not earlier:
        return 0
    candidates = [c for c in cells.cells.values() if not set(c.reasons) & set(SUPPRESSING)]
    _earlier_cells(con, earlier)
    exact = [k for k, e in enumerate(earlier) if e.resolved is not None and e.resolved.base_key == table.base_key]
    if exact:
        _recompute(con, table, [earlier[k].resolved for k in exact], exact)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE recomputed (r VARCHAR, c VARCHAR, k INTEGER, n BIGINT, h UBIGINT, diff BIGINT)")
    new = published_cells(cells, candidates)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE compared AS
        WITH new_cells AS (SELECT unnest($row) AS r, unnest($col) AS c, unnest($persons) AS n,
                                  ('0x' || unnest($fingerprint))::UBIGINT AS h),
        aligned AS (  -- each earlier cell's labels for the new table's row and column variables
            SELECT k, persons, fingerprint,
                   CASE WHEN rows_var = $rows THEN row_label WHEN cols_var = $rows THEN col_label END AS r,
                   CASE WHEN $cols IS NULL THEN NULL WHEN rows_var = $cols THEN row_label WHEN cols_var = $cols THEN col_label END AS c,
                   (row_label IS NOT NULL AND rows_var IS DISTINCT FROM $rows AND rows_var IS DISTINCT FROM $cols)
                   OR (col_label IS NOT NULL AND cols_var IS DISTINCT FROM $rows AND cols_var IS DISTINCT FROM $cols) AS elsewhere
            FROM earlier_cells)
        SELECT nc.r, nc.c, nc.n AS n_new, nc.h AS h_new, a.k, a.persons AS n_then, a.fingerprint AS h_then, x.diff,
               coalesce(x.n = a.persons AND x.h = a.fingerprint, false)
               AND '{OTHER}' NOT IN (coalesce(nc.r, ''), coalesce(nc.c, '')) AS exact
        FROM new_cells nc
        JOIN aligned a ON a.r IS NOT DISTINCT FROM nc.r AND a.c IS NOT DISTINCT FROM nc.c AND NOT a.elsewhere
        LEFT JOIN recomputed x ON x.r IS NOT DISTINCT FROM nc.r AND x.c IS NOT DISTINCT FROM nc.c AND x.k = a.k
    """, {**new, "rows": table.spec.rows, "cols": table.spec.columns})
    flagged = con.execute("""
        SELECT r, c, k, exact FROM compared
        WHERE (exact AND diff BETWEEN 1 AND $t - 1)
           OR (NOT exact AND (n_new <> n_then OR h_new <> h_then) AND abs(n_new - n_then) < $t)
    """, {"t": threshold}).fetchall()
    by_key = {(c.row, c.col): c for c in candidates}
    for r, c, k, exact in flagged:
        why = (f"its persons differ from that cell's by between 1 and {threshold - 1}" if exact else
               f"its persons are not that cell's and the two counts are less than {threshold} apart (the exact difference "
               "is not computed: the tables read different rows, or the earlier one no longer recomputes from this extract)")
        _flag(by_key[(r, c)], earlier[k], why)
    return con.execute("SELECT count(*) FROM compared").fetchone()[0]


def _flag(cell: Cell, earlier: EarlierTable, why: str) -> None:
    if DIFFERENCING not in cell.reasons:
        cell.reasons.append(DIFFERENCING)
    cell.notes.append(f"differencing with the same cell of {earlier.label}: {why}")

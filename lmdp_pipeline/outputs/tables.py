"""A requested table computed from the extract's microdata, in DuckDB: its cells, totals and evidence.

The rows a table reads (its source, joined to ``individuals`` if asked, filtered) become
one temporary table; everything else is SQL over it:

- **Categories.** A table's rows and columns are the values present in its rows. A value
  held by fewer persons than the threshold is pooled into ``(other categories)`` before
  anything is counted: its label alone would tell that someone in the population has it
  (a birth year of 1921, a working week of 97 hours). Missing values are a category
  of their own, ``(missing value)``.
- **Cells.** Every cell and every total (row totals, column totals, the grand total) in
  one ``GROUPING SETS`` query over one row per person and cell: persons (pseudonyms, not
  rows), observations, the sum of values, the largest contributions of single persons
  (each person's values in the cell summed: a person is one contributor), whether a
  value is negative, and a fingerprint of the persons (XOR of the MD5 of their
  pseudonyms) that later releases are compared with. Medians come from the rows.

Totals are computed from the microdata, not added up from cells: a person in two cells
counts once in their total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..sql import quote_identifier as q
from .extract import SOURCE, ResolvedTable
from ..projects.plan import PERSON_ID

OTHER = "(other categories)"
MISSING = "(missing value)"
TOTAL = "Total"


class TableRefused(ValueError):
    """A table that cannot be made: its filter selects no row, or a value reads like the totals' label."""


@dataclass
class Cell:
    """One cell of a table or one of its totals (``row``/``col`` None: the total over that variable)."""

    row: str | None
    col: str | None
    persons: int = 0
    observations: int = 0
    total: float | None = None  # the sum of the value variable
    top: list[float] = field(default_factory=list)  # the largest contributions of single persons, largest first
    negative: bool = False
    fingerprint: int = 0
    median: float | None = None
    reasons: list[str] = field(default_factory=list)  # why the cell is not published as it is (rules, differencing)
    secondary: bool = False  # suppressed only so that no suppressed cell can be recomputed
    notes: list[str] = field(default_factory=list)  # for the output checker: earlier releases compared, declarations

    @property
    def is_total(self) -> bool:
        return self.row is None or self.col is None

    def key(self, table: ResolvedTable) -> dict[str, str]:
        """The cell's grouping: variable -> label, totals leaving their variable out."""
        labels = {table.spec.rows: self.row}
        if table.spec.columns:
            labels[table.spec.columns] = self.col
        return {k: v for k, v in labels.items() if v is not None}


@dataclass
class TableCells:
    """A computed table: its ordered categories and every cell, totals included."""

    table: ResolvedTable
    rows: list[str]
    cols: list[str] | None  # None: a one-way table
    cells: dict[tuple[str | None, str | None], Cell]
    pooled: dict[str, int] = field(default_factory=dict)  # variable -> values pooled into (other categories)

    def ordered(self) -> list[Cell]:
        """Cells in reading order: each row then its total, the total row last."""
        cols = [*self.cols, None] if self.cols is not None else [None]
        return [self.cells[(r, c)] for r in [*self.rows, None] for c in cols]

    def position(self, cell: Cell) -> tuple[int, int]:
        """The cell's (row, column) in the published grid, totals last (a one-way table has one column)."""
        row = len(self.rows) if cell.row is None else self.rows.index(cell.row)
        if self.cols is None:
            return row, 0
        return row, len(self.cols) if cell.col is None else self.cols.index(cell.col)


def _label_sql(expression: str, pooled: str | None, null_pooled: bool) -> str:
    """A value's category label: pooled, missing, or its text."""
    missing = f"'{OTHER}'" if null_pooled else f"'{MISSING}'"
    pooled_test = f"WHEN list_contains(${pooled}, {expression}) THEN '{OTHER}' " if pooled else ""
    return f"CASE WHEN {expression} IS NULL THEN {missing} {pooled_test}ELSE CAST({expression} AS VARCHAR) END"


def raw_label_sql(expression: str) -> str:
    """A value's label before pooling (what ``differencing`` compares across tables)."""
    return _label_sql(expression, None, False)


def create_base(con: duckdb.DuckDBPyConnection, table: ResolvedTable, name: str) -> int:
    """The rows a table reads, as temporary table ``name(person_id, r, c, v)``; returns the row count."""
    spec = table.spec
    column = table.expression(spec.columns) if spec.columns else "NULL"
    value = table.expression(spec.value) if spec.value else "NULL::DOUBLE"
    where, params = table.where()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {q(name)} AS SELECT {SOURCE}.{PERSON_ID} AS person_id, "
        f"{table.expression(spec.rows)} AS r, {column} AS c, {value} AS v "
        f"FROM {table.rows_from()} WHERE {where}",
        params,
    )
    return con.execute(f"SELECT count(*) FROM {q(name)}").fetchone()[0]


def _categories(con, base: str, axis: str, threshold: int) -> tuple[list[str], list[Any], bool]:
    """An axis's labels in order, the values pooled into (other categories), and whether missing values are."""
    found = con.execute(
        f"SELECT {axis}, CAST({axis} AS VARCHAR), count(DISTINCT person_id) FROM {q(base)} GROUP BY {axis} "
        f"ORDER BY {axis} IS NULL, {axis}"
    ).fetchall()
    pooled = [value for value, _, persons in found if persons < threshold and value is not None]
    null_pooled = any(value is None and persons < threshold for value, _, persons in found)
    labels = [MISSING if value is None else text for value, text, persons in found if persons >= threshold]
    if TOTAL in labels:
        raise TableRefused(f"{'rows' if axis == 'r' else 'columns'}: a value reads {TOTAL!r}, the label of the table's totals: "
                           "filter it out or recode it")
    return labels + ([OTHER] if pooled or null_pooled else []), pooled, null_pooled


def compute_cells(con: duckdb.DuckDBPyConnection, table: ResolvedTable, base: str, threshold: int, top_n: int) -> TableCells:
    """Every cell and total of ``table`` from its rows in ``base`` (made by ``create_base``)."""
    if con.execute(f"SELECT count(*) FROM {q(base)}").fetchone()[0] == 0:
        raise TableRefused(f"filter: the filter selects no row of {table.spec.from_}: nothing to tabulate")
    two_way = table.spec.columns is not None
    rows, pooled_rows, null_rows = _categories(con, base, "r", threshold)
    params: dict[str, Any] = {"pooled_r": pooled_rows, "top": max(top_n, 2)}
    row_label = _label_sql("r", "pooled_r", null_rows)
    pooled = {table.spec.rows: len(pooled_rows) + null_rows}
    cols = None
    if two_way:
        cols, pooled_cols, null_cols = _categories(con, base, "c", threshold)
        params["pooled_c"] = pooled_cols
        col_label = _label_sql("c", "pooled_c", null_cols)
        pooled[table.spec.columns] = len(pooled_cols) + null_cols
        sets = "(r, c, person_id), (r, person_id), (c, person_id), (person_id)"
    else:
        col_label, sets = "NULL::VARCHAR", "(r, c, person_id), (c, person_id)"  # c is constant: its total is never taken
    found = con.execute(f"""
        WITH labelled AS (SELECT person_id, {row_label} AS r, {col_label} AS c, v FROM {q(base)}),
        per_person AS (SELECT r, c, person_id, sum(v) AS contribution, count(v) AS observations, bool_or(v < 0) AS negative
                       FROM labelled GROUP BY r, c, person_id),
        per_cell_person AS (SELECT GROUPING(r) AS row_total, GROUPING(c) AS col_total, r, c, person_id,
                                   sum(contribution) AS contribution, sum(observations) AS observations, bool_or(negative) AS negative
                            FROM per_person GROUP BY GROUPING SETS ({sets}))
        SELECT row_total, col_total, r, c, count(*), sum(observations), sum(contribution), max(contribution, $top),
               coalesce(bool_or(negative), false), bit_xor(md5_number_lower(person_id))
        FROM per_cell_person GROUP BY row_total, col_total, r, c
    """, params).fetchall()
    cells: dict[tuple[str | None, str | None], Cell] = {}
    for row_total, col_total, r, c, persons, observations, total, top, negative, fingerprint in found:
        key = (None if row_total else r, None if (col_total or not two_way) else c)
        cells[key] = Cell(*key, persons, int(observations or 0), total, [t for t in (top or []) if t is not None],
                          bool(negative), int(fingerprint or 0))
    for r in rows:  # combinations without any row are zero cells
        for c in cols if two_way else [None]:
            cells.setdefault((r, c), Cell(r, c))
    if table.statistic == "median":
        medians = con.execute(f"""
            WITH labelled AS (SELECT {row_label} AS r, {col_label} AS c, v FROM {q(base)})
            SELECT GROUPING(r), GROUPING(c), r, c, median(v) FROM labelled
            GROUP BY GROUPING SETS ({"(r, c), (r), (c), ()" if two_way else "(r, c), (c)"})
        """, {k: v for k, v in params.items() if k != "top"}).fetchall()
        for row_total, col_total, r, c, median in medians:
            cells[(None if row_total else r, None if (col_total or not two_way) else c)].median = median
    return TableCells(table, rows, cols, cells, {k: v for k, v in pooled.items() if v})


def structural_zero_labels(con: duckdb.DuckDBPyConnection, table: ResolvedTable) -> list[dict[str, str]]:
    """The declared structural zeros as cell labels (each value rendered as DuckDB renders it in a table)."""
    declared = []
    for zero in table.structural_zeros:
        declared.append({
            variable: con.execute(f"SELECT CAST(CAST($v AS {table.columns[variable].data_type}) AS VARCHAR)", {"v": value}).fetchone()[0]
            for variable, value in zero.items()
        })
    return declared

"""Blocking checks on the candidate files of a release, run before they are published.

They read the candidate CSVs, exactly what would be published, and hold them to the rules
again from the microdata, with their own queries: each table's rows (the temporary
table its computation made) are labelled from the labels the CSV shows (a value whose
label is not shown counts as ``(other categories)``), expanded to every total with
``UNION ALL`` rather than the computation's ``GROUPING SETS``, and aggregated per cell
and person. The rules' definitions are shared with ``rules`` (one owner per rule); the
numbers they are applied to are not.

- ``threshold``: every published cell has at least the threshold of persons, or none
  where a zero is declared structural (or zeros are not disclosive); every shown
  category stands for at least the threshold of persons; every person of the rows is
  in a shown category; every published value is the microdata's.
- ``dominance`` and ``p_percent``: no published sum or mean fails them (a cell with a
  negative value is left to the output checker, who saw it in review).
- ``differencing``: every cell found disclosive by differencing is suppressed in the
  file, and no release was recorded since the comparison.
- ``suppression_complete``: for every suppressed cell, the lowest and highest values
  consistent with the published cells and totals (two linear programmes, HiGHS) are at
  least one unit apart: one person, or one cent of a sum. Totals are taken as the sums
  of their cells, which is stricter than needed when a person counts in several cells.

Results carry table names, cell labels and counts of problems, never a cell's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from ..disclosure_policy import OutputPolicy
from ..projects.checks import CheckOutcome
from ..sql import quote_identifier as q
from .published import DECIMALS, NOT_APPLICABLE, SUPPRESSED, Grid, read_csv_grid
from .rules import DIFFERENCING, dominated, p_percent_fails, structural
from .tables import OTHER, TOTAL, Cell, TableCells, raw_label_sql

OUTPUT_CHECKS = {
    "threshold": (
        "Every published cell has at least the threshold of persons (a zero only where declared structural), every shown "
        "category stands for at least as many, and every published value is the microdata's."
    ),
    "dominance": "No published sum or mean is dominated: its n largest contributors hold less than k of it.",
    "p_percent": "No published sum or mean lets its second largest contributor estimate the largest within p percent.",
    "differencing": (
        "No published cell differs by 1 to threshold-1 persons from an already released cell with the same grouping; "
        "the comparison covered every release recorded."
    ),
    "suppression_complete": (
        "Every suppressed cell can take more than one value given the published cells and totals (linear programming)."
    ),
}
SUM_UNIT = 0.01
"""The smallest difference a sum can show (two decimals)."""


@dataclass
class CheckedTable:
    """What the checks need of one table: its computed cells (for the rows and the reasons) and its CSV."""

    cells: TableCells
    base: str  # the temporary table of its rows
    csv: Path
    declared_zeros: list[dict[str, str]] = field(default_factory=list)


def _label(text: str) -> str | None:
    return None if text == TOTAL else text


def _recount(con: duckdb.DuckDBPyConnection, table: CheckedTable, grid: Grid, policy: OutputPolicy) -> dict:
    """Every cell of the published grid recomputed from the rows: (row, col) -> Cell."""
    spec = table.cells.table.spec
    two_way = spec.columns is not None
    rows = [label for label in grid.labels if label != TOTAL]
    cols = [label for label in grid.header[1:] if label != TOTAL] if two_way else []
    row_label = f"CASE WHEN list_contains($rows, {raw_label_sql('r')}) THEN {raw_label_sql('r')} ELSE '{OTHER}' END"
    col_label = (f"CASE WHEN list_contains($cols, {raw_label_sql('c')}) THEN {raw_label_sql('c')} ELSE '{OTHER}' END"
                 if two_way else "NULL::VARCHAR")
    levels = ["SELECT person_id, r, c, v FROM labelled", "SELECT person_id, NULL, NULL, v FROM labelled"]
    if two_way:
        levels += ["SELECT person_id, r, NULL, v FROM labelled", "SELECT person_id, NULL, c, v FROM labelled"]
    found = con.execute(f"""
        WITH labelled AS (SELECT person_id, {row_label} AS r, {col_label} AS c, v FROM {q(table.base)}),
        levels AS ({" UNION ALL ".join(levels)}),
        per_person AS (SELECT r, c, person_id, sum(v) AS contribution, count(v) AS observations, bool_or(v < 0) AS negative
                       FROM levels GROUP BY r, c, person_id),
        medians AS (SELECT r, c, median(v) AS median FROM levels GROUP BY r, c)
        SELECT p.r, p.c, count(*), sum(observations), sum(contribution), max(contribution, $top),
               coalesce(bool_or(negative), false), any_value(m.median)
        FROM per_person p JOIN medians m ON m.r IS NOT DISTINCT FROM p.r AND m.c IS NOT DISTINCT FROM p.c
        GROUP BY p.r, p.c
    """, {"rows": rows, "top": max(policy.dominance_n, 2)} | ({"cols": cols} if two_way else {})).fetchall()
    cells = {}
    for r, c, persons, observations, total, top, negative, median in found:
        cells[(r, c)] = Cell(r, c, persons, int(observations or 0), total, [t for t in top or [] if t is not None],
                             bool(negative), median=median)
    return cells


def _published(grid: Grid, two_way: bool):
    """(row, col, text) of every cell of the grid, totals as None."""
    for label, values in zip(grid.labels, grid.values):
        for position, text in enumerate(values):
            yield _label(label), (_label(grid.header[position + 1]) if two_way else None), text


def _expected(cell: Cell, statistic: str, grand: int) -> float | None:
    if statistic == "count":
        return cell.persons
    if statistic == "share":
        return 100.0 * cell.persons / grand if grand else 0.0
    if statistic == "sum":
        return float(cell.total or 0.0)
    if cell.observations == 0:
        return None
    return float(cell.total) / cell.observations if statistic == "mean" else float(cell.median)


class _Findings:
    def __init__(self):
        self.problems = {name: [] for name in OUTPUT_CHECKS}

    def add(self, check: str, table: str, where: str, text: str) -> None:
        self.problems[check].append(f"table {table}, {where}: {text}")


def _where(row, col) -> str:
    return f"cell ({row or TOTAL}{'' if col is None else ', ' + col})"


def _check_table(con, table: CheckedTable, policy: OutputPolicy, found: _Findings) -> None:
    cells, name = table.cells, table.cells.table.name
    statistic, two_way = cells.table.statistic, cells.table.spec.columns is not None
    grid = read_csv_grid(table.csv)
    recount = _recount(con, table, grid, policy)
    shown = {(r, c) for r, c, _ in _published(grid, two_way)}
    missing = sum(cell.persons for key, cell in recount.items() if key not in shown and key[0] is not None
                  and (key[1] is not None or not two_way))
    if missing:
        found.add("threshold", name, "rows", "persons of the table's rows are in no shown category")
    for axis, labels in (("row", grid.labels), ("column", grid.header[1:] if two_way else [])):
        for label in labels:
            if label in (TOTAL, OTHER):
                continue
            total = recount.get((label, None) if axis == "row" else (None, label))
            if total is None or total.persons < policy.threshold:
                found.add("threshold", name, f"{axis} {label}", "a shown category stands for fewer persons than the threshold")
    grand = recount.get((None, None)).persons if (None, None) in recount else 0
    for row, col, text in _published(grid, two_way):
        cell = recount.get((row, col)) or Cell(row, col)
        if text == SUPPRESSED:
            continue
        where = _where(row, col)
        if cell.persons == 0 and policy.zeros_are_disclosive and not structural(cell, cells, table.declared_zeros):
            found.add("threshold", name, where, "a published zero that is not declared structural")
        elif 0 < cell.persons < policy.threshold:
            found.add("threshold", name, where, "published with fewer persons than the threshold")
        expected = _expected(cell, statistic, grand)
        if (text == NOT_APPLICABLE) != (expected is None) or (
                expected is not None and abs(float(text) - expected) > 0.5 * 10 ** -DECIMALS[statistic] + 1e-9):
            found.add("threshold", name, where, "the published value is not the microdata's")
        if cells.table.dominance and cell.persons and not cell.negative:
            if dominated(cell, policy):
                found.add("dominance", name, where, f"its {policy.dominance_n} largest contributors hold {policy.dominance_k:.0%} or more")
            if p_percent_fails(cell, policy):
                found.add("p_percent", name, where, f"its second largest contributor could estimate the largest within "
                                                      f"{policy.p_percent:.0%}")
    for cell in cells.cells.values():
        x, y = cells.position(cell)
        if DIFFERENCING in cell.reasons and grid.values[x][y] != SUPPRESSED:
            found.add("differencing", name, _where(cell.row, cell.col), "disclosive by differencing, yet published")
    for where in _unprotected(grid, recount, cells, two_way):
        found.add("suppression_complete", name, where, "its value can be recomputed from the published cells and totals")


def _unprotected(grid: Grid, recount: dict, cells: TableCells, two_way: bool) -> list[str]:
    """Suppressed cells whose range, given what is published, is narrower than one unit (linear programming)."""
    from scipy.optimize import linprog  # imported when needed: it takes a while

    rows = [_label(label) for label in grid.labels]
    cols = [_label(label) for label in grid.header[1:]] if two_way else [None]
    magnitude = cells.table.dominance
    unit = SUM_UNIT if magnitude else 1.0

    def value(r, c) -> float:
        cell = recount.get((r, c))
        return max(float(cell.total or 0.0), 0.0) if magnitude and cell else float(cell.persons if cell else 0)

    inner_rows, inner_cols = [r for r in rows if r is not None], [c for c in cols if c is not None]
    grid_value = {(r, c): value(r, c) for r in inner_rows for c in inner_cols} if two_way else {(r, None): value(r, None) for r in inner_rows}
    if two_way:  # totals as the sums of their cells
        for r in inner_rows:
            grid_value[(r, None)] = sum(grid_value[(r, c)] for c in inner_cols)
        for c in [*inner_cols, None]:
            grid_value[(None, c)] = sum(grid_value[(r, c)] for r in inner_rows)
    else:
        grid_value[(None, None)] = sum(grid_value[(r, None)] for r in inner_rows)
    suppressed = [(r, c) for r, c, text in _published(grid, two_way) if text == SUPPRESSED]
    if not suppressed:
        return []
    variable = {key: i for i, key in enumerate(suppressed)}
    lines = ([[(r, c) for c in inner_cols] + [(r, None)] for r in [*inner_rows, None]]
             + [[(r, c) for r in inner_rows] + [(None, c)] for c in [*inner_cols, None]]) if two_way else \
        [[(r, None) for r in inner_rows] + [(None, None)]]
    equations, constants = [], []
    for line in lines:
        if not any(key in variable for key in line):
            continue
        coefficients, constant = np.zeros(len(suppressed)), 0.0
        for key in line:
            sign = -1.0 if key == line[-1] else 1.0  # the line's total, minus its cells
            if key in variable:
                coefficients[variable[key]] += sign
            else:
                constant -= sign * grid_value[key]
        equations.append(coefficients)
        constants.append(constant)
    equations, constants = np.array(equations), np.array(constants)
    # Every solution seen is a consistent table, like the true one: a cell whose values across them already span a
    # unit needs no linear programme of its own.
    low = high = np.array([grid_value[key] for key in suppressed])
    narrow = []
    for key, i in variable.items():
        for direction in (-1.0, 1.0):  # highest, then lowest
            if high[i] - low[i] >= unit - 1e-9:
                break
            objective = np.zeros(len(suppressed))
            objective[i] = direction
            solved = linprog(objective, A_eq=equations, b_eq=constants, bounds=(0, None), method="highs")
            if solved.status == 3:  # unbounded above
                high = high.copy()
                high[i] = np.inf
            elif solved.status == 0:
                low, high = np.minimum(low, solved.x), np.maximum(high, solved.x)
            else:
                narrow.append(_where(*key) + " (no consistent values)")
                break
        else:
            if high[i] - low[i] < unit - 1e-9:
                narrow.append(_where(*key))
    return narrow


def check_candidate(con: duckdb.DuckDBPyConnection, tables: list[CheckedTable], policy: OutputPolicy,
                    releases_compared: int, releases_now: int) -> list[CheckOutcome]:
    """The five blocking checks over every table of a candidate; attached files are the checker's."""
    found = _Findings()
    for table in tables:
        _check_table(con, table, policy, found)
    if releases_now != releases_compared:
        found.problems["differencing"].append(
            f"{releases_now - releases_compared} release(s) were recorded after the comparison: examine the request again")
    return [CheckOutcome(name, description, found.problems[name]) for name, description in OUTPUT_CHECKS.items()]

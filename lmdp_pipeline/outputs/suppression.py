"""Secondary suppression: no suppressed cell can be recomputed from the published cells and totals.

A table with its totals is a set of linear constraints: every row and every column of
cells adds up to its total. Think of each row and each column as a vertex and of each
cell as an edge between its row and its column (a one-way table: between its column
and a free vertex, since its rows have no total of their own). A suppressed cell can be
moved by some amount t, and the constraints still hold, exactly when it lies on a cycle
of suppressed cells: going round the cycle, each cell moves by +t or -t (a total moves
with its cells) and every row and column still adds up. The published values pin a
suppressed cell to one value only when no such cycle exists, or when every cycle
through it needs a zero on both sides of it (cells cannot go below zero). So a cycle
whose other cells are all positive protects every cell on it, and a cell is protected
by a cycle with at most one zero (a suppressed zero can only grow, and the cycle then
moves one way).

For each primary cell not yet on such a cycle, the cheapest path between its row and
its column through suppressed cells (free) and published positive cells (their cost:
what publishing them would have shown, the cell's persons or sum, plus one) closes the
cycle; the published cells on it become secondary suppressions. Totals cost a thousand
times more than inner cells (the grand total a million): they are the figures most
likely to be published elsewhere, so they are hidden only when nothing else protects a
cell. The choice is greedy, cell by cell (the exact problem is NP-hard); the blocking
check ``suppression_complete`` verifies the result independently, by linear
programming.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from .rules import SECONDARY, SUPPRESSING
from .tables import Cell, TableCells

MARGIN_COST = 1_000
GRAND_TOTAL_COST = 1_000_000
FREE = ("free", 0)
"""The vertex of a one-way table's rows, which have no totals of their own."""


def is_suppressed(cell: Cell) -> bool:
    return cell.secondary or any(reason in SUPPRESSING for reason in cell.reasons)


def quantity(cells: TableCells) -> Callable[[Cell], float]:
    """What a cell adds up: persons for counts, shares and medians; the sum of values for sums and means."""
    if cells.table.dominance:
        return lambda cell: max(cell.total or 0.0, 0.0)
    return lambda cell: float(cell.persons)


def _ends(cells: TableCells, cell: Cell) -> tuple[tuple[str, int], tuple[str, int]]:
    row, col = cells.position(cell)
    return (FREE if cells.cols is None else ("r", row)), ("c", col)


def _cost(cell: Cell, value: float) -> float:
    weight = GRAND_TOTAL_COST if cell.row is None and cell.col is None else MARGIN_COST if cell.is_total else 1
    return (value + 1) * weight


class _Graph:
    """Rows and columns as vertices, cells as edges, with each edge's cost and zero-ness computed once."""

    def __init__(self, cells: TableCells):
        value = quantity(cells)
        self.edges = cells.ordered()
        self.zero = [value(c) == 0 for c in self.edges]
        self.cost = [_cost(c, value(c)) for c in self.edges]
        self.suppressed = [is_suppressed(c) for c in self.edges]
        self.ends = [_ends(cells, c) for c in self.edges]
        self.adjacent: dict[tuple[str, int], list[tuple[int, tuple[str, int]]]] = {}
        for i, (a, b) in enumerate(self.ends):
            self.adjacent.setdefault(a, []).append((i, b))
            self.adjacent.setdefault(b, []).append((i, a))

    def suppress(self, i: int) -> None:
        self.suppressed[i] = True

    def cheapest_cycle(self, start: int) -> list[int] | None:
        """The cheapest path closing a protecting cycle through edge ``start`` (its published edges are the ones to suppress)."""
        source, target = self.ends[start]
        budget = 0 if self.zero[start] else 1  # zeros the rest of the cycle may hold
        order = itertools.count()
        queue = [(0.0, next(order), source, 0)]
        best: dict[tuple, float] = {(source, 0): 0.0}
        came: dict[tuple, tuple] = {}
        while queue:
            cost, _, vertex, zeros = heapq.heappop(queue)
            if vertex == target:
                path, state = [], (vertex, zeros)
                while state in came:
                    state, edge = came[state]
                    path.append(edge)
                return path
            if cost > best.get((vertex, zeros), float("inf")):
                continue
            for edge, other in self.adjacent[vertex]:
                if edge == start or (self.zero[edge] and not self.suppressed[edge]):
                    continue  # a published zero protects nothing
                used = zeros + self.zero[edge]
                if used > budget:
                    continue
                step = cost + (0.0 if self.suppressed[edge] else self.cost[edge])
                if step < best.get((other, used), float("inf")):
                    best[(other, used)] = step
                    came[(other, used)] = ((vertex, zeros), edge)
                    heapq.heappush(queue, (step, next(order), other, used))
        return None


def protect(cells: TableCells) -> list[Cell]:
    """Add secondary suppressions until every suppressed cell is on a protecting cycle; return those that cannot be."""
    graph = _Graph(cells)
    protected: set[int] = set()
    unprotectable = []
    for i, cell in enumerate(graph.edges):
        if not graph.suppressed[i] or i in protected:
            continue
        path = graph.cheapest_cycle(i)
        if path is None:
            unprotectable.append(cell)
            continue
        for edge in path:
            if not graph.suppressed[edge]:
                graph.suppress(edge)
                graph.edges[edge].secondary = True
                graph.edges[edge].reasons.append(SECONDARY)
        protected.update([i, *path])
    return unprotectable

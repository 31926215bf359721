"""Tables that use columns of the researchers' own files: an output checker decides when they are used in two ways.

Differencing compares cells of the same grouping (``differencing``). Columns the
researchers brought (an external dataset) let them draw any groups they like: a
column marking 22 respondents and another marking the same 22 plus a target, or three
columns whose cells combine as A - C + B, can put one person in the difference of
published cells that are each far apart from every other (a review of 2026-11-30 did
it with two tables, with pooled categories and with three tables). No pairwise test
sees every such design, so a request goes to an output checker as soon as the
project's released tables and the request's tables filter or group on such columns in
more than one way. One way (the same groups, the same conditions) is what differencing
already covers; a table that uses no such column does not count.

A sum, mean or median *of* such a column, by or under a condition on anything the
registers say, goes to an output checker whatever else the request holds: the
researchers set those values, so a total can be a code. A review of 2026-12-01 gave the
persons it wanted to find weights of 1, 2, 4, ... and everyone else 1: the sum of the
weights by citizenship group, less the count, spelt in binary which of them fell in each
cell (16 of 16 attributes right), within every cell rule. Grouped and filtered on their
own columns only, such a table tells the researchers their own answers back.
"""

from __future__ import annotations

from ..projects.plan import EXTERNAL_PREFIX
from .differencing import EarlierTable
from .extract import ResolvedTable

Use = tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]
"""(columns grouped by, conditions on such columns), each as ``table.column``."""


def own_column_use(table: ResolvedTable) -> Use | None:
    """What a table does with columns of external datasets; None when it uses none."""
    def own(variable: str) -> str | None:
        column = table.columns[variable]
        return f"{column.table}.{variable}" if column.table.startswith(EXTERNAL_PREFIX) else None

    grouping = tuple(sorted(name for name in map(own, table.grouping) if name))
    conditions = tuple(sorted((own(variable), operator, repr(values)) for variable, operator, values in table.conditions
                              if own(variable)))
    return (grouping, conditions) if grouping or conditions else None


def own_value(table: ResolvedTable) -> str | None:
    """The column of an external dataset a table sums, averages or takes the median of, by or under a condition on a
    register's variable; None for counts, register values and tables on the researchers' own columns alone."""
    def external(variable: str) -> bool:
        return table.columns[variable].table.startswith(EXTERNAL_PREFIX)

    if not table.magnitude or not external(table.spec.value):
        return None
    if all(external(v) for v in [*table.grouping, *(variable for variable, _, _ in table.conditions)]):
        return None
    return f"{table.columns[table.spec.value].table}.{table.spec.value}"


def review_reason(tables: list[ResolvedTable], earlier: list[EarlierTable]) -> str | None:
    """Why an output checker must decide, or None: a table sums values of an external column by register variables;
    the request's and the released tables use external columns in more than one way; or a released table read from an
    external dataset no longer resolves on the extract (its use cannot be known) while the request uses them. Only a
    table read from an external dataset can use its columns."""
    valued = sorted({value for value in map(own_value, tables) if value})
    if valued:
        return (f"tables sum, average or take the median of values of the researchers' own files ({', '.join(valued)}) by "
                "what the registers say: they set those values, so a total can be a code telling which of the persons they "
                "chose are in a cell (weights of 1, 2, 4, ...); an output checker decides")
    mine = {use for use in map(own_column_use, tables) if use}
    if not mine:
        return None
    unknown = [e.label for e in earlier if e.resolved is None and e.source.startswith(EXTERNAL_PREFIX)]
    if unknown:
        return (f"tables use columns of the researchers' own files while {len(unknown)} released table(s) no longer read "
                "from this extract (what they grouped or filtered is unknown): an output checker decides")
    uses = mine | {use for use in (own_column_use(e.resolved) for e in earlier if e.resolved is not None) if use}
    if len(uses) > 1:
        return (f"the request and the released tables filter or group on columns of the researchers' own files in "
                f"{len(uses)} different ways: such groups can be designed so that published cells differ by one person "
                "in ways differencing does not compare; an output checker decides")
    return None

"""Contract levels compiled to DuckDB SQL: how a variable is coarsened to an approved level.

Every level of every contract becomes an expression over the finest value, generated
from its derivation (truncate, code_level, band): there is no code per variable, and
the only input an expression reads is the finest column, so nothing finer than the
requested level can come out of it. Code mappings are inlined as MAP literals built from
the contracts' code lists (trusted text, quoted), never from an approval.

Delivered forms: a date truncated to the month is text ``YYYY-MM``, to the year an
integer year; a band is its lower bound; a code level is the code of that level.
"""

from __future__ import annotations

from ..contracts import Level, Variable, VariableType
from ..sql import quote_literal


def _map_literal(mapping: dict[str, str]) -> str:
    pairs = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in sorted(mapping.items()))
    return f"MAP {{{pairs}}}"


def level_expression(variable: Variable, level: Level | str, column: str) -> str:
    """SQL for ``column`` (the variable's finest value) at ``level``."""
    level = variable.level(level) if isinstance(level, str) else level
    if level.pseudonym:
        raise ValueError(f"{variable.name}: pseudonyms come from the project's key, not from a level expression")
    if level.truncate:
        if variable.type is VariableType.month:
            return f"CAST(left({column}, 4) AS INTEGER)"
        if level.truncate == "day":
            return column
        if level.truncate == "month":
            return f"strftime({column}, '%Y-%m')"
        return f"year({column})"
    if level.code_level:
        return f"({_map_literal(variable.codes.mapping(level.code_level))})[{column}]"
    if level.band:
        band = level.band
        if band.width is not None:
            return f"(floor(({column} - {band.origin:g}) / {band.width:g}) * {band.width:g} + {band.origin:g})"
        cases = " ".join(
            f"WHEN {column} >= {low:g} THEN {low:g}" for low in reversed(band.breaks)
        )
        return f"CASE {cases} END"
    return column

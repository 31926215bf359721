"""One aggregate query per table before it is written: what the binary formats must know up front.

Stata and SPSS files declare the row count and every variable's storage type and width
in their header, before the first row: the widest text of each text column, and the
range of each integer column (Stata stores it in the smallest type that holds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ..sql import quote_identifier as q
from .columns import ExportColumn, Kind

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}


@dataclass(frozen=True)
class Profile:
    rows: int
    widths: dict[str, int]  # text column -> its longest value in bytes (at least 1)
    ranges: dict[str, tuple[int, int]]  # integer number column -> (min, max), (0, 0) when all missing

    def is_integer(self, column: str) -> bool:
        return column in self.ranges


def profile(con: duckdb.DuckDBPyConnection, table: str, columns: list[ExportColumn]) -> Profile:
    types = dict(con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND table_name = ?", [table]
    ).fetchall())
    texts = [c.name for c in columns if c.kind is Kind.text]
    integers = [c.name for c in columns if c.kind is Kind.number and types[c.name] in INTEGER_TYPES]
    selects = ["count(*)"]
    selects += [f"coalesce(max(strlen({q(c)})), 0)" for c in texts]
    selects += [f"coalesce(min({q(c)}), 0)::HUGEINT, coalesce(max({q(c)}), 0)::HUGEINT" for c in integers]
    [values] = con.execute(f"SELECT {', '.join(selects)} FROM {q(table)}").fetchall()
    widths = {c: max(1, int(w)) for c, w in zip(texts, values[1: 1 + len(texts)])}
    bounds = values[1 + len(texts):]
    ranges = {c: (int(bounds[2 * i]), int(bounds[2 * i + 1])) for i, c in enumerate(integers)}
    return Profile(int(values[0]), widths, ranges)

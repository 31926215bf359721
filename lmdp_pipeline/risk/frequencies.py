"""Population frequencies: every combination of a table's quasi-identifiers counted in the whole register, per month.

This is what the registers allow and a survey does not: F is counted, not estimated.
Counting reads every row of the register for every month of the period, which costs
about as much as the build's own scan, and for a table with several rows per person
and month (jobs, family links) a grouping by person and month on top. The counts
depend only on the warehouse month and the levels, so a build keeps them in the
identified zone (``warehouse/.frequencies/<register>/<signature>/<month>.<stamp>.parquet``)
and the next build or preview of any project at the same levels reads them:

- the *signature* names the levels: the register, its quasi-identifiers and levels,
  the employer's when linked, and the contract versions (a changed code list is a new
  signature);
- the *stamp* names the warehouse files counted (size and modification time of the
  register's month, and of the enterprises' month when linked): a re-ingested month
  has a new stamp and is counted again; stale counts of that month are removed.

Files hold counts per combination of coarsened values (no identifier, no person), in
the zone that holds the register itself; they are written under a hidden name and
renamed. Only builds write them (a run changes state); a preview counts what is
missing in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import duckdb

from ..contracts import ContractSet
from ..paths import PRIVATE_DIR, PlatformPaths
from ..period import Period
from ..sql import quote_literal
from .measures import KeyCollision, columns, element_id, run
from .model import ENTERPRISES, MeasuredTable
from .sources import warehouse_rows

FORMAT = 1
"""The layout of a frequency file; part of every signature, so a new layout never reads an old file."""


def signature(table: MeasuredTable, contracts: ContractSet) -> str:
    versions = {table.register: contracts[table.register].version}
    if table.linked:
        versions[ENTERPRISES] = contracts[ENTERPRISES].version
    described = {
        "format": FORMAT, "register": table.register, "single": table.single, "employer": table.employer, "versions": versions,
        "own": [[qi.column, qi.level] for qi in table.own], "linked": [[qi.column, qi.level] for qi in table.linked],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def count(con: duckdb.DuckDBPyConnection, table: MeasuredTable, rows: str, name: str, params: dict) -> str:
    """Temporary table ``name``: the units of ``rows`` counted per month and combination, ``month, q0.., frequency``
    (one row per unit and month) or ``month, profile, frequency`` (several: the multiset of the unit's rows)."""
    run(con, f"CREATE OR REPLACE TEMP TABLE {name} AS {_count_sql(con, table, rows, name, params)}", params)
    return name


def _count_sql(con: duckdb.DuckDBPyConnection, table: MeasuredTable, rows: str, name: str, params: dict) -> str:
    if table.single:
        return f"SELECT month, {columns(table)}, count(*) AS frequency FROM ({rows}) GROUP BY ALL"
    # Grouping every row by person and month is the cost; most persons have one row a month, whose multiset is that
    # row: a count and a minimum per group are enough, and only the others are grouped again into lists. Element ids
    # are carried throughout and turned back into values once per distinct element.
    run(con, f"CREATE OR REPLACE TEMP TABLE {name}_e AS SELECT DISTINCT {element_id(table)} AS e, {columns(table)} FROM ({rows})", params)
    rows_, distinct = con.execute(f"SELECT count(*), count(DISTINCT e) FROM {name}_e").fetchone()
    if rows_ != distinct:
        raise KeyCollision(f"{rows_ - distinct} combinations of {table.name} in the register share a hash")
    run(con, f"""CREATE OR REPLACE TEMP TABLE {name}_u AS SELECT month, unit, count(*) AS n, min({element_id(table)}) AS e
        FROM ({rows}) GROUP BY month, unit""", params)
    profiles = [f"SELECT month, [e] AS ids, count(*) AS frequency FROM {name}_u WHERE n = 1 GROUP BY month, e"]
    if con.execute(f"SELECT count(*) FROM {name}_u WHERE n > 1").fetchone()[0]:
        profiles.append(f"""SELECT month, ids, count(*) AS frequency FROM (SELECT r.month, list_sort(list({element_id(table, 'r.')})) AS ids
            FROM ({rows}) r SEMI JOIN (SELECT month, unit FROM {name}_u WHERE n > 1) several USING (month, unit)
            GROUP BY r.month, r.unit) GROUP BY ALL""")
    run(con, f"CREATE OR REPLACE TEMP TABLE {name}_p AS {' UNION ALL '.join(profiles)}", params)
    con.execute(f"DROP TABLE {name}_u")
    fields = ", ".join(f"q{i} := q{i}" for i in range(len(table.qis)))
    return (f"SELECT p.month, list_transform(p.ids, lambda x: d.m[x]) AS profile, p.frequency FROM {name}_p p, "
            f"(SELECT map_from_entries(list(struct_pack(k := e, v := struct_pack({fields})))) AS m FROM {name}_e) d")


class Frequencies:
    """Counts the register's combinations for the measured tables, reading kept months and keeping new ones (``keep``)."""

    def __init__(self, paths: PlatformPaths, contracts: ContractSet, period: Period, keep: bool):
        self.paths, self.contracts, self.period, self.keep = paths, contracts, period, keep

    def _stamp(self, table: MeasuredTable, month: str) -> str:
        files = [self.paths.warehouse_file(table.register, month)]
        if table.linked:
            files.append(self.paths.warehouse_file(ENTERPRISES, month))
        described = "\n".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
        return hashlib.sha256(described.encode()).hexdigest()[:12]

    def counted(self, con: duckdb.DuckDBPyConnection, table: MeasuredTable, name: str) -> str:
        """Temporary table ``name`` with the register's counts for every month of the period; returns its name."""
        sign = signature(table, self.contracts)
        wanted = {month: self.paths.frequency_file(table.register, sign, month, self._stamp(table, month)) for month in self.period.months}
        kept = [path for path in wanted.values() if path.exists()]
        missing = [month for month, path in wanted.items() if not path.exists()]
        parts = [f"SELECT * FROM read_parquet([{', '.join(quote_literal(p) for p in kept)}])"] if kept else []
        if missing:
            rows = warehouse_rows(table, self.contracts, self.paths.warehouse, None)
            count(con, table, rows, f"{name}_new", {"period_from": min(missing), "period_to": max(missing)})
            con.execute(f"DELETE FROM {name}_new WHERE NOT list_contains(?, month)", [missing])
            if self.keep:
                for month in missing:
                    self._keep(con, f"{name}_new", table.register, sign, month, wanted[month])
            parts.append(f"SELECT * FROM {name}_new")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {' UNION ALL BY NAME '.join(parts)}")
        return name

    def _keep(self, con: duckdb.DuckDBPyConnection, counts: str, register: str, sign: str, month: str, target) -> None:
        """One month's counts under their final name, written whole or not at all; earlier counts of the month removed."""
        target.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            con.execute(f"COPY (SELECT * FROM {counts} WHERE month = {quote_literal(month)}) TO {quote_literal(partial)} (FORMAT parquet)")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        for stale in self.paths.frequency_files(register, sign, month):
            if stale != target:
                stale.unlink(missing_ok=True)

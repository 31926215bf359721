"""One delivered table to Stata, SPSS and Parquet in a single pass over the extract.

The table is read once, in Arrow batches of ``BATCH_ROWS`` rows (memory stays at a few
batches whatever its size); each batch is prepared once (``arrays.prepare``) and handed
to the three writers, Parquet in a second thread while the Stata and SPSS records are
packed. Month columns are also read as the date of their first day, computed by DuckDB.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..paths import EXPORT_FORMATS, export_file
from ..sql import quote_identifier as q
from . import spss, stata
from . import ExportError
from .arrays import prepare
from .columns import ExportColumn, Kind
from .names import SPSS_NAMES, STATA_NAMES
from .parquet import ParquetTableWriter
from .profile import profile

BATCH_ROWS = 262_144
MONTH_PREFIX = "lmdp_month_start_"


@dataclass(frozen=True)
class TableExport:
    """What was written for one table: the files, the row count and each format's variables."""

    table: str
    rows: int
    columns: list[ExportColumn]
    stata: list[stata.Variable]
    spss: list[spss.Variable]
    files: dict[str, Path]  # format -> file


def _check_columns(con: duckdb.DuckDBPyConnection, table: str, columns: list[ExportColumn]) -> None:
    found = [c for (c,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name = ? "
        "ORDER BY column_index", [table]).fetchall()]
    expected = [c.name for c in columns]
    if found != expected:
        raise ExportError(f"table {table} of the extract has columns {found or 'none'}, the approval delivers {expected}: "
                          "the extract is not the approval's; rebuild it")


def export_table(con: duckdb.DuckDBPyConnection, table: str, columns: list[ExportColumn], folder: Path, label: str,
                 timestamp: dt.datetime, metadata: dict[str, str]) -> TableExport:
    """``<table>.dta``, ``<table>.sav`` and ``<table>.parquet`` in ``folder``."""
    _check_columns(con, table, columns)
    shape = profile(con, table, columns)
    names = [c.name for c in columns]
    stata_variables = stata.layout(columns, STATA_NAMES.names(names), shape, table)
    spss_variables = spss.layout(columns, SPSS_NAMES.names(names), shape, table)
    months = [c.name for c in columns if c.kind is Kind.month]
    selects = [q(n) for n in names] + [
        f"CAST(left(CAST({q(m)} AS VARCHAR), 7) || '-01' AS DATE) AS {q(MONTH_PREFIX + m)}" for m in months
    ]
    reader = con.sql(f"SELECT {', '.join(selects)} FROM {q(table)}").to_arrow_reader(BATCH_ROWS)
    files = {format_: export_file(folder, table, format_) for format_ in EXPORT_FORMATS}
    binary = [stata.DtaWriter(files["dta"], stata_variables, shape.rows, label, timestamp),
              spss.SavWriter(files["sav"], spss_variables, shape.rows, label, timestamp)]
    parquet = ParquetTableWriter(files["parquet"], reader.schema, columns, metadata)
    with ThreadPoolExecutor(max_workers=1) as beside:  # pyarrow writes while numpy packs: both release the GIL
        for batch in reader:
            prepared = prepare(batch, columns, table, {m: batch.column(MONTH_PREFIX + m) for m in months})
            written = beside.submit(parquet.write, prepared)
            for writer in binary:
                writer.write(prepared)
            written.result()
    for writer in [*binary, parquet]:
        writer.close()
    return TableExport(table, shape.rows, columns, stata_variables, spss_variables, files)

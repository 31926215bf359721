"""Run a contract's Great Expectations suite over a staged delivery, chunk by chunk.

GX validates pandas frames only here (its SQL path fails on DuckDB), so the staged
table is streamed in chunks of ``CHUNK_ROWS`` rows, with only the columns the suite
reads: memory stays bounded whatever the size of the month. Rows carry their file row
number, so chunks need no ordering. Only counts and row
numbers are read back from GX results, never the values.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from ..contracts import Contract
from ..sql import quote_identifier as q
from .report import MAX_ROWS_SHOWN, Check, Finding, Severity
from .staging import ROW, RowRule, flag_word
from .suite import DELIVERY_ROWS, build_suite, columns_validated, import_gx

if TYPE_CHECKING:  # pandas and pyarrow are imported when a delivery is validated, not by every `lmdp build`
    import pandas as pd
    import pyarrow as pa

CHUNK_ROWS = 1_000_000
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW],
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
}


@dataclass
class _Tally:
    meta: dict
    rows: int = 0
    first_rows: list[int] = field(default_factory=list)

    def add(self, rows: list[int]) -> None:
        """Count failing rows; keep the lowest row numbers (chunks arrive in no particular order)."""
        self.rows += len(rows)
        self.first_rows = heapq.nsmallest(MAX_ROWS_SHOWN, self.first_rows + rows)

    def finding(self) -> Finding:
        m = self.meta
        return Finding(Check(m["check"]), m["rule"], m["column"], self.rows, tuple(sorted(self.first_rows)), Severity(m["severity"]), m["hint"])


@functools.cache
def _batch_definition():
    """One ephemeral GX context per process, with a pandas data source and its whole-frame batch.

    Making one costs about 70 ms (GX saves its settings as it goes); a run validates nine
    deliveries, and every delivery's frame is handed over as a batch parameter anyway.
    """
    gx = import_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("delivery").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


class _Validator:
    """The findings of one delivery's validations, tallied across its chunks."""

    def __init__(self) -> None:
        self.batch_definition = _batch_definition()
        self.tallies: dict[tuple, _Tally] = {}

    def run(self, suite, frame: pd.DataFrame) -> None:
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format=RESULT_FORMAT)
        for index, outcome in enumerate(result.results):
            if outcome.success:
                continue
            meta = outcome.expectation_config.meta
            failing = outcome.result.get("unexpected_index_list") or []
            if meta.get("check") == "row_rules":
                self._decode_flags(meta["bits"], outcome.expectation_config.kwargs["column"], failing)
                continue
            tally = self.tallies.setdefault((suite.name, index), _Tally(meta))
            tally.add([int(entry[ROW]) for entry in failing or [{ROW: 0}]])  # no rows: a table-level rule

    def _decode_flags(self, bits: dict, column: str, failing: list[dict]) -> None:
        """Unpack a flag word into one tally per rule; the word holds bits, never values."""
        rows_by_bit: dict[str, list[int]] = {}
        for entry in failing:
            flags = int(entry[column])
            for bit in bits:
                if flags >> int(bit) & 1:
                    rows_by_bit.setdefault(bit, []).append(int(entry[ROW]))
        for bit, rows in rows_by_bit.items():
            self.tallies.setdefault((column, bit), _Tally(bits[bit])).add(rows)

    def findings(self) -> list[Finding]:
        return [tally.finding() for tally in self.tallies.values()]


def _frame_query(contract: Contract, rules: list[RowRule], rows: int) -> str:
    words = sorted({flag_word(rule.bit(i)[0]) for i, rule in enumerate(rules)})
    columns = [ROW] + [q(c) for c in columns_validated(contract)] + words
    decimals = {v.name for v in contract.variables if v.type == "decimal"}
    select = [f"{c}::DOUBLE AS {c}" if c.strip('"') in decimals else c for c in columns]  # pandas would hold Decimals
    return f"SELECT {', '.join(select)}, {rows}::BIGINT AS {DELIVERY_ROWS} FROM staged"


def _chunks(reader: pa.RecordBatchReader):
    """Tables of about CHUNK_ROWS rows: DuckDB hands out ~120,000-row batches, and each GX
    validation has a fixed cost of tens of milliseconds, so batches are gathered first."""
    import pyarrow as pa

    pending, size = [], 0
    for batch in reader:
        pending.append(batch)
        size += batch.num_rows
        if size >= CHUNK_ROWS:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _frame(chunk: pa.Table, coded: set[str]) -> pd.DataFrame:
    """Pandas frame for GX; coded columns as categoricals, which halves the cost of their in-set checks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [pc.dictionary_encode(chunk[name]) if name in coded else chunk[name] for name in chunk.column_names]
    return pa.table(columns, names=chunk.column_names).to_pandas()


def validate_staged(
    con: duckdb.DuckDBPyConnection, contract: Contract, rules: list[RowRule], month: str, previous_rows: int
) -> tuple[int, list[Finding]]:
    """Validate table ``staged``; return its row count and the findings."""
    validator = _Validator()
    rows = con.execute("SELECT count(*) FROM staged").fetchone()[0]
    suite = build_suite(contract, month, rules, previous_rows)
    coded = {v.name for v in contract.variables if v.codes is not None} | {contract.delivery.month_column}
    with con.cursor() as stream:  # a second handle, so the connection stays free while chunks stream
        reader = stream.sql(_frame_query(contract, rules, rows)).to_arrow_reader(CHUNK_ROWS)
        for chunk in _chunks(reader):
            validator.run(suite, _frame(chunk, coded))
        if rows == 0:  # no rows for the row rules, but the volume rule judges the count: one row holding only it
            import pyarrow as pa

            validator.run(suite, _frame(pa.Table.from_pylist([{ROW: 0, DELIVERY_ROWS: 0}], schema=reader.schema), coded))
    return rows, [
        Finding(f.check, f.rule, f.column, rows, (), f.severity, f.hint) if f.check is Check.volume else f
        for f in validator.findings()
    ]

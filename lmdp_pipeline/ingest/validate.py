"""Run a contract's Great Expectations suite over a staged delivery, chunk by chunk.

GX validates pandas frames only here (its SQL path fails on DuckDB), so the staged
table is streamed in chunks of ``CHUNK_ROWS`` rows: memory stays bounded whatever the
size of the month. Rules that need the whole file (unique key, references) arrive as
flags computed by DuckDB; identifier check digits are computed per chunk in NumPy.
Only counts and row numbers are read back from GX results, never the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ..contracts import Contract, VariableType
from ..identifiers import validate_identifiers
from .report import MAX_ROWS_SHOWN, Check, Finding, Severity
from .staging import ROW
from .suite import build_suite, build_volume_suite, check_flag, format_flag, import_gx

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

    def add(self, count: int, index_list: list[dict]) -> None:
        self.rows += count
        room = MAX_ROWS_SHOWN - len(self.first_rows)
        if room > 0:
            self.first_rows.extend(int(entry[ROW]) for entry in index_list[:room])

    def finding(self) -> Finding:
        m = self.meta
        return Finding(Check(m["check"]), m["rule"], m["column"], self.rows, tuple(sorted(self.first_rows)), Severity(m["severity"]), m["hint"])


class _Validator:
    """One ephemeral GX context per delivery: a pandas data source and its whole-frame batch."""

    def __init__(self) -> None:
        gx = import_gx()
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = {"globally": False}
        asset = self.context.data_sources.add_pandas("delivery").add_dataframe_asset("frame")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")

    def run(self, suite, frame: pd.DataFrame, tallies: dict[int, _Tally]) -> None:
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format=RESULT_FORMAT)
        for index, outcome in enumerate(result.results):
            count = outcome.result.get("unexpected_count") or 0
            tally = tallies.setdefault(index, _Tally(outcome.expectation_config.meta))
            if not outcome.success and count == 0:  # a failure without rows (e.g. a missing column)
                count = 1
            if count:
                tally.add(count, outcome.result.get("unexpected_index_list") or [])


def _add_identifier_flags(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    for variable in contract.identifiers:
        values = frame[variable.name].to_numpy(dtype=object, na_value=None)
        format_ok, valid = validate_identifiers(values, variable.identifier_format)
        frame[format_flag(variable.name)] = format_ok
        frame[check_flag(variable.name)] = valid & format_ok
    return frame


def _frame_query(contract: Contract) -> str:
    """Staged rows for GX: decimals as doubles (pandas would hold Python Decimals), in file order."""
    decimals = [v.name for v in contract.variables if v.type is VariableType.decimal]
    if not decimals:
        return f"SELECT * FROM staged ORDER BY {ROW}"
    replace = ", ".join(f'"{c}"::DOUBLE AS "{c}"' for c in decimals)
    return f"SELECT * REPLACE ({replace}) FROM staged ORDER BY {ROW}"


def validate_staged(con: duckdb.DuckDBPyConnection, contract: Contract, month: str, previous_rows: int) -> tuple[int, list[Finding]]:
    """Validate table ``staged``; return its row count and the findings."""
    validator = _Validator()
    suite = build_suite(contract, month)
    tallies: dict[int, _Tally] = {}
    rows = 0
    with con.cursor() as stream:  # a second handle, so the connection stays free while chunks stream
        reader = stream.sql(_frame_query(contract)).to_arrow_reader(CHUNK_ROWS)
        for batch in reader:
            frame = _add_identifier_flags(batch.to_pandas(), contract)
            rows += len(frame)
            validator.run(suite, frame, tallies)
        if rows == 0:
            validator.run(suite, _add_identifier_flags(reader.schema.empty_table().to_pandas(), contract), tallies)
    volume = build_volume_suite(contract, previous_rows)
    if volume is not None:
        volume_tallies: dict[int, _Tally] = {}
        validator.run(volume, pd.DataFrame({ROW: [0], "rows": [rows]}), volume_tallies)
        for tally in volume_tallies.values():  # the rule is about the whole file: report its size
            if tally.rows:
                tally.rows, tally.first_rows = rows, []
        tallies.update({len(tallies) + i: t for i, t in volume_tallies.items()})
    return rows, [t.finding() for t in tallies.values() if t.rows]

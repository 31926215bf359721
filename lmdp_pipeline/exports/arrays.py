"""Arrow columns as the numpy arrays the binary writers pack, without a Python loop over rows.

A batch read from the extract is turned once into one ``Prepared`` per column (codes
as their position in the code list, dates and months as days since 1970, numbers with
a validity mask), which the Stata and SPSS writers then pack into fixed-width records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ExportError
from .columns import ExportColumn, Kind


@dataclass
class Prepared:
    """One column of one batch: ``values`` (codes: position in the code list) and where they are present."""

    column: ExportColumn
    values: np.ndarray | pa.Array  # text: the Arrow strings
    valid: np.ndarray  # bool
    arrow: pa.Array  # what Parquet writes: the extract's array, or (codes) positions with nulls

    def code_numbers(self) -> np.ndarray:
        """A code column's numbers (``ExportColumn.numbers``), as Stata and SPSS store them."""
        lookup = np.array([self.column.numbers[c] for c in self.column.codes], dtype=np.float64)
        return lookup[self.values]


def _valid(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return array.is_valid().to_numpy(zero_copy_only=False)


def code_positions(array: pa.Array, column: ExportColumn, table: str) -> pa.Array:
    """Each code's position in the code list at the approved level (null where the value is missing)."""
    positions = pc.index_in(array, value_set=pa.array(column.codes, pa.string()))
    if positions.null_count != array.null_count:
        unknown = pc.filter(array, pc.and_(pc.is_null(positions), pc.is_valid(array)))
        raise ExportError(
            f"table {table}, column {column.name}: {len(unknown)} value(s) are not codes of its code list at level "
            f"{column.level!r}; the extract and the contracts disagree: rebuild the extract"
        )
    return positions


def prepare(batch: pa.RecordBatch, columns: list[ExportColumn], table: str, month_days: dict[str, pa.Array]) -> list[Prepared]:
    """The batch's columns for the binary writers; ``month_days`` holds each month column as a date (its first day)."""
    prepared = []
    for column in columns:
        array = batch.column(column.name)
        valid = _valid(array)
        if column.kind is Kind.text:
            prepared.append(Prepared(column, array, valid, array))
        elif column.kind is Kind.code:
            positions = code_positions(array, column, table).cast(pa.int32())
            prepared.append(Prepared(column, pc.fill_null(positions, 0).to_numpy(), valid, positions))
        elif column.kind in (Kind.date, Kind.month):
            dates = month_days[column.name] if column.kind is Kind.month else array
            prepared.append(Prepared(column, pc.fill_null(dates.cast(pa.int32()), 0).to_numpy(), valid, array))
        elif pa.types.is_integer(array.type):
            prepared.append(Prepared(column, pc.fill_null(array, 0).cast(pa.int64()).to_numpy(), valid, array))
        else:
            prepared.append(Prepared(column, pc.fill_null(array.cast(pa.float64()), 0).to_numpy(), valid, array))
    return prepared


def fixed_width(array: pa.Array, width: int, pad: int) -> np.ndarray:
    """UTF-8 strings as an (n, width) byte matrix, each padded with ``pad`` (a missing value is empty)."""
    strings = pc.fill_null(array, "").cast(pa.large_binary())
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[strings.offset: strings.offset + n + 1]
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8) if strings.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if n and lengths.max() > width:
        raise ValueError(f"a value of {lengths.max()} bytes does not fit in {width}")
    used = data[offsets[0]: offsets[-1]]
    if n and lengths.min() == width:
        return used.reshape(n, width)
    out = np.full((n, width), pad, dtype=np.uint8)
    rows = np.repeat(np.arange(n), lengths)
    starts = np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, np.arange(len(used)) - starts] = used
    return out


def as_bytes(values: np.ndarray, dtype: str) -> np.ndarray:
    """Numbers as an (n, itemsize) byte matrix of ``dtype`` (little-endian)."""
    return np.ascontiguousarray(values.astype(dtype, copy=False)).view(np.uint8).reshape(len(values), -1)

"""SPSS ``.sav`` system files (uncompressed, UTF-8), written a batch at a time.

A dictionary (variable records with their labels and print formats, value labels,
the machine, display, long-name and encoding records) followed by fixed-width cases of
8-byte units: numbers are IEEE doubles, text is space-padded to a multiple of 8 bytes.
Each batch of rows is packed into one byte matrix with numpy and written in one call.

Storage: text is ``A<width>`` (at most 255 bytes); codes are numbers with value labels
(the same numbers as in Stata); days are ``SDATE10`` and months ``MOYR8`` (their first
day), both seconds since 14 October 1582 as SPSS counts dates; other numbers ``F``.
Missing numbers are system missing; missing text is blank.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ExportError
from .arrays import Prepared, as_bytes, fixed_width
from .columns import ExportColumn, Kind
from .names import fit, spss_short_names
from .profile import Profile

MAX_STRING = 255
SYSMIS = -sys.float_info.max
HIGHEST = sys.float_info.max
LOWEST = math.nextafter(-sys.float_info.max, 0)
DAYS_1582_TO_1970 = 141428
SECONDS_PER_DAY = 86400.0
FORMAT_CODES = {"A": 1, "F": 5, "MOYR": 28, "SDATE": 39}
MEASURE = {Kind.text: 1, Kind.code: 1, Kind.date: 3, Kind.month: 3, Kind.number: 3}  # nominal, scale
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
VALUE_LABEL_BYTES = 120
VARIABLE_LABEL_BYTES = 255


@dataclass(frozen=True)
class Variable:
    column: ExportColumn
    name: str
    short: str
    width: int  # text: bytes; numbers: 0
    format: tuple[str, int, int]  # type, width, decimals

    @property
    def units(self) -> int:
        """How many 8-byte units a case gives it."""
        return 1 if self.width == 0 else (self.width + 7) // 8

    @property
    def format_code(self) -> int:
        kind, width, decimals = self.format
        return FORMAT_CODES[kind] << 16 | width << 8 | decimals


def layout(columns: list[ExportColumn], names: dict[str, str], profile: Profile, table: str) -> list[Variable]:
    long_names = [names[c.name] for c in columns]
    variables = []
    for column, name, short in zip(columns, long_names, spss_short_names(long_names)):
        if column.kind is Kind.text:
            width = profile.widths[column.name]
            if width > MAX_STRING:
                raise ExportError(f"table {table}, column {column.name}: values of up to {width} bytes; the SPSS export holds "
                                  f"text of at most {MAX_STRING}: shorten them in the researchers' file")
            variables.append(Variable(column, name, short, width, ("A", width, 0)))
        elif column.kind is Kind.date:
            variables.append(Variable(column, name, short, 0, ("SDATE", 10, 0)))
        elif column.kind is Kind.month:
            variables.append(Variable(column, name, short, 0, ("MOYR", 8, 0)))
        elif column.kind is Kind.code or profile.is_integer(column.name):
            variables.append(Variable(column, name, short, 0, ("F", 11, 0)))
        else:
            variables.append(Variable(column, name, short, 0, ("F", 16, column.decimals)))
    return variables


def _padded(text: bytes, multiple: int) -> bytes:
    return text + b" " * (-len(text) % multiple)


def _variable_records(variable: Variable) -> bytes:
    label = fit(variable.column.title, VARIABLE_LABEL_BYTES).encode("utf-8")
    record = struct.pack("<iiiiii8s", 2, variable.width, 1, 0, variable.format_code, variable.format_code,
                         variable.short.encode().ljust(8))
    record += struct.pack("<i", len(label)) + label + b"\0" * (-len(label) % 4)
    for _ in range(variable.units - 1 if variable.width else 0):
        record += struct.pack("<iiiiii8s", 2, -1, 0, 0, 0, 0, b" " * 8)
    return record


def _value_labels(variable: Variable, index: int) -> bytes:
    column = variable.column
    record = struct.pack("<ii", 3, len(column.labels))
    for code, label in column.labels.items():
        text = fit(label, VALUE_LABEL_BYTES).encode("utf-8")
        record += struct.pack("<d", column.numbers[code]) + _padded(bytes([len(text)]) + text, 8)
    return record + struct.pack("<iii", 4, 1, index)


def _extension(subtype: int, size: int, data: bytes) -> bytes:
    return struct.pack("<iiii", 7, subtype, size, len(data) // size) + data


def dictionary(variables: list[Variable], rows: int, label: str, timestamp: dt.datetime) -> bytes:
    units = sum(v.units for v in variables)
    created = f"{timestamp.day:02d} {MONTHS[timestamp.month - 1]} {timestamp:%y}".encode()
    header = struct.pack("<4s60siiiiid9s8s64s3s", b"$FL2", _padded(b"@(#) SPSS DATA FILE lmdp-pipeline", 60), 2, units, 0, 0,
                         rows if rows < 2**31 else -1, 100.0, created, timestamp.strftime("%H:%M:%S").encode(),
                         fit(label, 64).encode("utf-8").ljust(64), b"\0\0\0")
    records = [header, *(_variable_records(v) for v in variables)]
    index = 1
    for variable in variables:
        if variable.column.kind is Kind.code:
            records.append(_value_labels(variable, index))
        index += variable.units
    records.append(_extension(3, 4, struct.pack("<8i", 1, 0, 0, -1, 1, 1, 2, 65001)))
    records.append(_extension(4, 8, struct.pack("<3d", SYSMIS, HIGHEST, LOWEST)))
    display = [(MEASURE[v.column.kind], min(max(v.width, 8), 40), 0 if v.width else 1) for v in variables]
    records.append(_extension(11, 4, b"".join(struct.pack("<3i", *d) for d in display)))
    records.append(_extension(13, 1, "\t".join(f"{v.short}={v.name}" for v in variables).encode("utf-8")))
    records.append(_extension(20, 1, b"UTF-8"))
    records.append(struct.pack("<ii", 999, 0))
    return b"".join(records)


def _numbers(variable: Variable, column: Prepared) -> np.ndarray:
    kind = variable.column.kind
    if kind is Kind.code:
        values = column.code_numbers()
    elif kind is Kind.date:
        values = (column.values.astype(np.float64) + DAYS_1582_TO_1970) * SECONDS_PER_DAY
    elif kind is Kind.month:
        firsts = column.values.astype("datetime64[D]").astype("datetime64[M]").astype("datetime64[D]")
        values = (firsts.astype(np.float64) + DAYS_1582_TO_1970) * SECONDS_PER_DAY
    else:
        values = column.values.astype(np.float64)
    return np.where(column.valid, values, SYSMIS)


def pack(variables: list[Variable], prepared: list[Prepared]) -> np.ndarray:
    rows = len(prepared[0].valid) if prepared else 0
    cases = np.empty((rows, 8 * sum(v.units for v in variables)), dtype=np.uint8)
    start = 0
    for variable, column in zip(variables, prepared):
        end = start + 8 * variable.units
        if variable.width:
            cases[:, start:end] = fixed_width(column.values, end - start, ord(" "))
        else:
            cases[:, start:end] = as_bytes(_numbers(variable, column), "<f8")
        start = end
    return cases


class SavWriter:
    """Writes one table: ``write`` each batch in order, then ``close``."""

    def __init__(self, path: Path, variables: list[Variable], rows: int, label: str, timestamp: dt.datetime):
        self.variables, self.rows, self.written = variables, rows, 0
        self.handle = open(path, "wb")
        self.handle.write(dictionary(variables, rows, label, timestamp))

    def write(self, prepared: list[Prepared]) -> None:
        self.written += len(prepared[0].valid) if prepared else 0
        self.handle.write(pack(self.variables, prepared).data)

    def close(self) -> None:
        self.handle.close()
        if self.written != self.rows:
            raise ExportError(f"{self.handle.name}: {self.written} rows written, {self.rows} declared; the extract changed")

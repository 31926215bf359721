"""Stata ``.dta`` format 118 (Stata 14 and newer), written a batch at a time.

Format 118 is a header, the variables' descriptors, fixed-width records and the value
labels, with a map of section offsets near the start (patched when the file is
complete). Each batch of rows is packed into one byte matrix with numpy and written
in one call, so memory stays at one batch whatever the table's size.

Storage: text is ``str#`` (at most 2,045 bytes, UTF-8); codes are ``byte``, ``int`` or
``long`` numbers with a value label of the same name; days are ``long`` ``%td`` and
months ``long`` ``%tm``; integers take the smallest type that holds their range,
decimals ``double``. Missing numbers are Stata's system missing ``.``; missing text is
empty.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ExportError
from .arrays import Prepared, as_bytes, fixed_width
from .columns import ExportColumn, Kind
from .names import fit
from .profile import Profile

RELEASE = 118
MAX_STR = 2045
DAYS_1960_TO_1970 = 3653
MONTHS_1960_TO_1970 = 120
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True)
class NumberType:
    name: str
    code: int
    dtype: str
    low: int | float
    high: int | float
    missing: int | float


BYTE = NumberType("byte", 65530, "<i1", -127, 100, 101)
INT = NumberType("int", 65529, "<i2", -32767, 32740, 32741)
LONG = NumberType("long", 65528, "<i4", -2147483647, 2147483620, 2147483621)
DOUBLE = NumberType("double", 65526, "<f8", -np.inf, np.inf, 2.0 ** 1023)


def smallest(low: int, high: int) -> NumberType:
    return next(t for t in (BYTE, INT, LONG, DOUBLE) if t.low <= low and high <= t.high)


@dataclass(frozen=True)
class Variable:
    """How one column is stored: ``width`` for text, else a number type; its display format."""

    column: ExportColumn
    name: str
    number: NumberType | None
    width: int
    display: str

    @property
    def type_code(self) -> int:
        return self.width if self.number is None else self.number.code

    @property
    def size(self) -> int:
        return self.width if self.number is None else np.dtype(self.number.dtype).itemsize


def layout(columns: list[ExportColumn], names: dict[str, str], profile: Profile, table: str) -> list[Variable]:
    variables = []
    for column in columns:
        name = names[column.name]
        if column.kind is Kind.text:
            width = profile.widths[column.name]
            if width > MAX_STR:
                raise ExportError(f"table {table}, column {column.name}: values of up to {width} bytes; Stata .dta text holds "
                                  f"at most {MAX_STR}: shorten them in the researchers' file")
            variables.append(Variable(column, name, None, width, f"%-{width}s"))
        elif column.kind is Kind.code:
            numbers = column.numbers.values()
            variables.append(Variable(column, name, smallest(min(numbers), max(numbers)), 0, "%8.0g"))
        elif column.kind is Kind.date:
            variables.append(Variable(column, name, LONG, 0, "%td"))
        elif column.kind is Kind.month:
            variables.append(Variable(column, name, LONG, 0, "%tm"))
        elif profile.is_integer(column.name):
            number = smallest(*profile.ranges[column.name])
            variables.append(Variable(column, name, number, 0, "%10.0g" if number is DOUBLE else "%12.0g"))
        else:
            variables.append(Variable(column, name, DOUBLE, 0, "%10.0g"))
    return variables


def _field(text: str, size: int) -> bytes:
    encoded = text.encode("utf-8")
    return encoded + b"\0" * (size - len(encoded))


def _tag(name: str, body: bytes) -> bytes:
    return f"<{name}>".encode() + body + f"</{name}>".encode()


def _timestamp(moment: dt.datetime) -> bytes:
    return f"{moment.day:02d} {MONTHS[moment.month - 1]} {moment.year} {moment:%H:%M}".encode()


def pack(variables: list[Variable], prepared: list[Prepared]) -> np.ndarray:
    """One batch as Stata records: one byte matrix, one column block at a time."""
    rows = len(prepared[0].valid) if prepared else 0
    width = sum(v.size for v in variables)
    records = np.empty((rows, width), dtype=np.uint8)
    start = 0
    for variable, column in zip(variables, prepared):
        end = start + variable.size
        if variable.number is None:
            records[:, start:end] = fixed_width(column.values, variable.width, 0)
        else:
            records[:, start:end] = as_bytes(_numbers(variable, column), variable.number.dtype)
        start = end
    return records


def _numbers(variable: Variable, column: Prepared) -> np.ndarray:
    kind = variable.column.kind
    if kind is Kind.code:
        values = column.code_numbers()
    elif kind is Kind.date:
        values = column.values.astype(np.float64) + DAYS_1960_TO_1970
    elif kind is Kind.month:
        values = column.values.astype("datetime64[D]").astype("datetime64[M]").astype(np.float64) + MONTHS_1960_TO_1970
    else:
        values = column.values.astype(np.float64)
    return np.where(column.valid, values, variable.number.missing)


def value_label_table(name: str, column: ExportColumn) -> bytes:
    entries = sorted((column.numbers[code], fit(label, 32000)) for code, label in column.labels.items())
    texts = [label.encode("utf-8") + b"\0" for _, label in entries]
    offsets = np.cumsum([0] + [len(t) for t in texts[:-1]]).astype("<i4")
    values = np.array([number for number, _ in entries], dtype="<i4")
    text = b"".join(texts)
    table = struct.pack("<ii", len(entries), len(text)) + offsets.tobytes() + values.tobytes() + text
    return _tag("lbl", struct.pack("<i", len(table)) + _field(name, 129) + b"\0\0\0" + table)


class DtaWriter:
    """Writes one table: ``write`` each batch in order, then ``close``."""

    def __init__(self, path: Path, variables: list[Variable], rows: int, label: str, timestamp: dt.datetime):
        self.variables, self.rows, self.written = variables, rows, 0
        self.handle = open(path, "wb")
        self.offsets = [0]
        label_bytes = fit(label, 320, 80).encode("utf-8")
        stamp = _timestamp(timestamp)
        header = _tag("header", _tag("release", str(RELEASE).encode()) + _tag("byteorder", b"LSF")
                      + _tag("K", struct.pack("<H", len(variables))) + _tag("N", struct.pack("<Q", rows))
                      + _tag("label", struct.pack("<H", len(label_bytes)) + label_bytes)
                      + _tag("timestamp", bytes([len(stamp)]) + stamp))
        self._out(b"<stata_dta>" + header)
        self._section("map", b"\0" * 8 * 14)
        self._section("variable_types", b"".join(struct.pack("<H", v.type_code) for v in variables))
        self._section("varnames", b"".join(_field(v.name, 129) for v in variables))
        self._section("sortlist", b"\0\0" * (len(variables) + 1))
        self._section("formats", b"".join(_field(v.display, 57) for v in variables))
        self._section("value_label_names", b"".join(_field(v.name if v.column.kind is Kind.code else "", 129) for v in variables))
        self._section("variable_labels", b"".join(_field(fit(v.column.title, 320, 80), 321) for v in variables))
        self._section("characteristics", b"")
        self.offsets.append(self.handle.tell())
        self._out(b"<data>")

    def _out(self, data: bytes) -> None:
        self.handle.write(data)

    def _section(self, name: str, body: bytes) -> None:
        self.offsets.append(self.handle.tell())
        self._out(_tag(name, body))

    def write(self, prepared: list[Prepared]) -> None:
        self.written += len(prepared[0].valid) if prepared else 0
        self.handle.write(pack(self.variables, prepared).data)

    def close(self) -> None:
        if self.written != self.rows:
            raise ExportError(f"{self.handle.name}: {self.written} rows written, {self.rows} declared; the extract changed")
        self._out(b"</data>")
        self._section("strls", b"")
        self._section("value_labels", b"".join(value_label_table(v.name, v.column) for v in self.variables if v.column.kind is Kind.code))
        self.offsets.append(self.handle.tell())
        self._out(b"</stata_dta>")
        self.offsets.append(self.handle.tell())
        self.handle.seek(self.offsets[1] + len(b"<map>"))
        self._out(struct.pack("<14Q", *self.offsets))
        self.handle.close()

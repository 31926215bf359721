"""Parquet, written with pyarrow a batch at a time: the extract's values, codes as dictionary columns.

A code column is an Arrow dictionary whose dictionary is the whole code list at the
approved level, in code-list order, so R's arrow reads it as a factor with every level
(even one no row has) and pandas as a categorical. Each field carries its title,
description, level and (codes) labels as field metadata; the Arrow schema is stored in
the file, so readers get the types back exactly. Everything else keeps the extract's
type (months stay text ``YYYY-MM``, as in the extract).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .arrays import Prepared
from .columns import ExportColumn, Kind

CODE_TYPE = pa.dictionary(pa.int32(), pa.string())


def field_metadata(column: ExportColumn) -> dict[bytes, bytes]:
    metadata = {"title": column.title, "description": column.description, "level": column.level}
    if column.kind is Kind.code:
        metadata["labels"] = json.dumps(column.labels, ensure_ascii=False)
    return {k.encode(): v.encode("utf-8") for k, v in metadata.items()}


def schema(source: pa.Schema, columns: list[ExportColumn], metadata: dict[str, str]) -> pa.Schema:
    fields = [
        pa.field(c.name, CODE_TYPE if c.kind is Kind.code else source.field(c.name).type, metadata=field_metadata(c))
        for c in columns
    ]
    return pa.schema(fields, metadata={k.encode(): v.encode("utf-8") for k, v in metadata.items()})


class ParquetTableWriter:
    """Writes one table: ``write`` each prepared batch, then ``close``."""

    def __init__(self, path: Path, source: pa.Schema, columns: list[ExportColumn], metadata: dict[str, str]):
        self.dictionaries = {c.name: pa.array(c.codes, pa.string()) for c in columns if c.kind is Kind.code}
        self.schema = schema(source, columns, metadata)
        self.writer = pq.ParquetWriter(path, self.schema)

    def write(self, prepared: list[Prepared]) -> None:
        arrays = [
            pa.DictionaryArray.from_arrays(p.arrow, self.dictionaries[p.column.name]) if p.column.kind is Kind.code else p.arrow
            for p in prepared
        ]
        self.writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()

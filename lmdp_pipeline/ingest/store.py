"""The warehouse and the quarantine: where accepted and refused deliveries end up.

Both are written so that no reader ever sees half a file: the warehouse Parquet file
of a month is written under a hidden unique name beside its target and renamed over
it in one step, and a quarantine folder is complete before it gets its final name.
Months are separate files, so parallel runs of different months never touch the same
path.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import duckdb

from ..contracts import Contract
from ..files import private_dir, write_private_text
from ..paths import PRIVATE_FILE, warehouse_candidate, warehouse_file
from ..sql import quote_identifier, quote_literal
from .report import ValidationReport



def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def stored_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Row count of a warehouse file from its Parquet footer (0 when absent)."""
    if not path.exists():
        return 0
    return con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({quote_literal(path)})").fetchone()[0] or 0


def write_candidate(con: duckdb.DuckDBPyConnection, contract: Contract, warehouse: Path, month: str, source_sha256: str) -> Path:
    """Write the staged variables to a hidden file beside the month's target; ``promote`` makes it visible.

    The file carries the delivery's sha256 and the contract version in its Parquet
    key-value metadata, so an extract can record its inputs without re-hashing them.
    """
    target = warehouse_file(warehouse, contract.register, month)
    private_dir(target.parent)
    partial = warehouse_candidate(warehouse, contract.register, month, uuid.uuid4().hex)
    columns = ", ".join(quote_identifier(v.name) for v in contract.variables)
    try:
        con.execute(
            f"COPY (SELECT {columns} FROM staged) TO {quote_literal(partial)} (FORMAT parquet, COMPRESSION zstd, "
            f"KV_METADATA {{source_sha256: {quote_literal(source_sha256)}, contract_version: {quote_literal(contract.version)}}})"
        )
        os.chmod(partial, PRIVATE_FILE)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def promote(partial: Path, contract: Contract, warehouse: Path, month: str) -> Path:
    """Replace the month's warehouse file with the candidate in one rename."""
    target = warehouse_file(warehouse, contract.register, month)
    os.replace(partial, target)
    return target


def quarantine(delivery: Path, report: ValidationReport, quarantine_dir: Path) -> Path:
    """Keep a copy of the refused file with its report; return the report's path."""
    name = f"{delivery.stem}_{report.sha256[:12]}" if report.sha256 else delivery.stem
    final = quarantine_dir / report.register / name
    staging = final.with_name(f".{name}.{uuid.uuid4().hex}")
    private_dir(staging)
    try:
        if delivery.exists():
            shutil.copyfile(delivery, staging / delivery.name)
            os.chmod(staging / delivery.name, PRIVATE_FILE)
        write_private_text(staging / "report.md", report.to_markdown())
        write_private_text(staging / "report.json", json.dumps(report.to_dict(), indent=2, default=str))
        if final.exists():
            shutil.rmtree(final)  # the same file refused again: keep one copy
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / "report.md"

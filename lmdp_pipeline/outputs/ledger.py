"""What the platform remembers of a project's outputs: the decision on each request, and a ledger of releases.

- ``decisions/<request>.json``: the latest decision on a request (released, review or
  refused), why, on which version of the request (its sha256), by which run. The CLI and
  the sensor read it; ``released`` is final.
- ``ledger/<n>-<request>.json``: one record per release, numbered in release order: each
  table's definition and, for each published cell, its grouping, persons and the
  fingerprint of its persons (never a pseudonym, never a value). Differencing compares
  every new cell with these. A record is written before its files are published, so a
  release interrupted in between leaves a record of something never published (stricter
  later checks), never a publication without a record.

Both are written whole under a hidden name and renamed (0600); the ledger is written
under the project's output lock, so two releases never take the same number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..contracts import ContractSet
from ..files import write_private
from ..paths import PRIVATE_DIR, PlatformPaths
from .differencing import EarlierTable
from .extract import ExtractDescription, resolve_table
from .request import TableSpec

RELEASED, REVIEW, REFUSED = "released", "review", "refused"


def _write(path: Path, record: dict, exclusive: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    write_private(path, json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", exclusive=exclusive)
    return path


def write_decision(paths: PlatformPaths, project: str, request: str, decision: dict) -> Path:
    return _write(paths.output_decision_file(project, request), decision)


def read_decision(paths: PlatformPaths, project: str, request: str) -> dict | None:
    path = paths.output_decision_file(project, request)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"status": "unreadable", "reasons": [f"{path} cannot be read"]}


@dataclass(frozen=True)
class ReleasedTable:
    """A table as the ledger keeps it: its definition and its published cells' fingerprints (``published_cells``)."""

    name: str
    spec: TableSpec
    cells: dict[str, list]

    def as_record(self) -> dict:
        return {
            "name": self.name,
            "spec": self.spec.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json"),
            "rows": self.spec.rows,
            "columns": self.spec.columns,
            "cells": self.cells,
        }


def record_release(paths: PlatformPaths, project: str, request: str, record: dict, tables: list[ReleasedTable]) -> Path:
    """Append a release to the project's ledger (call under the project's output lock)."""
    sequence = len(paths.output_ledger_records(project)) + 1
    entry = {**record, "sequence": sequence, "tables": [t.as_record() for t in tables]}
    return _write(paths.output_ledger_record(project, sequence, request), entry, exclusive=True)


def earlier_tables(paths: PlatformPaths, project: str, description: ExtractDescription, contracts: ContractSet) -> list[EarlierTable]:
    """Every table released for the project, each resolved against the current extract where it still resolves.

    Their cells stay in the ledger's files, which ``differencing`` reads with DuckDB.
    """
    found = []
    for path in paths.output_ledger_records(project):
        record = json.loads(path.read_text(encoding="utf-8"))
        for position, table in enumerate(record["tables"], start=1):
            spec = TableSpec.model_validate(table["spec"])
            resolved, problems = resolve_table(description, contracts, path, table["name"], spec)
            found.append(EarlierTable(record["request"], table["name"], record["released"], None if problems else resolved,
                                      spec.rows, spec.columns, spec.from_, ledger=(str(path), position)))
    return found

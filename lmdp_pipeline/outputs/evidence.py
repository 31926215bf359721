"""The evidence of a decision, in the format ACRO writes: ``results.json``, ``checksums/`` and ``SHA256SUMS``.

ACRO (AI-SDC/ACRO, ``acro/record.py``, ``Records.finalise_json``, version 1.0.2) writes
one ``results.json`` per folder of outputs: ``{"version", "tool", "results": {uid: {uid,
status, type, properties, files: [{name, sdc}], outcome, command, summary, timestamp,
comments, exception, fair}}}``; ``sdc`` holds per file a ``summary`` (cells per check)
and ``cells`` (check -> [[row, column], ...] positions in the file's data); ``outcome`` is
the table's per-cell outcome as pandas writes a DataFrame (``{column: {row: "ok" |
"check; check; "}}``). It also writes ``checksums/<file>.txt`` (sha256) for every file.
SACRO Viewer, the checkers' tool, reads exactly these (``version`` at least 0.4, one
valid JSON in the folder, the checksums); so does ACRO's own ``load_records``.

Two renderings of one decision, because reasons are themselves information:

- **for checkers** (``checking/<request>/``): every cell's reasons (threshold, zero,
  dominance, p-percent, differencing with the earlier release named, secondary), the
  notes, the earlier releases compared. "This cell is a zero" or "two persons hold 90%
  of it" must not leave the platform.
- **released** (``released/<request>/``): suppressed cells are only ``suppressed``, with
  no reason and no primary/secondary distinction (which would narrow the ranges a reader
  can compute for them).

``SHA256SUMS`` (``sha256sum -c`` format) lists every file of the folder.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from .. import __version__
from ..files import sha256_of
from .published import Grid
from .rules import NEGATIVE, SECONDARY, SUPPRESSING
from .suppression import is_suppressed
from .tables import TableCells

ACRO_VERSION = "1.0.2"
"""The ACRO release whose results.json this follows."""
RESULTS = "results.json"
CHECKSUMS = "checksums"
SHA256SUMS = "SHA256SUMS"
SUPPRESSED_FLAG = "suppressed"


def timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _flags(cell, full: bool) -> list[str]:
    if full:
        return [r for r in cell.reasons if r in SUPPRESSING or r in (SECONDARY, NEGATIVE)]
    return [SUPPRESSED_FLAG] if is_suppressed(cell) else []


def table_sdc(cells: TableCells, grid: Grid, full: bool) -> tuple[dict, dict]:
    """ACRO's ``sdc`` (summary and cell positions per check) and ``outcome`` of one table."""
    positions: dict[str, list[list[int]]] = {}
    outcome: dict[str, dict[str, str]] = {}
    header, row_labels = grid.header[1:], grid.labels
    for cell in cells.ordered():
        x, y = cells.position(cell)
        flags = _flags(cell, full)
        for flag in flags:
            positions.setdefault(flag, []).append([x, y])
        outcome.setdefault(header[y], {})[row_labels[x]] = "".join(f"{f}; " for f in flags) or "ok"
    summary: dict = {flag: len(found) for flag, found in positions.items()}
    summary[SUPPRESSED_FLAG] = sum(is_suppressed(c) for c in cells.cells.values())
    return {"summary": summary, "cells": positions}, outcome


def describe(cells: TableCells) -> str:
    """The table's definition in one sentence: ACRO's ``command``."""
    spec = cells.table.spec
    what = "persons" if spec.statistic == "count" else (
        "share of persons (%)" if spec.statistic == "share" else f"{spec.statistic} of {spec.value}")
    source = spec.from_ + (" joined to individuals" if spec.with_individuals else "")
    by = spec.rows + (f" and {spec.columns}" if spec.columns else "")
    where = f" where {json.dumps(_plain(spec.filter), ensure_ascii=False)}" if spec.filter else ""
    return f"{what} in {source}, by {by}{where}, with totals"


def _plain(conditions) -> dict:
    return {k: {c.operator: c.values if c.operator in ("in", "not_in", "between") else c.values[0]} for k, c in conditions.items()}


def table_entry(cells: TableCells, grid: Grid, status: str, files: list[str], full: bool, comments: list[str]) -> dict:
    spec = cells.table.spec
    sdc, outcome = table_sdc(cells, grid, full)
    suppressed = [c for c in cells.cells.values() if is_suppressed(c)]
    secondary = sum(c.secondary for c in suppressed)
    detail = f" ({len(suppressed) - secondary} primary, {secondary} secondary)" if full and suppressed else ""
    return {
        "uid": cells.table.name,
        "status": status,
        "type": "table",
        "properties": {
            "method": "crosstab" if spec.columns else "frequency table",
            "mitigation": "suppress",
            **spec.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json"),
        },
        "files": [{"name": name, "sdc": sdc} for name in files],
        "outcome": outcome,
        "command": describe(cells),
        "summary": f"{status}; {len(suppressed)} of {len(cells.cells)} cells suppressed{detail}",
        "timestamp": timestamp(),
        "comments": comments,
        "exception": "",
        "fair": {"check_status": _check_status(cells)} if full else {},
    }


def _check_status(cells: TableCells) -> dict[str, str]:
    raised = {r for c in cells.cells.values() for r in c.reasons}
    return {rule: ("fail" if rule in raised else "pass") for rule in (*SUPPRESSING, NEGATIVE)}


def attachment_entry(name: str, kind: str, declared: dict, status: str, comments: list[str]) -> dict:
    return {
        "uid": name,
        "status": status,
        "type": "custom",
        "properties": {"kind": kind, **declared},
        "files": [{"name": name, "sdc": {}}],
        "outcome": {},
        "command": "custom",
        "summary": f"{status}; a {kind} the platform cannot recompute: an output checker decides",
        "timestamp": timestamp(),
        "comments": comments,
        "exception": "",
        "fair": {},
    }


def write_results(folder: Path, outputs: dict[str, dict], request: dict) -> None:
    """``results.json``, then ``checksums/<file>.txt`` and ``SHA256SUMS`` over every file of ``folder``."""
    document = {
        "version": ACRO_VERSION,
        "tool": {"@type": "SoftwareApplication", "name": "lmdp-pipeline output checking", "version": __version__},
        "results": outputs,
        "request": request,
    }
    (folder / RESULTS).write_text(json.dumps(document, indent=4, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    (folder / CHECKSUMS).mkdir()
    lines = []
    for path in files:
        digest = sha256_of(path)
        (folder / CHECKSUMS / f"{path.name}.txt").write_text(digest, encoding="utf-8")
        lines.append(f"{digest}  {path.name}\n")
    (folder / SHA256SUMS).write_text("".join(lines), encoding="utf-8")

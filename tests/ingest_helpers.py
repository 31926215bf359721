"""Helpers for ingestion tests: a small landing zone ingested in dependency order."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lmdp_pipeline.ingest import ingest_delivery
from lmdp_pipeline.paths import PlatformPaths

ORDER = [
    "individuals", "enterprises", "affiliation", "jobs", "cash_benefits",
    "absences", "reclassifications", "family_links", "benefits_in_kind",
]


def ingest_month(paths: PlatformPaths, contracts, month: str) -> None:
    for register in ORDER:
        ingest_delivery(paths, contracts, register, month)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under a folder with its sha256: equal snapshots mean nothing changed."""
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }

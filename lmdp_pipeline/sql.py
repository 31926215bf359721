"""Small helpers for SQL the pipeline composes itself."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB; names come from validated contracts."""
    return '"' + name.replace('"', '""') + '"'

"""Small helpers for SQL the pipeline composes itself."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB; names come from validated contracts."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a string literal (file paths) for DuckDB statements that take no parameters."""
    return "'" + str(text).replace("'", "''") + "'"

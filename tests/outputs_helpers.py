"""Hand-made extracts and requests for the output-checking tests: every count is computable by hand.

An extract here is a real DuckDB file with the tables, ``_dictionary`` and ``_manifest`` a
build writes (only the columns the tests need), so the code under test reads it exactly
as it reads a built one. Persons are numbered; their pseudonyms are 16 hex digits.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import yaml

from lmdp_pipeline.paths import PlatformPaths

PROJECT = "P2026-090"
RESEARCHERS = ["a.researcher", "b.researcher"]


def pid(number: int) -> str:
    """A person's pseudonym: 16 hex digits, like the build's."""
    return f"{0x5a5a000000000000 + number * 7919:016x}"


def column(name: str, data_type: str, level: str = "as delivered", codes: dict | None = None) -> tuple:
    return name, data_type, level, codes


PERSON = column("person_id", "VARCHAR", "pseudonym")


def make_extract(paths: PlatformPaths, tables: dict[str, tuple[list[tuple], list[tuple]]], project: str = PROJECT,
                 researchers: list[str] | None = None, manifest: dict[str, str] | None = None) -> Path:
    """``tables``: name -> (columns, rows); writes ``extracts/<project>.duckdb`` with ``_dictionary`` and ``_manifest``."""
    path = paths.extract_file(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE _dictionary (table_name VARCHAR, column_name VARCHAR, data_type VARCHAR, level VARCHAR, "
                    "description VARCHAR, codes VARCHAR)")
        for table, (columns, rows) in tables.items():
            con.execute(f'CREATE TABLE "{table}" ({", ".join(f"{n} {t}" for n, t, _, _ in columns)})')
            if rows:
                con.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" for _ in columns)})', rows)
            con.executemany("INSERT INTO _dictionary VALUES (?, ?, ?, ?, ?, ?)", [
                (table, n, t, level, f"{n} (test)", json.dumps(codes) if codes else None) for n, t, level, codes in columns])
        con.execute("CREATE TABLE _manifest (item VARCHAR, value VARCHAR)")
        con.executemany("INSERT INTO _manifest VALUES (?, ?)", [
            ("project", project), ("researchers", json.dumps(researchers or RESEARCHERS)), ("key_id", "key-test"),
            ("build_time", "2026-11-30T00:00:00+00:00"), ("period", "2024-01 to 2024-03"), ("approval_sha256", "0" * 64),
            *(manifest or {}).items(),
        ])
    return path


def write_request(paths: PlatformPaths, name: str, tables: dict | None = None, project: str = PROJECT,
                  requester: str = "a.researcher", **extra) -> Path:
    body = {"project": project, "requester": requester, "title": f"test request {name}", **extra}
    if tables is not None:
        body["tables"] = tables
    path = paths.output_request_file(project, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def grid_rows(cells: dict[tuple[str, str], int], start: int = 0) -> tuple[list[tuple], int]:
    """Rows of a person table where cell (a, b) holds exactly ``cells[(a, b)]`` persons, each in one row."""
    rows, number = [], start
    for (a, b), persons in cells.items():
        for _ in range(persons):
            rows.append((pid(number), a, b))
            number += 1
    return rows, number


def read_csv(path: Path) -> list[list[str]]:
    import csv

    return list(csv.reader(path.read_text(encoding="utf-8").splitlines()))

"""Benchmark cases for the researchers' exports of the extract benchmark's extract (BENCH-001, about 3.6 million rows).

The extract is built once by the pipeline (``extract_cases.pipeline``) and kept. Three
cases: ``copy`` (the floor: DuckDB's ``COPY`` of every table to Parquet), ``exports``
(every table to Stata, SPSS and Parquet with labels, as a build publishes them) and
``package`` (the extract and those files encrypted with age to one recipient).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from . import extract_cases

PROJECT = "BENCH-001"


def extract(home: Path) -> Path:
    path = extract_cases.pipeline_home(home).extract_file(PROJECT)
    if not path.exists():
        extract_cases.pipeline(home)
    return path


def output(home: Path, name: str) -> Path:
    folder = home / "bench" / f"exports-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    return folder


def prepare(home: Path) -> tuple[int, float]:
    """Not timed: the extract, built once."""
    extract(home)
    return 0, 0.0


def copy(home: Path) -> tuple[int, float]:
    source, folder = extract(home), output(home, "copy")
    tables = list(extract_cases.plan().tables())
    started = time.perf_counter()
    with duckdb.connect(str(source), read_only=True) as con:
        for table in tables:
            con.execute(f"COPY \"{table}\" TO '{folder / table}.parquet' (FORMAT parquet)")
        rows = sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables)
    return rows, time.perf_counter() - started


def exports(home: Path) -> tuple[int, float]:
    import datetime as dt

    from lmdp_pipeline.exports.columns import export_tables
    from lmdp_pipeline.exports.tables import export_table

    source, folder = extract(home), output(home, "ours")
    tables = export_tables(extract_cases.plan())
    started = time.perf_counter()
    with duckdb.connect(str(source), read_only=True) as con:
        written = [export_table(con, table, columns, folder, f"{PROJECT} {table}", dt.datetime(2026, 1, 1), {"project": PROJECT})
                   for table, columns in tables.items()]
    return sum(t.rows for t in written), time.perf_counter() - started


def package(home: Path) -> tuple[int, float]:
    import pyrage

    from lmdp_pipeline.exports.package import Member, write_package
    from lmdp_pipeline.files import sha256_of

    source, folder = extract(home), home / "bench" / "exports-ours"
    files = [source, *sorted(folder.iterdir())]
    target = home / "bench" / f"{PROJECT}.tar.age"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    members = [Member(p.name, p, sha256_of(p)) for p in files]
    write_package(target, target.with_suffix(".partial"), PROJECT, members, [pyrage.x25519.Identity.generate().to_public()], 0)
    return sum(p.stat().st_size for p in files) // 1_000_000, time.perf_counter() - started

"""One benchmark case per process, so each peak memory is its own.

Usage: python -m benchmarks.cases CASE HOME REGISTER MONTH
Prints one JSON line: seconds, peak_rss_mb, rows. Each case times only its own work,
after its imports.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path


def bare_copy(home: Path, register: str, month: str) -> tuple[int, float]:
    """The floor: DuckDB reading the CSV and writing Parquet, nothing else."""
    import duckdb

    source = home / "landing" / register / f"{register}_{month}.csv"
    target = home / "bench" / f"{register}_{month}.bare.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{source}')) TO '{target}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    return con.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0], seconds


def ingest(home: Path, register: str, month: str) -> tuple[int, float]:
    """The pipeline's ingestion: structure, typing, GX suite, atomic Parquet write (GX already imported)."""
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.ingest import ingest_delivery
    from lmdp_pipeline.ingest.suite import import_gx
    from lmdp_pipeline.paths import PlatformPaths

    import_gx()
    contracts = load_contracts()
    started = time.perf_counter()
    rows = ingest_delivery(PlatformPaths(home), contracts, register, month).rows_stored
    return rows, time.perf_counter() - started


def gx_import(home: Path, register: str, month: str) -> tuple[int, float]:
    from lmdp_pipeline.ingest.suite import import_gx

    started = time.perf_counter()
    import_gx()
    return 0, time.perf_counter() - started


PERSON_MONTHS = "person_months.parquet"


def person_months(home: Path) -> Path:
    """12 monthly rows for each of 1,000,000 persons (12,000,000 rows), made once in DuckDB."""
    import duckdb

    path = home / "bench" / PERSON_MONTHS
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        duckdb.connect().execute(
            f"""COPY (SELECT lpad((1000000000000 + p * 7919)::VARCHAR, 13, '0') AS matricule,
                             '2024-' || lpad((m + 1)::VARCHAR, 2, '0') AS month,
                             (p * 31 + m) % 7 AS status, (p % 5000) * 1.5 + m AS amount
                      FROM range(1000000) a(p), range(12) b(m)) TO '{path}' (FORMAT parquet)"""
        )
    return path


def bare_copy_person_months(home: Path, register: str, month: str) -> tuple[int, float]:
    """The floor for pseudonymisation: the same rows copied, identifier and all."""
    import duckdb

    source = person_months(home)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM '{source}') TO '{source.with_suffix('.bare.parquet')}' (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM '{source}'").fetchone()[0], time.perf_counter() - started


def pseudonymise_person_months(home: Path, register: str, month: str) -> tuple[int, float]:
    """HMAC over the distinct persons, joined back, matricule dropped, collision check included."""
    import secrets

    import duckdb

    from lmdp_pipeline.contracts import IdentifierKind
    from lmdp_pipeline.keys import ProjectKey
    from lmdp_pipeline.projects.pseudonyms import build_map

    source = person_months(home)
    key = ProjectKey("BENCH-001", "key-bench", "", secrets.token_bytes(32))
    started = time.perf_counter()
    con = duckdb.connect()
    build_map(con, f"'{source}'", "matricule", IdentifierKind.person, key, "person_map")
    con.execute(
        f"""COPY (SELECT m.pseudonym AS person_id, t.* EXCLUDE (matricule)
                  FROM '{source}' t JOIN person_map m ON t.matricule = m.identifier)
            TO '{source.with_suffix('.pseudonymised.parquet')}' (FORMAT parquet)"""
    )
    return con.execute(f"SELECT count(*) FROM '{source}'").fetchone()[0], time.perf_counter() - started


def _case_in(module: str, name: str):
    """A case that lives in another module of benchmarks/ and needs only the home."""
    def case(home: Path, register: str, month: str) -> tuple:
        return getattr(importlib.import_module(f"benchmarks.{module}"), name)(home)

    return case




CASES = {
    "exports_prepare": _case_in("export_cases", "prepare"),
    "exports_copy": _case_in("export_cases", "copy"),
    "exports_ours": _case_in("export_cases", "exports"),
    "exports_package": _case_in("export_cases", "package"),
    "extract_bare_copy": _case_in("extract_cases", "bare_copy"),
    "extract_pipeline": _case_in("extract_cases", "pipeline"),
    "extract_pandas": _case_in("extract_cases", "pandas_extract"),
    "outputs_release": _case_in("output_cases", "release"),
    "outputs_release_after_100": _case_in("output_cases", "release_after_100"),
    "bare_copy": bare_copy,
    "ingest": ingest,
    "gx_import": gx_import,
    "bare_copy_person_months": bare_copy_person_months,
    "pseudonymise_person_months": pseudonymise_person_months,
}


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM). ru_maxrss would also count the parent's
    memory at fork time, which Linux carries across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    case, home, register, month = sys.argv[1:5]
    rows, seconds, *extra = CASES[case](Path(home), register, month)  # some cases add a dict of further measures
    peak = peak_memory_mb()
    print(json.dumps({"case": case, "register": register, "seconds": seconds, "peak_rss_mb": peak, "rows": rows, **(extra[0] if extra else {})}))


if __name__ == "__main__":
    main()

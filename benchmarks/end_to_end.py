"""End-to-end cases: ``lmdp refresh`` and ``lmdp build`` as a user runs them, against bare DuckDB copies.

Every case is a whole process, timed from outside (interpreter start, imports, Dagster
runs on a fresh SQLite instance, everything a user waits for), on 200,000 persons over
the twelve months of 2024, generated once under ``bench_out/e2e/``:

- ``refresh``: ``lmdp refresh`` of every month into an empty warehouse, against one
  ``python`` process copying the same 108 CSV files to Parquet with DuckDB;
- ``build``: ``lmdp build P2026-001`` (the sample approval: a cohort of employees born
  1960-1975, individuals, jobs and absences over twelve months, and a survey), against
  one ``python`` process copying the same rows of the same warehouse into a DuckDB file;
- ``library_refresh`` and ``library_build``: the same work through the library alone
  (no Dagster run, no event log), in processes started the same way: how much of each
  command is the work it must do (validation, risk, checks, exports) and how much is
  Dagster's bookkeeping;
- ``refresh_postgres`` and ``build_postgres``: the two commands on the production
  instance (deploy/dagster.yaml on a throwaway PostgreSQL cluster, when PostgreSQL is
  installed: ``make postgres``).

Run one case: ``python -m benchmarks.end_to_end CASE`` prints the JSON line
``benchmarks.cases`` prints (seconds, peak memory of the largest process, rows).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lmdp_pipeline.paths import PROJECT_ROOT, PlatformPaths

PERSONS = 200_000
MONTHS = "2024-01:2024-12"
PROJECT = "P2026-001"
ROOT = PROJECT_ROOT / "bench_out" / "e2e"
SOURCE = ROOT / "source"
BUILD_HOME = ROOT / "build-home"
LMDP = str(Path(sys.executable).parent / "lmdp")


def _env(home: Path) -> dict:
    env = os.environ | {"LMDP_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                        "LMDP_MASTER_KEY_FILE": str(ROOT / "master-key.b64")}
    env.pop("LMDP_MASTER_KEY", None)
    return env


def _fresh_home(home: Path) -> None:
    """A home holding the source's deliveries (hard links), approvals and external files, nothing else."""
    shutil.rmtree(home, ignore_errors=True)
    for source in sorted((SOURCE / "landing").glob("*/*.csv")):
        target = home / "landing" / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)
    for zone in ("approvals", "external"):
        shutil.copytree(SOURCE / zone, home / zone)


def _lmdp(home: Path, *args: str) -> None:
    done = subprocess.run([LMDP, *args], env=_env(home), cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lmdp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def prepare() -> None:
    """The deliveries (once), the master key (once), and a refreshed home for the build cases (once)."""
    from lmdp_pipeline.synthetic import generate

    marker = SOURCE / f".generated-{PERSONS}"
    if not marker.exists():
        print(f"generating {PERSONS:,} persons over {MONTHS} in {SOURCE} ...", flush=True)
        shutil.rmtree(SOURCE, ignore_errors=True)
        generate(SOURCE, persons=PERSONS, period=MONTHS, seed=1)
        marker.touch()
    key = ROOT / "master-key.b64"
    if not key.exists():
        key.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        key.chmod(0o600)
    if not (BUILD_HOME / ".refreshed").exists():
        print(f"refreshing {BUILD_HOME} for the build cases ...", flush=True)
        _fresh_home(BUILD_HOME)
        _lmdp(BUILD_HOME, "refresh")
        _lmdp(BUILD_HOME, "build", PROJECT)  # the project's key exists before the timed builds, as for a rebuild
        (BUILD_HOME / ".refreshed").touch()


def _timed(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall time of one whole process (and its children), and the peak memory of the largest of them, in MB."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _warehouse_rows(home: Path) -> int:
    import duckdb

    with duckdb.connect() as con:
        return con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata('{home}/warehouse/*/*.parquet')").fetchone()[0]


def _extract_rows(path: Path, tables: tuple[str, ...]) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)


REGISTER_TABLES = ("individuals", "jobs", "absences")


def refresh() -> tuple[int, float, float]:
    home = ROOT / "refresh-home"
    _fresh_home(home)
    seconds, peak = _timed([LMDP, "refresh"], _env(home))
    return _warehouse_rows(home), seconds, peak


def bare_refresh() -> tuple[int, float, float]:
    out = ROOT / "bare-refresh"
    shutil.rmtree(out, ignore_errors=True)
    seconds, peak = _timed([sys.executable, "-m", "benchmarks.end_to_end", "bare-refresh-process", str(SOURCE), str(out)])
    import duckdb

    with duckdb.connect() as con:
        rows = con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata('{out}/*.parquet')").fetchone()[0]
    return rows, seconds, peak


def build() -> tuple[int, float, float]:
    seconds, peak = _timed([LMDP, "build", PROJECT], _env(BUILD_HOME))
    return _extract_rows(BUILD_HOME / "extracts" / f"{PROJECT}.duckdb", REGISTER_TABLES), seconds, peak


def bare_build() -> tuple[int, float, float]:
    target = ROOT / "bare-extract.duckdb"
    target.unlink(missing_ok=True)
    seconds, peak = _timed([sys.executable, "-m", "benchmarks.end_to_end", "bare-build-process", str(BUILD_HOME / "warehouse"), str(target)])
    rows = _extract_rows(target, REGISTER_TABLES)
    built = _extract_rows(BUILD_HOME / "extracts" / f"{PROJECT}.duckdb", REGISTER_TABLES)
    if rows != built:
        raise RuntimeError(f"the bare copy holds {rows:,} rows, the extract {built:,}: they no longer copy the same rows")
    return rows, seconds, peak


def library_refresh() -> tuple[int, float, float]:
    home = ROOT / "library-home"
    _fresh_home(home)
    seconds, peak = _timed([sys.executable, "-m", "benchmarks.end_to_end", "library-refresh-process", str(home)], _env(home))
    return _warehouse_rows(home), seconds, peak


def library_build() -> tuple[int, float, float]:
    seconds, peak = _timed([sys.executable, "-m", "benchmarks.end_to_end", "library-build-process", str(BUILD_HOME)], _env(BUILD_HOME))
    return _extract_rows(BUILD_HOME / "extracts" / f"{PROJECT}.duckdb", REGISTER_TABLES), seconds, peak


def _on_postgres(home: Path, *args: str) -> tuple[float, float]:
    """``lmdp ARGS`` on the production instance (deploy/dagster.yaml) over a fresh PostgreSQL cluster; the cluster's
    start and stop are not timed."""
    from tests.postgres_cluster import temporary_cluster

    with temporary_cluster() as postgres:
        dagster_home = home / "dagster"
        shutil.rmtree(dagster_home, ignore_errors=True)
        dagster_home.mkdir(mode=0o700)
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        return _timed([LMDP, *args], _env(home) | postgres)


def refresh_postgres() -> tuple[int, float, float]:
    home = ROOT / "refresh-postgres-home"
    _fresh_home(home)
    seconds, peak = _on_postgres(home, "refresh")
    return _warehouse_rows(home), seconds, peak


def build_postgres() -> tuple[int, float, float]:
    """The build case's home (its warehouse, keys, kept search answer and last extract) on a PostgreSQL instance."""
    home = ROOT / "build-postgres-home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(BUILD_HOME, home, ignore=shutil.ignore_patterns("dagster"), symlinks=True)
    seconds, peak = _on_postgres(home, "build", PROJECT)
    return _extract_rows(home / "extracts" / f"{PROJECT}.duckdb", REGISTER_TABLES), seconds, peak


CASES = {"refresh": refresh, "bare_refresh": bare_refresh, "build": build, "bare_build": bare_build,
         "library_refresh": library_refresh, "library_build": library_build,
         "refresh_postgres": refresh_postgres, "build_postgres": build_postgres}


def _median(case: str, repeats: int) -> dict:
    import statistics

    runs = []
    for _ in range(repeats):
        output = subprocess.run([sys.executable, "-m", "benchmarks.end_to_end", case], cwd=PROJECT_ROOT, check=True,
                                capture_output=True, text=True).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "rows": runs[0]["rows"], "all": [round(r["seconds"], 1) for r in runs]}


def section(args, home: Path) -> list[str]:
    """``make bench``'s end-to-end section: the two commands against their bare copies, and the same work done by
    the library without Dagster (the floor of each command while it runs the validations and measures it must)."""
    from tests.postgres_cluster import PostgresMissing, pg_bin

    prepare()
    try:
        pg_bin("initdb")
        postgres = True
    except PostgresMissing:
        postgres = False
    results = {}
    cases = ["bare_refresh", "library_refresh", "refresh", "bare_build", "library_build", "build"]
    for case in cases + (["refresh_postgres", "build_postgres"] if postgres else []):
        results[case] = _median(case, args.repeats)
        print(f"end to end {case}: {results[case]['seconds']:.1f} s (runs {results[case]['all']})", flush=True)
    lines = [
        f"End to end, as users run it: whole processes, {PERSONS:,} persons over the 12 months of 2024 (all nine registers), "
        "on the SQLite instance of `make demo` and on the production PostgreSQL instance of deploy/ (targets: `lmdp refresh` "
        "at most 3x the bare copy, `lmdp build` at most 1.5x). The library column is the same work without Dagster, in "
        "processes started the same way (`ingest_delivery` for every delivery, months handed to as many worker processes; "
        "`build_project` then `export_project`):",
        "",
        "| command | rows | bare DuckDB process | library, no Dagster | lmdp, SQLite | lmdp, PostgreSQL | library / bare "
        "| lmdp / bare (SQLite, PostgreSQL) | peak memory: bare, library, lmdp (largest process) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, bare, library, ours in (
            ("`lmdp refresh` (12 months into an empty warehouse) vs CSV to Parquet of the same 108 files",
             "bare_refresh", "library_refresh", "refresh"),
            (f"`lmdp build {PROJECT}` vs a copy of the same rows into a DuckDB file", "bare_build", "library_build", "build")):
        b, lib, o = results[bare], results[library], results[ours]
        pg = results.get(f"{ours}_postgres")
        on_pg = f"{pg['seconds']:.1f} s" if pg else "not run (no PostgreSQL)"
        pg_ratio = f", {pg['seconds'] / b['seconds']:.1f}x" if pg else ""
        lines.append(f"| {label} | {o['rows']:,} | {b['seconds']:.1f} s | {lib['seconds']:.1f} s | {o['seconds']:.1f} s | {on_pg} "
                     f"| {lib['seconds'] / b['seconds']:.1f}x | {o['seconds'] / b['seconds']:.1f}x{pg_ratio} "
                     f"| {b['peak_rss_mb']:.0f}, {lib['peak_rss_mb']:.0f}, {o['peak_rss_mb']:.0f} MB |")
    return lines + ["", "Each process timed from outside, medians of the runs: "
                    + "; ".join(f"{case} {r['all']}" for case, r in results.items()) + ".", ""]


# --- the bare processes: what DuckDB alone does with the same files ---------------------------------


def bare_refresh_process(source: Path, out: Path) -> None:
    """Every delivery CSV to Parquet, nothing else."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for path in sorted((source / "landing").glob("*/*.csv")):
        con.execute(f"COPY (SELECT * FROM read_csv('{path}')) TO '{out / path.stem}.parquet' (FORMAT parquet)")


def bare_build_process(warehouse: Path, target: Path) -> None:
    """The rows of P2026-001's tables copied as they are: its population (employees in 2024 born 1960-1975), twelve months."""
    import duckdb

    con = duckdb.connect(str(target))
    con.execute(f"""CREATE TEMP TABLE population AS
        SELECT DISTINCT a_matricule AS person FROM '{warehouse}/affiliation/*.parquet'
        WHERE a_month BETWEEN '2024-01' AND '2024-12' AND a_status = 'employee'
        INTERSECT
        SELECT DISTINCT i_matricule FROM '{warehouse}/individuals/*.parquet'
        WHERE i_month BETWEEN '2024-01' AND '2024-12' AND i_birth_date BETWEEN DATE '1960-01-01' AND DATE '1975-12-31'""")
    for table, prefix in (("individuals", "i"), ("jobs", "j"), ("absences", "ab")):
        con.execute(f"""CREATE TABLE {table} AS SELECT * FROM '{warehouse}/{table}/*.parquet'
            WHERE {prefix}_month BETWEEN '2024-01' AND '2024-12' AND {prefix}_matricule IN (SELECT person FROM population)""")
    con.close()


# --- the library processes: the same work as lmdp, without Dagster --------------------------------------


def _ingest_month(home: str, month: str, registers: list[str]) -> None:
    """One month's delivered registers in a worker process, as ``lmdp refresh`` hands them out, each after the
    registers it references."""
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.ingest import ingest_delivery

    contracts, paths = load_contracts(), PlatformPaths(Path(home))
    for register in contracts.ingestion_order:
        if register in registers:
            ingest_delivery(paths, contracts, register, month)


def library_refresh_process(home: Path) -> None:
    """Every delivery through ``ingest_delivery`` (typing, rules, GX, Parquet), months handed to as many worker
    processes as ``lmdp refresh`` starts: a refresh without its Dagster runs, events and audit lines."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from lmdp_cli.registers import REFRESH_WORKERS, delivered_months
    from lmdp_pipeline.paths import secure_home

    paths = PlatformPaths(home)
    secure_home(paths)
    delivered = delivered_months(paths)
    months = sorted(delivered)
    with ProcessPoolExecutor(max_workers=min(REFRESH_WORKERS, len(months)), mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_ingest_month, [str(home)] * len(months), months, [delivered[m] for m in months]))


def library_build_process(home: Path) -> None:
    """``build_project`` and ``export_project``, as the two steps of ``project_build`` call them, without Dagster (its
    run, events and the audit heads it records); the approval on disk is built, as ``lmdp build`` builds it."""
    from lmdp_pipeline.audit import AuditLog
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.exports.publish import export_project
    from lmdp_pipeline.keys import Keystore, MasterKey
    from lmdp_pipeline.paths import secure_home
    from lmdp_pipeline.projects.lifecycle import build_project

    paths, contracts = PlatformPaths(home), load_contracts()
    secure_home(paths)
    audit = AuditLog(paths.audit)
    master = MasterKey.from_file(ROOT / "master-key.b64")
    build_project(paths, contracts, lambda: Keystore(paths.keys, master), PROJECT, audit, requested_by="benchmark", built_before=True)
    export_project(paths, contracts, PROJECT, audit, "")


def main() -> None:
    command = sys.argv[1]
    if command == "bare-refresh-process":
        bare_refresh_process(Path(sys.argv[2]), Path(sys.argv[3]))
    elif command == "bare-build-process":
        bare_build_process(Path(sys.argv[2]), Path(sys.argv[3]))
    elif command == "library-refresh-process":
        library_refresh_process(Path(sys.argv[2]))
    elif command == "library-build-process":
        library_build_process(Path(sys.argv[2]))
    else:
        rows, seconds, peak = CASES[command]()
        print(json.dumps({"case": command, "seconds": seconds, "peak_rss_mb": peak, "rows": rows}))


if __name__ == "__main__":
    main()

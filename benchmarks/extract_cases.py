"""Benchmark cases for a project extract: 100,000-person cohort, 24 months of 1,000,000-person registers.

The warehouse for it is written directly with DuckDB (individuals and jobs, typed as
the contracts say, codes drawn from the contracts' code lists): generating and
ingesting 24 such months through the pipeline would take a quarter of an hour here,
and ingestion has its own benchmark. Three ways to make the same extract:
``bare_copy`` (the cohort's rows copied as they are), ``pipeline`` (lmdp_pipeline's
build, checks included) and ``pandas`` (a straightforward pandas implementation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from pathlib import Path

import duckdb

from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.projects.approval import Approval

PERSONS = 1_000_000
MONTHS = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)]
COHORT = ("1960-01-01", "1966-12-31")  # about 10% of the population


def warehouse(home: Path) -> Path:
    root = home / "extract_warehouse"
    marker = root / ".complete"
    if marker.exists():
        return root
    contracts = load_contracts()
    countries = list(contracts.code_lists["countries"].finest.labels)
    communes = list(contracts.code_lists["residence"].finest.labels)
    units = list(contracts.code_lists["isco08"].finest.labels)
    con = duckdb.connect()
    for register in ("individuals", "jobs"):
        (root / register).mkdir(parents=True, exist_ok=True)
    for month in MONTHS:
        con.execute(
            f"""COPY (SELECT lpad((1000000000000 + p * 7919)::VARCHAR, 13, '0') AS i_matricule, '{month}' AS i_month,
                       DATE '1930-01-01' + CAST(p * 37 % 27000 AS INTEGER) AS i_birth_date, ((p % 2) + 1)::VARCHAR AS i_sex,
                       $countries[1 + p % {len(countries)}] AS i_citizenship, $communes[1 + (p * 13) % {len(communes)}] AS i_residence
                FROM range({PERSONS}) t(p)) TO '{root}/individuals/individuals_{month}.parquet' (FORMAT parquet)""",
            {"countries": countries, "communes": communes},
        )
        con.execute(
            f"""COPY (SELECT lpad((1000000000000 + p * 7919)::VARCHAR, 13, '0') AS j_matricule,
                       (19632000000 + p % 80000)::VARCHAR AS j_employer, '{month}' AS j_month,
                       DATE '2010-01-01' + CAST(p % 4000 AS INTEGER) AS j_start, NULL::DATE AS j_end, 'permanent' AS j_contract,
                       40.00::DECIMAL(18, 2) AS j_hours, (2000 + p % 6000)::DECIMAL(18, 2) AS j_wage,
                       $units[1 + p % {len(units)}] AS j_isco
                FROM range({PERSONS}) t(p) WHERE p % 10 < 6) TO '{root}/jobs/jobs_{month}.parquet' (FORMAT parquet)""",
            {"units": units},
        )
    marker.touch()
    return root


def approval() -> Approval:
    return Approval.model_validate({
        "project": "BENCH-001", "title": "Benchmark", "institution": "lmdp", "status": "approved",
        "approved_on": dt.date(2026, 11, 1), "expires_on": dt.date(2099, 1, 1),
        "approved_by": ["bench.reviewer", "bench.second"], "researchers": ["bench.researcher"],
        "period": {"from": MONTHS[0], "to": MONTHS[-1]},
        "population": [{"register": "individuals", "where": {"i_birth_date": {"between": list(COHORT)}}}],
        "variables": {
            "individuals": {"i_birth_date": "year", "i_sex": "default", "i_citizenship": "default", "i_residence": "canton"},
            "jobs": {"j_start": "month", "j_isco": "2digit", "j_employer": "pseudonym", "j_wage": "default"},
        },
        "justifications": {"individuals.i_residence": "The benchmark asks for cantons."},
    })


def bare_copy(home: Path) -> tuple[int, float]:
    root = warehouse(home)
    target = home / "bench" / "bare_extract.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(target))
    con.execute(
        f"""CREATE TEMP TABLE cohort AS SELECT DISTINCT i_matricule FROM '{root}/individuals/*.parquet'
            WHERE i_birth_date BETWEEN '{COHORT[0]}' AND '{COHORT[1]}'"""
    )
    con.execute(f"CREATE TABLE individuals AS SELECT * FROM '{root}/individuals/*.parquet' WHERE i_matricule IN (SELECT * FROM cohort)")
    con.execute(f"CREATE TABLE jobs AS SELECT * FROM '{root}/jobs/*.parquet' WHERE j_matricule IN (SELECT * FROM cohort)")
    rows = con.execute("SELECT (SELECT count(*) FROM individuals) + (SELECT count(*) FROM jobs)").fetchone()[0]
    con.close()
    return rows, time.perf_counter() - started


def plan():
    """The benchmark approval as a build plan over the 24 months."""
    from lmdp_pipeline.period import Period
    from lmdp_pipeline.projects.plan import Plan

    return Plan(approval(), load_contracts(), Period.parse(f"{MONTHS[0]}:{MONTHS[-1]}"))


def pipeline_home(home: Path):
    """A platform home whose warehouse is the benchmark's."""
    from lmdp_pipeline.paths import PlatformPaths

    root, bench_home = warehouse(home).resolve(), home / "bench" / "home"
    bench_home.mkdir(parents=True, exist_ok=True)
    link = bench_home / "warehouse"
    if not link.is_symlink():
        link.symlink_to(root, target_is_directory=True)
    return PlatformPaths(bench_home)


def pipeline(home: Path) -> tuple[int, float]:
    from lmdp_pipeline.keys import ProjectKey
    from lmdp_pipeline.projects.build import build_extract

    paths, build_plan = pipeline_home(home), plan()
    key = ProjectKey("BENCH-001", "key-bench", "", secrets.token_bytes(32))
    started = time.perf_counter()
    result = build_extract(build_plan, paths, key, {})
    return sum(result.rows.values()), time.perf_counter() - started


def pandas_extract(home: Path) -> tuple[int, float]:
    """What a careful analyst would write with pandas: read, filter, recode, hash, merge, store."""
    import pandas as pd

    root = warehouse(home)
    contracts = load_contracts()
    key = secrets.token_bytes(32)
    canton = contracts.code_lists["residence"].mapping("canton")
    group = contracts.code_lists["countries"].mapping("group")
    sub_major = contracts.code_lists["isco08"].mapping("sub_major")
    target = home / "bench" / "pandas_extract.duckdb"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    people = pd.concat(pd.read_parquet(root / "individuals" / f"individuals_{m}.parquet") for m in MONTHS)
    birth = pd.to_datetime(people["i_birth_date"])
    cohort = set(people.loc[(birth >= COHORT[0]) & (birth <= COHORT[1]), "i_matricule"])
    people = people[people["i_matricule"].isin(cohort)].copy()
    jobs = pd.concat(pd.read_parquet(root / "jobs" / f"jobs_{m}.parquet") for m in MONTHS)
    jobs = jobs[jobs["j_matricule"].isin(cohort)].copy()

    def pseudonyms(values, domain: bytes) -> dict:
        return {v: hmac.new(key, domain + v.encode(), hashlib.sha256).hexdigest()[:16] for v in pd.unique(values)}

    persons = pseudonyms(people["i_matricule"], b"lmdp/person\x00")
    employers = pseudonyms(jobs["j_employer"], b"lmdp/employer\x00")
    individuals = pd.DataFrame({
        "person_id": people["i_matricule"].map(persons), "i_month": people["i_month"],
        "i_birth_date": pd.to_datetime(people["i_birth_date"]).dt.year, "i_sex": people["i_sex"],
        "i_citizenship": people["i_citizenship"].map(group), "i_residence": people["i_residence"].map(canton),
    })
    jobs_out = pd.DataFrame({
        "person_id": jobs["j_matricule"].map(persons), "employer_id": jobs["j_employer"].map(employers),
        "j_month": jobs["j_month"], "j_start": pd.to_datetime(jobs["j_start"]).dt.strftime("%Y-%m"),
        "j_wage": jobs["j_wage"], "j_isco": jobs["j_isco"].map(sub_major),
    })
    con = duckdb.connect(str(target))
    con.register("individuals_frame", individuals)
    con.register("jobs_frame", jobs_out)
    con.execute("CREATE TABLE individuals AS SELECT * FROM individuals_frame")
    con.execute("CREATE TABLE jobs AS SELECT * FROM jobs_frame")
    con.close()
    return len(individuals) + len(jobs_out), time.perf_counter() - started

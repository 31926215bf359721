"""`make bench-scale`: ten years at Luxembourg size, ingested month by month, then whole-population extracts.

1,300,000 persons over the 120 months of 2015-2024. For every month the synthetic
generator writes the month's deliveries of individuals, affiliation and jobs (and
enterprises, which jobs' reference rule reads), a fresh process ingests and validates
them through ``lmdp_pipeline.ingest`` (timed after its imports, peak memory its own),
and the CSV files are deleted (the warehouse keeps the Parquet files: about 60 MB a
month). Then one extract of the whole population is built for the last 1, 3 and 10
years (individuals, affiliation and jobs at approved levels, pseudonymised and sorted,
the seven blocking checks included), each in its own process with DuckDB limited to
``LMDP_DUCKDB_MEMORY_LIMIT`` (1500MB here), so it spills rather than grows.

Resumable: months already ingested are read back from ``bench_out/scale/ingest-<persons>.jsonl``.
It takes about 1.5 hours on a quiet 2-core machine (half generating and ingesting, half building) and is not part of CI; the figures go to docs/benchmarks.md.
``--ingest-months N`` ingests only the first N months and fills the rest of the warehouse
with copies of ingested months, their month column relabelled (said in the report): the
builds then read a full ten years when there is no time to ingest them all.
Usage: ``python -m benchmarks.scale [--persons N] [--months 2015-01:2024-12] [--ingest-months N]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from lmdp_pipeline.paths import PROJECT_ROOT, PlatformPaths

from .cases import peak_memory_mb

PERSONS = 1_300_000
PERIOD = "2015-01:2024-12"
SEED = 2026
INGESTED = ("enterprises", "individuals", "affiliation", "jobs")  # enterprises first: jobs' references read it
MEMORY_LIMIT = "1500MB"
YEARS = (1, 3, 10)
ROOT = PROJECT_ROOT / "bench_out" / "scale"


def _home(persons: int) -> Path:
    return ROOT / f"home-{persons}"


def ingest_month(home: Path, month: str) -> dict:
    """One month's deliveries through the pipeline's ingestion (run in its own process)."""
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.ingest import ingest_delivery
    from lmdp_pipeline.ingest.suite import import_gx

    import_gx()
    contracts, paths = load_contracts(), PlatformPaths(home)
    started = time.perf_counter()
    rows = sum(ingest_delivery(paths, contracts, register, month).rows_stored for register in INGESTED)
    return {"month": month, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_memory_mb(), "rows": rows}


def _approval(first: str, last: str):
    from lmdp_pipeline.projects.approval import Approval

    return Approval.model_validate({
        "project": "SCALE-001", "title": "Scale benchmark", "institution": "lmdp", "status": "approved",
        "approved_on": dt.date(2026, 11, 1), "expires_on": dt.date(2099, 1, 1),
        "approved_by": ["bench.reviewer", "bench.second"], "researchers": ["bench.researcher"],
        "period": {"from": first, "to": last},
        "population": [{"register": "individuals", "where": {"i_birth_date": {"between": ["1900-01-01", "2099-12-31"]}}}],
        "variables": {
            "individuals": {"i_birth_date": "year", "i_sex": "default", "i_citizenship": "default"},
            "affiliation": {"a_status": "default", "a_employer": "pseudonym"},
            "jobs": {"j_start": "month", "j_isco": "2digit", "j_employer": "pseudonym", "j_wage": "default"},
        },
        "justifications": {},
        # within the policy over a year; a longer period may not be (a person at risk in any month counts), and a
        # whole-population study would then accept it: the build goes on, its search for safer levels timed
        "risk_acceptance": {"justification": "Whole-population benchmark.", "compensating_measures": ["synthetic data"],
                            "accepted_by": ["bench.reviewer"], "up_to": {"persons_at_risk": 1.0, "reidentification_rate": 1.0}},
    })


def build(home: Path, years: int, last: str) -> dict:
    """A whole-population extract of the last ``years`` years, as ``build_extract`` makes it (checks included),
    with its risk step, the search within it and the blocking checks timed apart."""
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.keys import ProjectKey
    from lmdp_pipeline.period import Period, parse_month
    from lmdp_pipeline.projects import build as building
    from lmdp_pipeline.projects.plan import Plan
    from lmdp_pipeline.risk import assess

    first = str(parse_month(last) - (12 * years - 1))
    period = Period.parse(f"{first}:{last}")
    paths = PlatformPaths(home)
    key = ProjectKey("SCALE-001", "key-scale", "", secrets.token_bytes(32))
    plan = Plan(_approval(first, last), load_contracts(), period)
    spent = {"risk": 0.0, "search": 0.0, "checks": 0.0}

    def timed(part: str, function):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - started
        return run

    building.assess_candidate = timed("risk", building.assess_candidate)
    assess.search = timed("search", assess.search)
    building.check_extract = timed("checks", building.check_extract)
    started = time.perf_counter()
    result = building.build_extract(plan, paths, key, {})
    seconds = time.perf_counter() - started
    size = result.path.stat().st_size
    result.path.unlink()
    return {"years": years, "months": len(period), "seconds": seconds, "peak_rss_mb": peak_memory_mb(),
            "rows": sum(result.rows.values()), "persons": result.persons, "file_mb": size / 1e6,
            "risk_seconds": spent["risk"], "search_seconds": spent["search"], "checks_seconds": spent["checks"],
            "beyond_policy": not result.risk.meets_policy}


def bare(home: Path, years: int, last: str) -> dict:
    """The floor: the same registers' rows of the period copied as they are into a DuckDB file, nothing else."""
    import duckdb

    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.period import Period, parse_month

    first = str(parse_month(last) - (12 * years - 1))
    months = Period.parse(f"{first}:{last}").months
    contracts, paths = load_contracts(), PlatformPaths(home)
    target = ROOT / "bare.duckdb"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(target), config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(ROOT / ".bare-spill")}) as con:
        for register in BUILT_FROM:
            files = [str(paths.warehouse_file(register, month)) for month in months]
            con.execute(f"CREATE TABLE {register} AS SELECT * FROM read_parquet(?)", [files])
        rows = sum(con.execute(f"SELECT count(*) FROM {register}").fetchone()[0] for register in BUILT_FROM)
    seconds = time.perf_counter() - started
    target.unlink()
    return {"years": years, "seconds": seconds, "peak_rss_mb": peak_memory_mb(), "rows": rows}


def _child(*args: str, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.scale", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.scale {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ingest_all(home: Path, persons: int, months: str, limit: int | None = None) -> list[dict]:
    """Generate and ingest every month not ingested yet; return every month's figures."""
    import duckdb

    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.period import Period
    from lmdp_pipeline.synthetic.monthly import REGISTER_BUILDERS, Month
    from lmdp_pipeline.synthetic.population import draw_population
    from lmdp_pipeline.synthetic.writer import write_delivery

    log = ROOT / f"ingest-{persons}.jsonl"
    done = {r["month"]: r for r in map(json.loads, log.read_text().splitlines())} if log.exists() else {}
    period = Period.parse(months)
    if len(done) < len(period.months[:limit]):
        contracts = load_contracts()
        print(f"drawing {persons:,} persons over {months} ...", flush=True)
        population = draw_population(contracts, period, persons, SEED)
        con = duckdb.connect()
        for m, label in enumerate(period.months[:limit]):
            if label in done:
                continue
            started = time.perf_counter()
            month = Month(population, m, SEED)
            files = []
            for register in INGESTED:
                path = home / "landing" / register / f"{register}_{label}.csv"
                write_delivery(con, contracts[register], REGISTER_BUILDERS[register](month), path)
                files.append(path)
            generated = time.perf_counter() - started
            result = _child("ingest-month", str(home), label) | {"generate_seconds": generated}
            for path in files:
                path.unlink()
            done[label] = result
            with log.open("a") as out:
                out.write(json.dumps(result) + "\n")
            print(f"{label}: generated in {generated:.1f} s, ingested {result['rows']:,} rows in {result['seconds']:.1f} s "
                  f"(peak {result['peak_rss_mb']:.0f} MB)", flush=True)
    return [done[label] for label in period.months[:limit]]


BUILT_FROM = ("individuals", "affiliation", "jobs")


def fill_months(home: Path, months: str, ingested: list[str]) -> list[str]:
    """Warehouse files for the months not ingested: copies of ingested months with the month column relabelled."""
    import duckdb

    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.period import Period

    contracts, paths, filled = load_contracts(), PlatformPaths(home), []
    with duckdb.connect() as con:
        for index, label in enumerate(m for m in Period.parse(months).months if m not in ingested):
            source_month = ingested[index % len(ingested)]
            for register in BUILT_FROM:
                target, column = paths.warehouse_file(register, label), contracts[register].delivery.month_column
                if target.exists():
                    continue
                con.execute(
                    f"COPY (SELECT * REPLACE ('{label}' AS {column}) FROM read_parquet('{paths.warehouse_file(register, source_month)}')) "
                    f"TO '{target}' (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{source_sha256: 'relabelled copy of {source_month}', "
                    f"contract_version: '{contracts[register].version}'}})"
                )
            filled.append(label)
    return filled


def report(persons: int, months: list[dict], builds: list[dict], filled: list[str]) -> list[str]:
    from statistics import mean

    def span(part: list[dict]) -> str:
        return f"{mean(r['seconds'] for r in part):.1f} s per month ({sum(r['rows'] for r in part) / len(part):,.0f} rows)"

    lines = [
        f"Ten years at Luxembourg size (`make bench-scale`): {persons:,} persons drawn, {len(months)} months ingested, individuals, "
        "affiliation and jobs (with enterprises, which jobs' references read), generated and ingested month by month, "
        f"then whole-population extracts built with `{MEMORY_LIMIT}` as DuckDB's memory limit "
        "(targets: the ten-year build under 3 minutes and 2 GB; ingestion linear in months).",
        "",
        "Ingestion and validation (GX included, each month in its own process):",
        "",
        "| months | cost per month | peak memory |",
        "|---|---|---|",
    ]
    for label, part in (("first year", months[:12]), ("middle year", months[len(months) // 2 - 6 : len(months) // 2 + 6]),
                        ("last year", months[-12:]), ("all", months)):
        lines.append(f"| {label} ({part[0]['month']} to {part[-1]['month']}) | {span(part)} | "
                     f"{max(r['peak_rss_mb'] for r in part):.0f} MB |")
    total = sum(r["seconds"] for r in months)
    lines += [
        "",
        f"Ingesting all {len(months)} months took {total / 60:.1f} minutes; the last year's months cost "
        f"{mean(r['seconds'] for r in months[-12:]) / mean(r['seconds'] for r in months[:12]):.2f} times the first year's.",
        "",
        "Whole-population extracts (individuals, affiliation, jobs; seven blocking checks included)"
        + (f"; the {len(filled)} months not ingested ({filled[0]} to {filled[-1]}) are copies of ingested months with "
           "their month relabelled, so the builds read as many rows as ingested months would give:" if filled else ":"),
        "",
        "| years | months | rows delivered | persons | seconds | of which risk step (search) | of which blocking checks "
        "| bare copy of the warehouse rows | ratio | peak memory | extract size |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in builds:
        search = f"{b['search_seconds']:.0f} s, beyond the policy, accepted" if b["beyond_policy"] else "none: within the policy"
        lines.append(f"| {b['years']} | {b['months']} | {b['rows']:,} | {b['persons']:,} | {b['seconds']:.0f} s | "
                     f"{b['risk_seconds']:.0f} s ({search}) | {b['checks_seconds']:.0f} s | {b['bare_seconds']:.0f} s "
                     f"({b['bare_rows']:,} rows) | {b['seconds'] / b['bare_seconds']:.1f}x | {b['peak_rss_mb']:.0f} MB | "
                     f"{b['file_mb']:,.0f} MB |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="all", choices=["all", "ingest-month", "build", "bare"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--persons", type=int, default=PERSONS)
    parser.add_argument("--months", default=PERIOD)
    parser.add_argument("--ingest-months", type=int, help="ingest only the first N months; fill the rest by relabelled copies")
    args = parser.parse_args()
    if args.command == "ingest-month":
        print(json.dumps(ingest_month(Path(args.args[0]), args.args[1])))
        return
    if args.command in ("build", "bare"):
        print(json.dumps({"build": build, "bare": bare}[args.command](Path(args.args[0]), int(args.args[1]), args.args[2])))
        return
    from .run import machine, record

    home = _home(args.persons)
    months = ingest_all(home, args.persons, args.months, args.ingest_months)
    filled = fill_months(home, args.months, [r["month"] for r in months])
    last = args.months.split(":")[-1]
    env = os.environ | {"LMDP_DUCKDB_MEMORY_LIMIT": MEMORY_LIMIT}
    builds = []
    for years in YEARS:
        if years * 12 <= len(months) + len(filled):
            floor = _child("bare", str(home), str(years), last)
            builds.append(_child("build", str(home), str(years), last, env=env) | {"bare_seconds": floor["seconds"],
                                                                                   "bare_rows": floor["rows"]})
            print(f"{years}-year extract: {builds[-1]['rows']:,} rows in {builds[-1]['seconds']:.0f} s "
                  f"(peak {builds[-1]['peak_rss_mb']:.0f} MB); bare copy of {floor['rows']:,} rows {floor['seconds']:.0f} s", flush=True)
    record(f"Scale run of {dt.date.today().isoformat()}", [f"Machine: {machine()}.", "", *report(args.persons, months, builds, filled)])


if __name__ == "__main__":
    main()

"""`make bench`: measure the pipeline against the bare DuckDB floor, in one run, and record it.

Generates a 1,000,000-person month once (kept under bench_out/, git-ignored), then runs
every case in its own process, several times, and writes the medians with the machine
and date to docs/benchmarks.md. Compare ratios within one run: absolute numbers drift
between runs on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.ingest import ingest_delivery
from lmdp_pipeline.paths import PROJECT_ROOT, PlatformPaths
from lmdp_pipeline.synthetic import generate

MONTH = "2024-01"
RESULTS = PROJECT_ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), 0)
    return f"{cpu}, {os.cpu_count()} cores, {memory} GB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def prepare(home: Path, persons: int) -> None:
    marker = home / f".generated-{persons}"
    if not marker.exists():
        print(f"generating {persons:,} persons for {MONTH} in {home} ...", flush=True)
        generate(home, persons=persons, period=MONTH, seed=1)
        marker.touch()
    paths = PlatformPaths(home)
    contracts = load_contracts()
    for register in ("enterprises",):  # what jobs' references need in the warehouse
        ingest_delivery(paths, contracts, register, MONTH)


def run_case(case: str, home: Path, register: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.cases", case, str(home), register, MONTH],
        cwd=PROJECT_ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def median_of(case: str, home: Path, register: str, repeats: int) -> dict:
    runs = [run_case(case, home, register) for _ in range(repeats)]
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "rows": runs[0]["rows"],
    }


def ingestion_section(args, home: Path) -> list[str]:
    rows = []
    for register in ("individuals", "jobs"):
        bare = median_of("bare_copy", home, register, args.repeats)
        ours = median_of("ingest", home, register, args.repeats)
        rows.append((register, bare, ours))
        print(f"{register}: bare {bare['seconds']:.2f} s, ingest {ours['seconds']:.2f} s ({ours['seconds'] / bare['seconds']:.1f}x)", flush=True)
    gx = median_of("gx_import", home, "individuals", args.repeats)
    return [
        f"Ingestion of one month of a {args.persons:,}-person population (target: at most 3x the bare copy):",
        "",
        *_table(rows, "bare DuckDB CSV to Parquet", "ingest + validate (GX)"),
        "",
        f"Importing Great Expectations costs {gx['seconds']:.1f} s once per process (not in the ingest column: "
        "a run pays it once per step process).",
        "",
    ]


def pseudonymisation_section(args, home: Path) -> list[str]:
    bare = median_of("bare_copy_person_months", home, "-", args.repeats)
    ours = median_of("pseudonymise_person_months", home, "-", args.repeats)
    print(f"pseudonymise: bare {bare['seconds']:.2f} s, ours {ours['seconds']:.2f} s ({ours['seconds'] / bare['seconds']:.1f}x)")
    return [
        "Pseudonymisation (target: at most 2x the bare copy of the same rows):",
        "",
        *_table([("12,000,000 person-months, 1,000,000 persons", bare, ours)], "bare DuckDB Parquet copy", "HMAC map + join, identifier dropped"),
        "",
    ]


def extract_section(args, home: Path) -> list[str]:
    extract = {case: median_of(f"extract_{case}", home, "-", 1 if case == "pandas" else args.repeats) for case in ("bare_copy", "pipeline", "pandas")}
    print(", ".join(f"extract {case} {r['seconds']:.1f} s" for case, r in extract.items()))
    bare, ours, pandas = extract["bare_copy"], extract["pipeline"], extract["pandas"]
    return [
        "Project extract: 100,000-person cohort, 24 months of 1,000,000-person individuals and jobs "
        "(targets: at most 1.5x the bare copy, at least 10x faster than pandas; pandas run once):",
        "",
        "| implementation | rows delivered | seconds | ratio to bare copy | peak memory |",
        "|---|---|---|---|---|",
        *(f"| {label} | {r['rows']:,} | {r['seconds']:.1f} s | {r['seconds'] / bare['seconds']:.1f}x | {r['peak_rss_mb']:.0f} MB |"
          for label, r in (("bare DuckDB copy of the cohort's rows", bare), ("lmdp_pipeline build_extract, checks included", ours),
                           ("straightforward pandas", pandas))),
        "",
        f"The pipeline is {pandas['seconds'] / ours['seconds']:.1f}x faster than pandas and uses "
        f"{pandas['peak_rss_mb'] / max(ours['peak_rss_mb'], 1):.0f}x less memory.",
        "",
    ]


def run_risk_case(case: str, home: Path) -> dict:
    output = subprocess.run([sys.executable, "-m", "benchmarks.risk_cases", case, str(home)], cwd=PROJECT_ROOT, check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def risk_section(args, home: Path) -> list[str]:
    """The risk step inside the extract benchmark's build, the lattice search, and pandas doing the same measures."""
    def median(case: str, repeats: int) -> dict:
        runs = [run_risk_case(case, home) for _ in range(repeats)]
        middle = sorted(runs, key=lambda r: r["risk_seconds"] if "risk_seconds" in r else r["seconds"])[len(runs) // 2]
        return middle | {"peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}

    builds = {case: median(f"build_{case}", args.repeats) for case in ("cold", "new_month", "warm")}
    lattice, pandas = median("lattice", 1), median("pandas", 1)
    for case, r in builds.items():
        print(f"risk {case}: build {r['seconds']:.1f} s, risk step {r['risk_seconds']:.1f} s", flush=True)
    print(f"lattice: build {lattice['seconds']:.1f} s, search {lattice['search_seconds']:.1f} s ({lattice['nodes']} nodes); "
          f"pandas {pandas['seconds']:.1f} s", flush=True)

    def share(r: dict) -> str:
        return f"{r['risk_seconds'] / (r['seconds'] - r['risk_seconds']):.0%}"

    labels = {"cold": "every month counted (first build at these levels)", "new_month": "one new month counted (the monthly rebuild)",
              "warm": "every month's counts kept (a rebuild, or another project at the same levels)"}
    lattice_build = lattice["seconds"] - lattice["search_seconds"]
    return [
        "Re-identification risk on the extract above: 100,000-person cohort, 24 months of 1,000,000-person individuals and jobs "
        "(targets: the risk step adds at most 20% to the build; the lattice search over 4 quasi-identifiers with 3 levels each "
        "takes no longer than the build; pandas and the search run once):",
        "",
        "| case | build without the risk step | risk step | added to the build | peak memory |",
        "|---|---|---|---|---|",
        *(f"| {labels[case]} | {r['seconds'] - r['risk_seconds']:.1f} s | {r['risk_seconds']:.1f} s | {share(r)} | {r['peak_rss_mb']:.0f} MB |"
          for case, r in builds.items()),
        f"| straightforward pandas groupby of the same measures (population counts included) | — | {pandas['seconds']:.1f} s | "
        f"{pandas['seconds'] / builds['cold']['risk_seconds']:.1f}x the risk step, counting every month | {pandas['peak_rss_mb']:.0f} MB |",
        "",
        f"Lattice search (birth month, country of citizenship, canton of residence, two-digit occupation; {lattice['nodes']} of 81 "
        f"nodes computed, {lattice['suggestions']} suggestions): {lattice['search_seconds']:.1f} s, against "
        f"{lattice_build:.1f} s for the rest of that build ({lattice['search_seconds'] / lattice_build:.2f}x).",
        "",
    ]


def exports_section(args, home: Path) -> list[str]:
    run_case("exports_prepare", home, "-")
    floor, ours = median_of("exports_copy", home, "-", args.repeats), median_of("exports_ours", home, "-", args.repeats)
    package = median_of("exports_package", home, "-", args.repeats)
    ratio = ours["seconds"] / floor["seconds"]
    print(f"exports: copy {floor['seconds']:.1f} s, ours {ours['seconds']:.1f} s ({ratio:.1f}x), package {package['seconds']:.1f} s")
    return [
        f"Researchers' exports of the project extract benchmark's extract ({ours['rows']:,} rows, individuals and jobs; "
        "targets: at most 3x DuckDB's COPY of the same tables to Parquet, peak memory under 1 GB):",
        "",
        *_table([("every table to Stata .dta, SPSS .sav and Parquet, with labels", floor, ours)],
                "DuckDB COPY to Parquet", "lmdp_pipeline exports, all three formats"),
        "",
        f"The encrypted package (extract and exports, {package['rows']:,} MB, age to one recipient, every file hashed "
        f"again as it is streamed) takes {package['seconds']:.1f} s at {package['peak_rss_mb']:.0f} MB peak memory.",
        "",
    ]


def outputs_section(args, home: Path) -> list[str]:
    measures = ("seconds", "duckdb_seconds", "duckdb_cpu_seconds", "load")
    runs = {case: [run_case(case, home, "-") for _ in range(args.repeats)] for case in ("outputs_release", "outputs_release_after_100")}
    medians = {case: found[0] | {key: statistics.median(r[key] for r in found) for key in measures} for case, found in runs.items()}
    fresh, after = medians["outputs_release"], medians["outputs_release_after_100"]
    print(f"outputs: release {fresh['seconds']:.2f} s (DuckDB {fresh['duckdb_seconds']:.2f} s), after 100 releases "
          f"{after['seconds']:.2f} s (DuckDB {after['duckdb_seconds']:.2f} s)")
    return [
        "Output checking on the extract above: a 50 x 20 table with its totals (mean wage by month of job start and "
        "occupation, one reference month; 1,071 cells, about a fifth under the threshold) computed, held to the rules, "
        "suppressed, checked and released (targets: under 1 s of DuckDB time; differencing against 100 earlier releases "
        "of the same grouping adds under 1 s). DuckDB time is the wall-clock time of its statements and, as the machine "
        "is shared, the CPU time they used (two threads: an idle machine's wall clock is about half of it):",
        "",
        "| case | cells | suppressed | earlier releases | seconds, all | DuckDB, wall | DuckDB, CPU | load average | peak memory |",
        "|---|---|---|---|---|---|---|---|---|",
        *(f"| {label} | {r['rows']:,} | {r['suppressed']} | {r['earlier_releases']} | {r['seconds']:.2f} s | "
          f"{r['duckdb_seconds']:.2f} s | {r['duckdb_cpu_seconds']:.2f} s | {r['load']:.1f} | {r['peak_rss_mb']:.0f} MB |"
          for label, r in (("first release of the project", fresh), ("after 100 releases of the same grouping", after))),
        "",
        f"Differencing against 100 earlier releases adds {after['seconds'] - fresh['seconds']:.2f} s "
        f"({after['duckdb_seconds'] - fresh['duckdb_seconds']:.2f} s of DuckDB wall clock, "
        f"{after['duckdb_cpu_seconds'] - fresh['duckdb_cpu_seconds']:.2f} s of its CPU).",
        "",
    ]


def end_to_end_section(args, home: Path) -> list[str]:
    from .end_to_end import section

    return section(args, home)


SECTIONS = {
    "ingestion": ingestion_section,
    "pseudonymisation": pseudonymisation_section,
    "extract": extract_section,
    "risk": risk_section,
    "exports": exports_section,
    "outputs": outputs_section,
    "end_to_end": end_to_end_section,
}
NEEDS_MILLION_PERSON_MONTH = {"ingestion", "pseudonymisation", "extract", "risk"}
"""Each section runs its cases and returns its part of docs/benchmarks.md; ``--only`` picks some."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", default=str(PROJECT_ROOT / "bench_out" / "home"))
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these sections only (default: all)")
    args = parser.parse_args()
    home = Path(args.home)
    if NEEDS_MILLION_PERSON_MONTH & set(args.only or SECTIONS):
        prepare(home, args.persons)
    sections = [line for name in (args.only or SECTIONS) for line in SECTIONS[name](args, home)]
    write_results(args, sections)


def _table(rows, floor: str, ours: str) -> list[str]:
    lines = [
        f"| case | rows | {floor} | {ours} | ratio | peak memory, floor | peak memory, ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, bare, result in rows:
        lines.append(
            f"| {label} | {result['rows']:,} | {bare['seconds']:.2f} s | {result['seconds']:.2f} s | "
            f"{result['seconds'] / bare['seconds']:.1f}x | {bare['peak_rss_mb']:.0f} MB | {result['peak_rss_mb']:.0f} MB |"
        )
    return lines


def write_results(args, sections: list[str]) -> None:
    heading = f"Run of {dt.date.today().isoformat()}" + (f" ({', '.join(args.only)} only)" if args.only else "")
    record(heading, [f"Machine: {machine()}. Median of {args.repeats} runs, each case in its own process.", "", *sections])


def record(heading: str, lines: list[str]) -> None:
    """Put a run's results at the top of docs/benchmarks.md's runs (newest first)."""
    section = "\n".join([f"### {heading}", "", *lines])
    existing = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n\n"
    head, _, rest = existing.partition("### ")
    RESULTS.write_text(head + section + ("\n### " + rest if rest else ""), encoding="utf-8")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

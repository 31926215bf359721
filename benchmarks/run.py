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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", default=str(PROJECT_ROOT / "bench_out" / "home"))
    args = parser.parse_args()
    home = Path(args.home)
    prepare(home, args.persons)
    rows = []
    for register in ("individuals", "jobs"):
        bare = median_of("bare_copy", home, register, args.repeats)
        ours = median_of("ingest", home, register, args.repeats)
        rows.append((register, bare, ours))
        print(f"{register}: bare {bare['seconds']:.2f} s, ingest {ours['seconds']:.2f} s ({ours['seconds'] / bare['seconds']:.1f}x)", flush=True)
    gx = median_of("gx_import", home, "individuals", args.repeats)
    write_results(args, rows, gx)


def write_results(args, rows, gx) -> None:
    lines = [
        f"### Ingestion, {dt.date.today().isoformat()}",
        "",
        f"Machine: {machine()}.",
        f"One month of a {args.persons:,}-person population; median of {args.repeats} runs, each case in its own process.",
        "",
        "| register | rows | bare DuckDB CSV to Parquet | ingest + validate (GX) | ratio | peak memory bare | peak memory ingest |",
        "|---|---|---|---|---|---|---|",
    ]
    for register, bare, ours in rows:
        lines.append(
            f"| {register} | {ours['rows']:,} | {bare['seconds']:.2f} s | {ours['seconds']:.2f} s | "
            f"{ours['seconds'] / bare['seconds']:.1f}x | {bare['peak_rss_mb']:.0f} MB | {ours['peak_rss_mb']:.0f} MB |"
        )
    lines += [
        "",
        f"Importing Great Expectations costs {gx['seconds']:.1f} s once per process (not in the ingest column: "
        "a run pays it once per step process).",
        "",
    ]
    section = "\n".join(lines)
    existing = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n\nProduced by `make bench`; newest first.\n\n"
    head, _, rest = existing.partition("### ")
    RESULTS.write_text(head + section + ("\n### " + rest if rest else ""), encoding="utf-8")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

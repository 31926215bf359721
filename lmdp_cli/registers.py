"""``lmdp sample-data``, ``lmdp refresh`` and ``lmdp dictionary``: deliveries in, registers and the dictionary out."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.period import parse_month
from lmdp_pipeline.synthetic import Period, generate

from .runs import CommandError, dagster_instance, run_job

REFRESH_WORKERS = os.cpu_count() or 1
"""Months are independent partitions: one run per core at a time."""


def cmd_sample_data(args: argparse.Namespace, paths: PlatformPaths) -> None:
    output = Path(args.output).resolve() if args.output else paths.home
    try:
        period = Period.parse(args.months)
    except ValueError as exc:
        raise CommandError(f"--months: {exc}") from None
    started = time.perf_counter()
    result = generate(output, persons=args.persons, period=period, seed=args.seed)
    total = sum(sum(months.values()) for months in result.rows.values())
    print(f"wrote {len(period)} months x {len(result.rows)} registers ({total:,} rows) to {result.landing}")
    for register, months in result.rows.items():
        print(f"  {register:<18} {sum(months.values()):>12,} rows")
    for path in result.approvals + result.external + result.requests:
        print(f"  wrote {path}")
    print(f"done in {time.perf_counter() - started:.1f} s")


def cmd_dictionary(args: argparse.Namespace, paths: PlatformPaths) -> None:
    failure = run_job(paths, "publish_dictionary")
    if failure:
        raise CommandError(failure)
    print(f"data dictionary: {paths.dictionary / 'html' / 'index.html'}")


def _refresh_month(home: str, month: str, registers: list[str]) -> str | None:
    """One month's register_refresh (run in a worker process; returns None or the failure)."""
    from assets.registers import register_key
    from lmdp_pipeline.paths import secure_home

    paths = PlatformPaths(Path(home))
    secure_home(paths)
    return run_job(paths, "register_refresh", month, [register_key(r) for r in registers])


def delivered_months(paths: PlatformPaths) -> dict[str, list[str]]:
    """Month -> registers with a delivery file in landing/."""
    months: dict[str, list[str]] = {}
    for _, register, month in paths.deliveries():
        months.setdefault(month, []).append(register)
    return months


def cmd_refresh(args: argparse.Namespace, paths: PlatformPaths) -> None:
    delivered = delivered_months(paths)
    if args.month:
        parse_month(args.month)
        if args.month not in delivered:
            raise CommandError(f"no delivery for {args.month} in {paths.landing}")
        delivered = {args.month: delivered[args.month]}
    if not delivered:
        raise CommandError(f"no deliveries in {paths.landing}; run `lmdp sample-data` or drop files there")
    dagster_instance(paths)  # create the instance folder once, before the workers share it
    months = sorted(delivered)
    workers = max(1, min(REFRESH_WORKERS, len(months)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        failures = [f for f in pool.map(_refresh_month, [str(paths.home)] * len(months), months, [delivered[m] for m in months]) if f]
    if failures:
        raise CommandError(f"{len(failures)} month(s) not refreshed:\n  " + "\n  ".join(failures))


def add_commands(commands, sample_options) -> None:
    sample = commands.add_parser("sample-data", help="write synthetic deliveries, example approvals and an external file")
    sample_options(sample)
    sample.add_argument("--output", help="home folder to write into (default LMDP_HOME)")
    sample.set_defaults(handler=cmd_sample_data)

    dictionary = commands.add_parser("dictionary", help="publish the data dictionary (runs through Dagster)")
    dictionary.set_defaults(handler=cmd_dictionary)

    refresh = commands.add_parser("refresh", help="ingest and validate deliveries (runs register_refresh through Dagster)")
    refresh.add_argument("--month", help="only this month, YYYY-MM (default: every month with a delivery)")
    refresh.set_defaults(handler=cmd_refresh)

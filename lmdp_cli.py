"""``lmdp``: the platform's command line (SPEC section 7).

A thin layer like assets/ and sensors/: argument parsing and messages here, the work
in lmdp_pipeline. Commands that materialise assets run through Dagster on the
persistent instance in DAGSTER_HOME (default LMDP_HOME/dagster), so their runs show in
the UI next to the scheduled ones. Every failure exits non-zero with one clear line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lmdp_pipeline.contracts import ContractError
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.synthetic import DEFAULT_MONTHS, DEFAULT_PERSONS, DEFAULT_SEED, Period, generate


class CommandError(Exception):
    """A failure the user can act on; printed without a traceback."""


def _dagster_instance(paths: PlatformPaths):
    """The persistent instance shared with ``make ui`` and the daemon."""
    from dagster import DagsterInstance

    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def _run_job(paths: PlatformPaths, job_name: str) -> None:
    from definitions import defs

    instance = _dagster_instance(paths)
    result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_step_failure]
        raise CommandError(f"job {job_name} failed (run {result.run_id}): {'; '.join(failures) or 'see the Dagster UI'}")
    print(f"job {job_name} succeeded (run {result.run_id})")


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
    for path in result.approvals + result.external:
        print(f"  wrote {path}")
    print(f"done in {time.perf_counter() - started:.1f} s")


def cmd_dictionary(args: argparse.Namespace, paths: PlatformPaths) -> None:
    _run_job(paths, "publish_dictionary")
    print(f"data dictionary: {paths.dictionary / 'html' / 'index.html'}")


def cmd_demo(args: argparse.Namespace, paths: PlatformPaths) -> None:
    args.output = None
    cmd_sample_data(args, paths)
    cmd_dictionary(args, paths)
    print(f"demo data under {paths.home}; open the UI with `make ui`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmdp", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add_sample_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--persons", type=int, default=DEFAULT_PERSONS, help="persons in the population (default %(default)s)")
        sub.add_argument("--months", default=DEFAULT_MONTHS, help="months to deliver, YYYY-MM:YYYY-MM (default %(default)s)")
        sub.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")

    sample = commands.add_parser("sample-data", help="write synthetic deliveries, example approvals and an external file")
    add_sample_options(sample)
    sample.add_argument("--output", help="home folder to write into (default LMDP_HOME)")
    sample.set_defaults(handler=cmd_sample_data)

    dictionary = commands.add_parser("dictionary", help="publish the data dictionary (runs through Dagster)")
    dictionary.set_defaults(handler=cmd_dictionary)

    demo = commands.add_parser("demo", help="sample data and everything built from it, on LMDP_HOME")
    add_sample_options(demo)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = PlatformPaths.from_env()
    try:
        args.handler(args, paths)
    except (CommandError, ContractError, ValueError, OSError) as exc:
        print(f"lmdp {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

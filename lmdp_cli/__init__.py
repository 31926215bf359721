"""``lmdp``: the platform's command line.

A thin layer like assets/ and sensors/: argument parsing and messages here, the work
in lmdp_pipeline, and every change of state in a Dagster run on the persistent instance
in DAGSTER_HOME (default LMDP_HOME/dagster), so the CLI's runs show in the UI next to
the scheduled ones and their audit lines are written by a run. Every failure exits
non-zero with one clear line. The process umask is private (077) and LMDP_HOME's
folders are made private before any command runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from lmdp_pipeline.contracts import ContractError
from lmdp_pipeline.keys import DEVELOPMENT_KEY_ENV, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, KeystoreError, MasterKey
from lmdp_pipeline.paths import PlatformPaths, secure_home
from lmdp_pipeline.synthetic import DEFAULT_MONTHS, DEFAULT_PERSONS, DEFAULT_SEED

from . import audit, keys, outputs, projects, registers
from .runs import CommandError


def _demo_master_key(paths: PlatformPaths) -> None:
    """The demo's master key: the operator's if set, else a development key, announced loudly and opted into."""
    if MASTER_KEY_ENV in os.environ or MASTER_KEY_FILE_ENV in os.environ:
        return
    key = MasterKey.create_development(paths.keys)
    os.environ[DEVELOPMENT_KEY_ENV] = "1"  # this process and the runs it starts only
    print(
        f"WARNING: using a DEVELOPMENT master key ({key.origin}). It sits next to the keys it protects: "
        f"fine for a demo, never for real data; set {MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV} instead.",
        file=sys.stderr,
    )


def _demo_preview(paths: PlatformPaths, path) -> None:
    """What ``lmdp approvals check`` says about the risk of one example, before it is built."""
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.projects.lifecycle import check

    print(f"{path.stem}: re-identification risk previewed from the warehouse")
    projects.print_risk(paths, check(paths, load_contracts(), path).plan, path)


def cmd_demo(args: argparse.Namespace, paths: PlatformPaths) -> None:
    args.output = None
    args.month = None
    _demo_master_key(paths)
    registers.cmd_sample_data(args, paths)
    registers.cmd_refresh(args, paths)
    registers.cmd_dictionary(args, paths)
    for path in paths.approval_files():
        args.project = path.stem
        _demo_preview(paths, path)
        projects.cmd_build(args, paths)
    for project, request, path in paths.output_request_files():
        if not outputs.released_before(paths, project, request):
            args.file = str(path)
            outputs.cmd_outputs_release(args, paths)
    print(f"demo data under {paths.home}; open the UI with `make ui`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmdp", description="The command line of the lmdp-pipeline microdata platform.")
    commands = parser.add_subparsers(dest="command", required=True)

    def sample_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--persons", type=int, default=DEFAULT_PERSONS, help="persons in the population (default %(default)s)")
        sub.add_argument("--months", default=DEFAULT_MONTHS, help="months to deliver, YYYY-MM:YYYY-MM (default %(default)s)")
        sub.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")

    registers.add_commands(commands, sample_options)
    projects.add_commands(commands)
    keys.add_commands(commands)
    audit.add_commands(commands)
    outputs.add_commands(commands)
    demo = commands.add_parser("demo", help="sample data and everything built from it, on LMDP_HOME")
    sample_options(demo)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = PlatformPaths.from_env()
    try:
        secure_home(paths)
        args.handler(args, paths)
    except BrokenPipeError:  # the reader (`| head`) closed the pipe: nothing more to say, to nobody
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CommandError, ContractError, KeystoreError, ValueError, OSError) as exc:
        print(f"lmdp {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0

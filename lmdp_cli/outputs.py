"""``lmdp outputs check FILE`` and ``lmdp outputs release FILE``: a request's preview and its release.

``check`` examines a request exactly as a release would (tables computed, rules,
differencing against every earlier release, suppression) and prints the decision and
every suppressed cell with its reasons; it writes nothing. ``release`` runs the same
Dagster job the requests sensor requests (``output_release``, with the request's
fingerprint in its typed config): the run decides, publishes and audits; this module
only prints what came out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lmdp_pipeline.paths import PlatformPaths

from .runs import CommandError, dagster_instance, requester, run_job


def _cell(cell, two_way: bool) -> str:
    return f"({cell.row or 'Total'}" + (f", {cell.col or 'Total'})" if two_way else ")")


def cmd_outputs_check(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.outputs.ledger import REFUSED
    from lmdp_pipeline.outputs.examination import examine
    from lmdp_pipeline.outputs.request import OutputRequestError

    path = Path(args.file)
    try:
        examination = examine(paths, load_contracts(), path)
    except OutputRequestError as error:
        raise CommandError(str(error)) from None
    if examination.status == REFUSED:
        reasons = examination.all_reasons
        raise CommandError(f"{path} would be refused ({len(reasons)} problem(s)):\n  " + "\n  ".join(reasons))
    print(f"{path}: would be {examination.status}. Request {examination.request} of {examination.project}, "
          f"by {examination.requester}; compared with {examination.releases} earlier release(s)")
    for reason in examination.review_reasons:
        print(f"  review: {reason}")
    for table in examination.tables:
        summary, two_way = table.summary(), table.cells.cols is not None
        print(f"  table {table.name}: {summary['cells']} cells, {summary['suppressed']} suppressed "
              f"({summary['secondary']} to protect others)")
        for cell in table.suppressed():
            print(f"    {_cell(cell, two_way)}: {', '.join(cell.reasons)}")
            for note in cell.notes:
                print(f"      {note}")
        for cell in table.review_cells:
            print(f"    {_cell(cell, two_way)}: published after review only: negative values")
    for attached in examination.attachments:
        print(f"  attached {attached.name} ({attached.declared.kind}): an output checker decides")
    for note in examination.notes:
        print(f"  note: {note}")


def released_before(paths: PlatformPaths, project: str, request: str) -> bool:
    """Say so and return True when ``request`` was released earlier: released outputs are final, so ``lmdp demo`` run
    again shows them instead of asking for them again (which ``outputs release`` refuses)."""
    from lmdp_pipeline.outputs.ledger import RELEASED, read_decision

    decision = read_decision(paths, project, request) or {}
    if decision.get("status") != RELEASED:
        return False
    print(_decision_line(paths, project, request, decision) + f" (on {decision.get('decided')})")
    return True


def _decision_line(paths: PlatformPaths, project: str, request: str, decision: dict) -> str:
    return f"  request {request} of {project}: {decision.get('status')}; files in {paths.home / decision.get('folder', '')}"


def cmd_outputs_release(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from assets.outputs import OUTPUT_REQUESTS, partition_key, release_run_config
    from assets.projects import PROJECT_TAG
    from lmdp_pipeline.outputs.ledger import read_decision
    from lmdp_pipeline.outputs.examination import request_fingerprint
    from lmdp_pipeline.outputs.request import OutputRequestError, request_names

    path = Path(args.file)
    try:
        project, request = request_names(path)
    except OutputRequestError as error:
        raise CommandError(str(error)) from None
    if not path.is_file():
        raise CommandError(f"{path}: the file does not exist")
    key = partition_key(project, request)
    instance = dagster_instance(paths)
    if not instance.has_dynamic_partition(OUTPUT_REQUESTS.name, key):
        instance.add_dynamic_partitions(OUTPUT_REQUESTS.name, [key])
    failure = run_job(paths, "output_release", key, None, release_run_config(request_fingerprint(paths, path), requester()),
                      {PROJECT_TAG: project})
    if failure:
        raise CommandError(failure)
    decision = read_decision(paths, project, request) or {}
    print(_decision_line(paths, project, request, decision))
    for name, table in decision.get("tables", {}).items():
        print(f"    table {name}: {table['cells']} cells, {table['suppressed']} suppressed")
    for reason in decision.get("review_reasons", []):
        print(f"    review: {reason}")


def add_commands(commands) -> None:
    outputs = commands.add_parser("outputs", help="researchers' output requests: check and release")
    output_commands = outputs.add_subparsers(dest="outputs_command", required=True)
    check = output_commands.add_parser("check", help="preview the decision on a request and its suppressed cells (writes nothing)")
    check.add_argument("file", help="outputs/<project>/requests/<request>.yaml under LMDP_HOME")
    check.set_defaults(handler=cmd_outputs_check)
    release = output_commands.add_parser("release", help="decide on a request and publish it (runs output_release through Dagster)")
    release.add_argument("file", help="outputs/<project>/requests/<request>.yaml under LMDP_HOME")
    release.set_defaults(handler=cmd_outputs_release)

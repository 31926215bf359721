"""``lmdp approvals check``, ``lmdp build`` and ``lmdp revoke``: a project's preview, build and end.

The preview ends with the re-identification risk the build will measure, estimated
from the warehouse before any key exists, and the coarser levels that would meet the
disclosure policy (with the approval lines that apply them).

Builds and retirements run the same Dagster jobs the sensors request, with the same
typed config; the run checks, acts and audits. This module only parses arguments and
prints what came out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmdp_pipeline.locks import WAIT_SECONDS, is_held
from lmdp_pipeline.paths import PlatformPaths, project_id

from .runs import CommandError, dagster_instance, requester, run_job


def cmd_approvals_check(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.projects.approval import ApprovalError
    from lmdp_pipeline.projects.external import ExternalDataRefused, inspect_external
    from lmdp_pipeline.projects.lifecycle import check
    from lmdp_pipeline.projects.rules import condition_lines, delivery_plan
    from lmdp_pipeline.projects.scope import estimate

    path = Path(args.file)
    contracts = load_contracts()
    try:
        checked = check(paths, contracts, path)
    except ApprovalError as error:
        raise CommandError(f"{path} is not valid ({len(error.problems)} problem(s)):\n  " + "\n  ".join(error.problems)) from None
    approval, period = checked.approval, checked.plan.period
    try:
        external = {name: inspect_external(paths, approval.project, name, dataset) for name, dataset in approval.external.items()}
    except ExternalDataRefused as refused:
        raise CommandError(f"{path}: {refused}") from None
    persons, rows = estimate(approval, contracts, paths.warehouse, period)
    rolling = f" (rolling: requested {approval.period.from_} to latest, up to the expiry date)" if approval.period.rolling else ""
    print(f"{path}: valid. Project {approval.project}, {approval.title} ({approval.institution})")
    print(f"  approved on {approval.approved_on} by {', '.join(approval.approved_by)}; expires {approval.expires_on}")
    print(f"  researchers (accounts that may open the extract): {', '.join(approval.researchers)}")
    print(f"  period {period.first} to {period.last}{rolling}")
    print(f"  estimated population: {persons:,} persons")
    for line in condition_lines(approval, contracts):
        print(f"    {line}")
    for register, variables in delivery_plan(approval, contracts).items():
        restricted = f" (restricted register: {approval.justifications[register]})" if register in approval.justifications else ""
        print(f"  table {register}: about {rows[register]:,} rows{restricted}")
        for name, level, justification in variables:
            note = f"  <- override: {justification}" if justification else ""
            print(f"    {name:<16} {level}{note}")
    for name, (read, invalid) in external.items():
        dataset = approval.external[name]
        print(f"  table external_{name}: from external/{approval.project}/{dataset.file}, {read:,} rows, "
              f"{invalid_ids(invalid)} left out; rows outside the population are dropped at build")
        for column, declared in dataset.columns.items():
            qi = " (quasi-identifier)" if declared.quasi_identifier else ""
            print(f"    {column:<16} {declared.type}{f' {declared.values}' if declared.values is not None else ''}{qi}")
    print_risk(paths, checked.plan, path)


def print_risk(paths: PlatformPaths, plan, path: Path) -> None:
    """The re-identification risk the build will find, and the suggestions; raise when the build would be refused."""
    from lmdp_pipeline.risk.assess import estimate_risk
    from lmdp_pipeline.risk.report import preview_lines

    risk = estimate_risk(paths, plan)
    for line in preview_lines(risk):
        print(f"  {line}")
    if risk.breaches and not risk.accepted:
        why = ("and beyond the figures its risk_acceptance covers (up_to)" if risk.acceptance is not None
               else "and the approval records no risk_acceptance")
        raise CommandError(f"{path}: its build would be refused: the re-identification risk is beyond the disclosure policy {why}; "
                           "apply a suggestion above or record the accepted risk")


def invalid_ids(rows: list[int]) -> str:
    from lmdp_pipeline.projects.external import row_list

    return f"{len(rows)} invalid matricules" + (f" ({row_list(rows)})" if rows else "")


def extract_summary(path: Path) -> str:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        rows = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
        persons = con.execute("SELECT count(DISTINCT person_id) FROM individuals").fetchone()[0] if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'individuals'").fetchone()[0] else None
        risk = dict(con.execute("SELECT item, coalesce(text, value::VARCHAR) FROM _risk WHERE scope = 'extract' AND month = 'period' "
                                "AND item IN ('result', 'share_at_risk')").fetchall())
    tables = ", ".join(f"{t} {n:,} rows" for t, n in json.loads(rows["table_rows"]).items())
    who = f"{persons:,} persons; " if persons is not None else ""
    lines = [f"{path}: {who}{tables} (key {rows['key_id']}, period {rows['period']})",
             f"  re-identification risk: {risk['result']} ({float(risk['share_at_risk']):.1%} of persons at risk in some month)"]
    for item, value in rows.items():
        if item.startswith("external_") and item.endswith("_linkage"):
            report = json.loads(value)
            lines.append(
                f"  {item.removesuffix('_linkage')}: {report['rows_read']:,} rows read, {invalid_ids(report['invalid_id_rows'])}, "
                f"{report['linked']:,} linked, {report['not_linked']:,} outside the population"
            )
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from assets.projects import PROJECT_TAG, PROJECTS, build_run_config, build_selection
    from lmdp_pipeline.projects.approval import ApprovalError, parse_approval
    from lmdp_pipeline.projects.lifecycle import fingerprint

    project = project_id(args.project)
    path = paths.approval_file(project)
    if not path.exists():
        raise CommandError(f"no approval for {project}: expected {path}")
    try:
        selection = build_selection(parse_approval(path))
    except ApprovalError:
        selection = None  # the run refuses it, and audits why
    instance = dagster_instance(paths)
    if not instance.has_dynamic_partition(PROJECTS.name, project):
        instance.add_dynamic_partitions(PROJECTS.name, [project])
    if is_held(paths.project_lock(project)):
        print(f"another build or retirement of {project} is running: this build waits for it to end "
              f"(up to {WAIT_SECONDS / 60:.0f} minutes), then starts", file=sys.stderr, flush=True)
    failure = run_job(paths, "project_build", project, selection, build_run_config(fingerprint(paths, path), requester()),
                      {PROJECT_TAG: project})
    if failure:
        raise CommandError(failure)
    extract, package = paths.extract_file(project), paths.package_file(project)
    print("  " + extract_summary(extract))
    print(f"  exports and codebook: {paths.exports_dir(project)}; package: "
          f"{package if package.exists() else 'none (the approval lists no recipients)'}")
    print(f"  open it with: {sys.executable} -c \"import duckdb; print(duckdb.connect('{extract}', read_only=True).sql('SHOW TABLES'))\"")


def cmd_revoke(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from assets.projects import PROJECT_TAG

    project = project_id(args.project)
    config = {"ops": {"retire_project_op": {"config": {"project": project, "reason": args.reason, "destroy_key": True}}}}
    failure = run_job(paths, "retire_project", run_config=config, tags={PROJECT_TAG: project})
    if failure:
        raise CommandError(failure)
    print(f"project {project} retired: extract and published files deleted, key destroyed, tombstone written "
          f"({paths.keys}/{project}.destroyed.json); it can never be built again")


def add_commands(commands) -> None:
    approvals = commands.add_parser("approvals", help="work with approval specs")
    approval_commands = approvals.add_subparsers(dest="approvals_command", required=True)
    check = approval_commands.add_parser("check", help="validate an approval and show what it would deliver")
    check.add_argument("file", help="approval YAML file")
    check.set_defaults(handler=cmd_approvals_check)

    build = commands.add_parser("build", help="build a project's extract (runs project_build through Dagster)")
    build.add_argument("project", help="project id, e.g. P2026-001 (its approval is approvals/<project>.yaml)")
    build.set_defaults(handler=cmd_build)

    revoke = commands.add_parser("revoke", help="retire a project: delete its extract, destroy its key (runs retire_project)")
    revoke.add_argument("project")
    revoke.add_argument("--reason", default="revoked with lmdp revoke", help="recorded in the audit log")
    revoke.set_defaults(handler=cmd_revoke)

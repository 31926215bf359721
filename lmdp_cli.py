"""``lmdp``: the platform's command line (SPEC section 7).

A thin layer like assets/ and sensors/: argument parsing and messages here, the work
in lmdp_pipeline. Commands that materialise assets run through Dagster on the
persistent instance in DAGSTER_HOME (default LMDP_HOME/dagster), so their runs show in
the UI next to the scheduled ones. Every failure exits non-zero with one clear line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lmdp_pipeline.contracts import ContractError
from lmdp_pipeline.keys import KeystoreError
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.synthetic import DEFAULT_MONTHS, DEFAULT_PERSONS, DEFAULT_SEED, Period, generate
from lmdp_pipeline.period import parse_month


DAGSTER_SETTINGS = """# Written by lmdp on first use; SQLite storage under this folder. See docs/operations.md.
telemetry:
  enabled: false
"""
REFRESH_WORKERS = os.cpu_count() or 1
"""Months are independent partitions: one run per core at a time."""
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""The runs' event log keeps every event (the UI shows them); the terminal shows the command's own
one-line summary of each run, with the failure's message, instead of Dagster's stack traces."""


class CommandError(Exception):
    """A failure the user can act on; printed without a traceback."""


def _dagster_instance(paths: PlatformPaths):
    """The persistent instance shared with ``make ui`` and the daemon."""
    from dagster import DagsterInstance

    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DAGSTER_SETTINGS, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def _run_job(paths: PlatformPaths, job_name: str, partition_key: str | None = None, asset_selection=None) -> str | None:
    """Run a job in this process on the persistent instance; return None or the failure text."""
    from definitions import defs

    instance = _dagster_instance(paths)
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        asset_selection=asset_selection,
        run_config=QUIET_RUN,
        raise_on_error=False,
    )
    label = f"{job_name}" + (f" [{partition_key}]" if partition_key else "")
    if result.success:
        # one write per line: refresh workers print side by side into the same stream
        print(f"{label}: succeeded (run {result.run_id})\n", end="", flush=True)
        return None
    failures = [_failure_text(e.step_failure_data) for e in result.all_events if e.is_step_failure]
    return f"{label} failed (run {result.run_id}): " + ("; ".join(failures) or "see the Dagster UI")


def _failure_text(failure) -> str:
    """A step's failure as the user should read it: our Failure's description, else the error's message."""
    if failure.user_failure_data is not None and failure.user_failure_data.description:
        return failure.user_failure_data.description.strip()
    return failure.error.message.strip()


def _delivered_months(paths: PlatformPaths) -> dict[str, list[str]]:
    """Month -> registers with a delivery file in landing/."""
    months: dict[str, list[str]] = {}
    for path in sorted(paths.landing.glob("*/*_????-??.csv")):
        register, month = path.stem.rsplit("_", 1)
        if register == path.parent.name:
            months.setdefault(month, []).append(register)
    return months


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
    failure = _run_job(paths, "publish_dictionary")
    if failure:
        raise CommandError(failure)
    print(f"data dictionary: {paths.dictionary / 'html' / 'index.html'}")


def _refresh_month(home: str, month: str, registers: list[str]) -> str | None:
    """One month's register_refresh (run in a worker process; returns None or the failure)."""
    from assets.registers import register_key

    return _run_job(PlatformPaths(Path(home)), "register_refresh", month, [register_key(r) for r in registers])


def cmd_refresh(args: argparse.Namespace, paths: PlatformPaths) -> None:
    delivered = _delivered_months(paths)
    if args.month:
        parse_month(args.month)
        if args.month not in delivered:
            raise CommandError(f"no delivery for {args.month} in {paths.landing}")
        delivered = {args.month: delivered[args.month]}
    if not delivered:
        raise CommandError(f"no deliveries in {paths.landing}; run `lmdp sample-data` or drop files there")
    _dagster_instance(paths)  # create the instance folder once, before the workers share it
    months = sorted(delivered)
    workers = max(1, min(REFRESH_WORKERS, len(months)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        failures = [f for f in pool.map(_refresh_month, [str(paths.home)] * len(months), months, [delivered[m] for m in months]) if f]
    if failures:
        raise CommandError(f"{len(failures)} month(s) not refreshed:\n  " + "\n  ".join(failures))


def cmd_approvals_check(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from lmdp_pipeline.approvals import ApprovalError, delivery_plan
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.external import ExternalDataRefused, inspect_external
    from lmdp_pipeline.projects import check
    from lmdp_pipeline.scope import estimate

    path = Path(args.file)
    contracts = load_contracts()
    try:
        approval = check(paths, contracts, path).approval
    except ApprovalError as error:
        raise CommandError(f"{path} is not valid ({len(error.problems)} problem(s)):\n  " + "\n  ".join(error.problems)) from None
    try:
        external = {name: inspect_external(paths.external, approval.project, name, dataset) for name, dataset in approval.external.items()}
    except ExternalDataRefused as refused:
        raise CommandError(f"{path}: {refused}") from None
    persons, rows = estimate(approval, contracts, paths.warehouse)
    print(f"{path}: valid. Project {approval.project}, {approval.title} ({approval.institution})")
    print(f"  period {approval.period.from_} to {approval.period.to}; expires {approval.expires_on}")
    print(f"  estimated population: {persons:,} persons")
    for register, variables in delivery_plan(approval, contracts).items():
        restricted = f" (restricted register: {approval.justifications[register]})" if register in approval.justifications else ""
        print(f"  table {register}: about {rows[register]:,} rows{restricted}")
        for name, level, justification in variables:
            note = f"  <- override: {justification}" if justification else ""
            print(f"    {name:<16} {level}{note}")
    for name, (read, invalid) in external.items():
        dataset = approval.external[name]
        print(f"  table external_{name}: from external/{approval.project}/{dataset.file}, {read:,} rows, "
              f"{_invalid_ids(invalid)} left out; rows outside the population are dropped at build")
        for column, declared in dataset.columns.items():
            print(f"    {column:<16} {declared.type}{f' {declared.values}' if declared.values is not None else ''}")


def _invalid_ids(rows: list[int]) -> str:
    from lmdp_pipeline.external import row_list

    return f"{len(rows)} invalid matricules" + (f" ({row_list(rows)})" if rows else "")


def _extract_summary(path: Path) -> str:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        rows = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
        persons = con.execute("SELECT count(DISTINCT person_id) FROM individuals").fetchone()[0] if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'individuals'").fetchone()[0] else None
    tables = ", ".join(f"{t} {n:,} rows" for t, n in json.loads(rows["table_rows"]).items())
    who = f"{persons:,} persons; " if persons is not None else ""
    lines = [f"{path}: {who}{tables} (key {rows['key_id']})"]
    for item, value in rows.items():
        if item.startswith("external_") and item.endswith("_linkage"):
            report = json.loads(value)
            lines.append(
                f"  {item.removesuffix('_linkage')}: {report['rows_read']:,} rows read, {_invalid_ids(report['invalid_id_rows'])}, "
                f"{report['linked']:,} linked, {report['not_linked']:,} outside the population"
            )
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from assets.projects import PROJECTS, build_selection
    from lmdp_pipeline import audit
    from lmdp_pipeline.approvals import ApprovalError
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.projects import approval_file, check, ensure_key, is_retired, keystore

    path = approval_file(paths, args.project)
    if not path.exists():
        raise CommandError(f"no approval for {args.project}: expected {path}")
    try:
        checked = check(paths, load_contracts(), path)
    except ApprovalError as error:
        raise CommandError(f"{path} is not valid, nothing built:\n  " + "\n  ".join(error.problems)) from None
    approval = checked.approval
    if is_retired(approval):
        raise CommandError(f"project {approval.project} is revoked or expired; nothing is built")
    key = ensure_key(keystore(paths), approval.project, paths.audit)
    instance = _dagster_instance(paths)
    if not instance.has_dynamic_partition(PROJECTS.name, approval.project):
        instance.add_dynamic_partitions(PROJECTS.name, [approval.project])
    audit.record(paths.audit, "build_requested", project=approval.project, approval_sha256=checked.sha256, key_id=key.key_id)
    failure = _run_job(paths, "project_build", approval.project, build_selection(approval))
    if failure:
        raise CommandError(failure)
    extract = paths.extracts / f"{approval.project}.duckdb"
    audit.record(paths.audit, "extract_built", project=approval.project, approval_sha256=checked.sha256, key_id=key.key_id)
    print("  " + _extract_summary(extract))
    print(f"  open it with: {sys.executable} -c \"import duckdb; print(duckdb.connect('{extract}', read_only=True).sql('SHOW TABLES'))\"")


def cmd_revoke(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from lmdp_pipeline.projects import keystore, retire

    entry = retire(paths, keystore(paths), args.project, args.reason)
    print(f"project {args.project} retired: extract deleted: {entry['extract_deleted']}, key destroyed: {entry['key_destroyed'] or 'none'}")


def cmd_keys_rotate(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from lmdp_pipeline import audit
    from lmdp_pipeline.keys import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, MasterKey
    from lmdp_pipeline.projects import keystore

    new_master = MasterKey.from_file(Path(args.new_key_file).resolve())
    store = keystore(paths)
    if store.master_material_is(new_master):
        raise CommandError(f"{args.new_key_file} holds the master key in use: generate a new one; nothing was rewrapped")
    rewrapped = store.rewrap(new_master)
    audit.record(paths.audit, "master_key_rotated", projects=rewrapped, new_master=new_master.origin)
    print(f"{len(rewrapped)} project keys rewrapped under the master key in {args.new_key_file}; no pseudonym changes.")
    print(f"Now point {MASTER_KEY_FILE_ENV} (or {MASTER_KEY_ENV}) at the new key for the daemon, the webserver and the CLI, "
          "restart them, and destroy the old key.")


def _demo_master_key(paths: PlatformPaths) -> None:
    """The demo's master key: the operator's if set, else a development key, announced loudly."""
    from lmdp_pipeline.keys import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, MasterKey

    if os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV):
        MasterKey.from_environment(paths.keys)
        return
    key = MasterKey.create_development(paths.keys)
    print(
        f"WARNING: using a DEVELOPMENT master key ({key.origin}). It sits next to the keys it protects: "
        f"fine for a demo, never for real data; set {MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV} instead.",
        file=sys.stderr,
    )


def cmd_demo(args: argparse.Namespace, paths: PlatformPaths) -> None:
    args.output = None
    args.month = None
    _demo_master_key(paths)
    cmd_sample_data(args, paths)
    cmd_refresh(args, paths)
    cmd_dictionary(args, paths)
    for path in sorted(paths.approvals.glob("*.yaml")):
        args.project = path.stem
        cmd_build(args, paths)
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

    approvals = commands.add_parser("approvals", help="work with approval specs")
    approval_commands = approvals.add_subparsers(dest="approvals_command", required=True)
    check = approval_commands.add_parser("check", help="validate an approval and show what it would deliver")
    check.add_argument("file", help="approval YAML file")
    check.set_defaults(handler=cmd_approvals_check)

    build = commands.add_parser("build", help="build a project's extract (runs project_build through Dagster)")
    build.add_argument("project", help="project id, e.g. P2026-001 (its approval is approvals/<project>.yaml)")
    build.set_defaults(handler=cmd_build)

    revoke = commands.add_parser("revoke", help="delete a project's extract and destroy its key")
    revoke.add_argument("project")
    revoke.add_argument("--reason", default="revoked with lmdp revoke", help="recorded in the audit log")
    revoke.set_defaults(handler=cmd_revoke)

    keys = commands.add_parser("keys", help="manage the keystore")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser("rotate", help="rewrap every project key under a new master key (pseudonyms unchanged)")
    rotate.add_argument("--new-key-file", required=True, help="file holding the new master key (32 random bytes, base64); "
                        "never pass a key on the command line")
    rotate.set_defaults(handler=cmd_keys_rotate)

    refresh = commands.add_parser("refresh", help="ingest and validate deliveries (runs register_refresh through Dagster)")
    refresh.add_argument("--month", help="only this month, YYYY-MM (default: every month with a delivery)")
    refresh.set_defaults(handler=cmd_refresh)

    demo = commands.add_parser("demo", help="sample data and everything built from it, on LMDP_HOME")
    add_sample_options(demo)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = PlatformPaths.from_env()
    try:
        args.handler(args, paths)
    except (CommandError, ContractError, KeystoreError, ValueError, OSError) as exc:
        print(f"lmdp {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

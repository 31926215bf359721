"""``lmdp audit verify``: the audit log's hash chain, and its end against the head Dagster recorded."""

from __future__ import annotations

import argparse

from lmdp_pipeline.audit import AuditLog, verify
from lmdp_pipeline.paths import PlatformPaths

from .runs import CommandError, dagster_instance


def cmd_audit_verify(args: argparse.Namespace, paths: PlatformPaths) -> None:
    from assets.audit_log import recorded_head

    log = AuditLog(paths.audit)
    verdict = verify(log.path, recorded_head(dagster_instance(paths)))
    if not verdict.ok:
        raise CommandError(f"{log.path}: TAMPERED: {verdict.message}")
    print(f"{log.path}: {verdict.message}")


def add_commands(commands) -> None:
    audit = commands.add_parser("audit", help="the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    check = audit_commands.add_parser("verify", help="check the hash chain and that it reaches the head Dagster recorded")
    check.set_defaults(handler=cmd_audit_verify)

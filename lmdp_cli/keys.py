"""``lmdp keys rotate`` and ``lmdp keys reissue``: the keystore's two changes, each a Dagster run."""

from __future__ import annotations

import argparse
from pathlib import Path

from lmdp_pipeline.keys import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV
from lmdp_pipeline.paths import PlatformPaths, project_id

from .runs import CommandError, run_job


def cmd_keys_rotate(args: argparse.Namespace, paths: PlatformPaths) -> None:
    config = {"ops": {"rotate_master_key_op": {"config": {"new_key_file": str(Path(args.new_key_file).resolve())}}}}
    failure = run_job(paths, "rotate_master_key", run_config=config)
    if failure:
        raise CommandError(failure)
    print(f"every project key rewrapped under the master key in {args.new_key_file}; no pseudonym changes.")
    print(f"Now point {MASTER_KEY_FILE_ENV} (or {MASTER_KEY_ENV}) at the new key for the daemon, the webserver and the CLI, "
          "restart them, and destroy the old key.")


def cmd_keys_reissue(args: argparse.Namespace, paths: PlatformPaths) -> None:
    project = project_id(args.project)
    config = {"ops": {"reissue_project_key_op": {"config": {"project": project, "reason": args.reason}}}}
    failure = run_job(paths, "reissue_project_key", run_config=config)
    if failure:
        raise CommandError(failure)
    print(f"project {project} has a new key. EVERY PSEUDONYM OF THE PROJECT CHANGES at its next build: researchers' "
          "earlier results cannot be linked to the new extract by person_id.")


def add_commands(commands) -> None:
    keys = commands.add_parser("keys", help="manage the keystore")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser("rotate", help="rewrap every project key under a new master key (pseudonyms unchanged)")
    rotate.add_argument("--new-key-file", required=True, help="file holding the new master key (32 random bytes, base64); "
                        "never pass a key on the command line")
    rotate.set_defaults(handler=cmd_keys_rotate)
    reissue = key_commands.add_parser("reissue", help="make a new key for a project whose key is lost (every pseudonym changes)")
    reissue.add_argument("project")
    reissue.add_argument("--reason", required=True, help="why the key is reissued; recorded in the audit log")
    reissue.set_defaults(handler=cmd_keys_reissue)

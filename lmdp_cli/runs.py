"""Running Dagster jobs from the command line, on the persistent instance the UI and the daemon share.

A command that changes anything runs a job in this process (``execute_in_process``) on
the instance in DAGSTER_HOME, so its run, its events and its audit chain heads are in
the same event log as the scheduled ones, and the UI shows them. Each run is tagged with
this process's host and pid; a run whose ``lmdp`` process was killed is marked failed
by the daemon's run monitoring (deploy/dagster.yaml) or, without a daemon, by the next
``lmdp`` command on the host (``run_workers.fail_orphaned_runs``).
"""

from __future__ import annotations

import getpass
import os
import sys
import warnings

from lmdp_pipeline.files import private_dir
from lmdp_pipeline.paths import PlatformPaths

DAGSTER_SETTINGS = """# Written by lmdp on first use; SQLite storage under this folder. See docs/operations.md.
telemetry:
  enabled: false
"""
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""The runs' event log keeps every event (the UI shows them); the terminal shows the command's own
one-line summary of each run, with the failure's message, instead of Dagster's stack traces."""


OWN_BETA_WARNING = r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta"
"""Dagster (1.13) warns about a beta parameter that its own code passes when it resolves the definitions' sensors,
not one of ours: noise an operator can do nothing about, kept out of every command's output."""


class CommandError(Exception):
    """A failure the user can act on; printed without a traceback."""


def requester() -> str:
    """Who asked, as the audit log records a CLI run."""
    try:
        return f"lmdp (account {getpass.getuser()})"
    except (KeyError, OSError):
        return "lmdp"


def dagster_instance(paths: PlatformPaths):
    """The persistent instance shared with ``make ui`` and the daemon, opened once per process (opening one
    checks its storage's schema: a second of a short command). Opening it marks failed the runs that killed
    ``lmdp`` processes of this host left in progress."""
    from dagster import DagsterInstance

    home = paths.dagster_home
    if home not in _instances:
        private_dir(home)
        settings = home / "dagster.yaml"
        if not settings.exists():
            settings.write_text(DAGSTER_SETTINGS, encoding="utf-8")
        os.environ["DAGSTER_HOME"] = str(home)
        instance = _instances[home] = DagsterInstance.get()
        from run_workers import fail_orphaned_runs

        for run_id in fail_orphaned_runs(instance):
            print(f"run {run_id} was left in progress by a killed lmdp process: marked failed", file=sys.stderr)
    return _instances[home]


_instances: dict = {}


def run_job(paths: PlatformPaths, job_name: str, partition_key: str | None = None, asset_selection=None,
            run_config: dict | None = None, tags: dict | None = None) -> str | None:
    """Run a job in this process on the persistent instance; return None or the failure text."""
    from definitions import defs
    from run_workers import cli_run_tags

    instance = dagster_instance(paths)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=OWN_BETA_WARNING)
        job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        asset_selection=asset_selection,
        run_config={**QUIET_RUN, **(run_config or {})},
        tags={**cli_run_tags(), **(tags or {})},
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

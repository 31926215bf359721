"""Runs whose process died are marked failed: the deployment's run launcher and the CLI's sweep.

Dagster's default run launcher cannot tell whether a run worker still lives, so its run
monitoring never fails a run whose worker was killed, and a run executed in process by
``lmdp`` has no worker the daemon knows of. Both kinds leave a process identity behind:

- a run launched by the daemon: the run worker logs its pid in an engine event when it
  starts (the worker runs on the daemon's host: local code servers);
- a run of ``lmdp``: the command tags it with its host and pid (``cli_run_tags``).

``LocalRunLauncher`` (deploy/dagster.yaml) is the default launcher with a health
check over those identities, so the daemon's run monitoring marks such runs failed.
Without a daemon (``make demo``, SQLite), ``fail_orphaned_runs`` does the same for the
CLI's own runs of this host at the start of the next ``lmdp`` command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

from lmdp_pipeline.processes import alive, this_host

HOST_TAG = "lmdp/host"
PID_TAG = "lmdp/pid"
IN_PROGRESS = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def cli_run_tags() -> dict[str, str]:
    """Tags naming the process that executes a run in process (``lmdp``)."""
    return {HOST_TAG: this_host(), PID_TAG: str(os.getpid())}


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    recorded_at: float  # when the pid was recorded: the process must have been running by then

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def run_worker(instance: DagsterInstance, run: DagsterRun) -> Worker | None:
    """The process that executes ``run``, if it said which: CLI tags, else the run worker's engine event."""
    if PID_TAG in run.tags and HOST_TAG in run.tags:
        record = instance.get_run_record_by_id(run.run_id)
        return Worker(run.tags[HOST_TAG], int(run.tags[PID_TAG]), record.create_timestamp.timestamp())
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return Worker(this_host(), int(pid.value), entry.timestamp)
    return None


def worker_gone(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """Why ``run`` can no longer finish (its process is gone), or None (alive, or not known here)."""
    worker = run_worker(instance, run)
    if worker is None or alive(worker.host, worker.pid, worker.recorded_at) is not False:
        return None
    return (f"the process executing this run ({worker.describe()}) is gone: killed or crashed before the run ended. "
            "Anything it was writing was never published (hidden candidate files); start the run again")


class LocalRunLauncher(DefaultRunLauncher):
    """The default run launcher, with a worker health check for the daemon's run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        gone = worker_gone(self._instance, run)
        if gone:
            return CheckRunHealthResult(WorkerStatus.FAILED, gone)
        return CheckRunHealthResult(WorkerStatus.RUNNING, "alive, not started yet, or on another host")


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed every in-progress run of an ``lmdp`` process of this host that is gone; return their ids."""
    records = instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: this_host()}))
    failed = []
    for record in records:
        gone = worker_gone(instance, record.dagster_run)
        if gone:
            instance.report_run_failed(record.dagster_run, gone)
            failed.append(record.dagster_run.run_id)
    return failed

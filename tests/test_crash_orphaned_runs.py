"""Runs whose process died are found and failed; the production configuration in deploy/ is consistent.

Real processes (started, killed, reaped or left as zombies), a real temporary Dagster
instance, the real deploy/ files. The end-to-end versions are tests/test_crash.py and
tests/test_postgres_deployment.py (slow).
"""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from lmdp_pipeline.paths import PROJECT_ROOT
from lmdp_pipeline.processes import alive, started_at, this_host

DEPLOY = PROJECT_ROOT / "deploy"


def _dead_pid() -> int:
    """The pid of a process that ran and was reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_process_is_alive_and_a_dead_or_reused_one_is_not():
    now = time.time()
    assert alive(this_host(), os.getpid(), now) is True
    assert alive(this_host(), _dead_pid(), now) is False
    # a pid recorded before this process existed belongs to another process, whatever runs under it now
    assert alive(this_host(), os.getpid(), started_at(os.getpid()) - 60) is False
    assert alive("another-host.example", os.getpid(), now) is None


def test_a_killed_child_not_yet_reaped_counts_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        recorded = time.time()
        assert alive(this_host(), child.pid, recorded) is True
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert alive(this_host(), child.pid, recorded) is False, "a zombie is a dead process"
    finally:
        child.kill()
        child.wait()


def test_start_time_agrees_with_ps():
    """/proc arithmetic checked against procps' own idea of the process's age (etimes: seconds since start)."""
    etimes = int(subprocess.run(["ps", "-o", "etimes=", "-p", str(os.getpid())], capture_output=True, text=True, check=True).stdout)
    assert abs((time.time() - started_at(os.getpid())) - etimes) <= 2


@dg.op
def _noop() -> None:
    pass


@dg.job
def _job():
    _noop()


def _in_progress_run(instance: dg.DagsterInstance, tags: dict) -> str:
    """A run left STARTED, as one whose process was killed mid-run leaves it."""
    run = instance.create_run_for_job(_job, tags=tags)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name, message="started"))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run.run_id


def test_the_cli_sweep_fails_only_runs_of_dead_processes_of_this_host():
    from run_workers import HOST_TAG, PID_TAG, fail_orphaned_runs

    with dg.instance_for_test() as instance:
        gone = _dead_pid()
        dead = _in_progress_run(instance, {HOST_TAG: this_host(), PID_TAG: str(gone)})
        mine = _in_progress_run(instance, {HOST_TAG: this_host(), PID_TAG: str(os.getpid())})
        elsewhere = _in_progress_run(instance, {HOST_TAG: "another-host.example", PID_TAG: "1"})
        daemons = _in_progress_run(instance, {})
        assert fail_orphaned_runs(instance) == [dead]
        status = {r: instance.get_run_by_id(r).status for r in (dead, mine, elsewhere, daemons)}
        assert status == {dead: dg.DagsterRunStatus.FAILURE, mine: dg.DagsterRunStatus.STARTED,
                          elsewhere: dg.DagsterRunStatus.STARTED, daemons: dg.DagsterRunStatus.STARTED}
        messages = [e.message for e in instance.all_logs(dead) if e.dagster_event and e.dagster_event.is_run_failure]
        assert any(f"(pid {gone} on {this_host()}) is gone" in m for m in messages)
        assert fail_orphaned_runs(instance) == [], "a failed run is not failed twice"


def test_the_launchers_health_check_reads_the_run_workers_pid():
    from dagster._core.events import EngineEventData
    from dagster._core.launcher import WorkerStatus

    from run_workers import HOST_TAG, PID_TAG, LocalRunLauncher

    with dg.instance_for_test(overrides={"run_launcher": {"module": "run_workers", "class": "LocalRunLauncher"}}) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalRunLauncher) and launcher.supports_check_run_worker_health
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            run_id = _in_progress_run(instance, {})
            run = instance.get_run_by_id(run_id)
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING, "no pid logged yet: cannot tell"
            instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid))
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
            worker.kill()
            worker.wait()
            result = launcher.check_run_worker_health(run)
            assert result.status == WorkerStatus.FAILED and f"pid {worker.pid}" in result.msg
        finally:
            worker.kill()
            worker.wait()
        # a run of a killed `lmdp` command is failed by the daemon too, from its tags
        cli_run = instance.get_run_by_id(_in_progress_run(instance, {HOST_TAG: this_host(), PID_TAG: str(_dead_pid())}))
        assert launcher.check_run_worker_health(cli_run).status == WorkerStatus.FAILED
        live_cli_run = instance.get_run_by_id(_in_progress_run(instance, {HOST_TAG: this_host(), PID_TAG: str(os.getpid())}))
        assert launcher.check_run_worker_health(live_cli_run).status == WorkerStatus.RUNNING


def _instance_config() -> dict:
    from dagster._core.instance.config import dagster_instance_config

    env = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USER": "lmdp",
           "DAGSTER_PG_PASSWORD": "not-a-secret"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return dagster_instance_config(str(DEPLOY))[0]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


def test_the_production_instance_config_is_valid_and_names_the_tags_the_runs_carry():
    from assets.projects import PROJECT_TAG
    from sensors.jobs import KIND_TAG, project_build, register_refresh

    config = _instance_config()
    assert set(config["storage"]) == {"postgres"}, "runs, event log and schedules all in PostgreSQL"
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}, "no password in the file"
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2", "the driver dagster-postgres installs"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert (config["run_launcher"]["module"], config["run_launcher"]["class"]) == ("run_workers", "LocalRunLauncher")
    assert config["run_monitoring"]["enabled"] is True
    limits = {(limit["key"], json_value(limit.get("value"))): limit["limit"] for limit in
              config["run_coordinator"]["config"]["tag_concurrency_limits"]}
    assert limits[(PROJECT_TAG, "per value")] == 1 and limits[("dagster/partition", "per value")] == 1
    assert limits[(KIND_TAG, project_build.tags[KIND_TAG])] >= 1 and limits[(KIND_TAG, register_refresh.tags[KIND_TAG])] >= 1
    # the run queue sizes runs, not steps: each heavy run keeps its steps in its own process
    assert project_build.executor_def.name == register_refresh.executor_def.name == "in_process"


def json_value(value) -> str | None:
    return "per value" if isinstance(value, dict) and value.get("applyLimitPerUniqueValue") else value


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / name)
    return unit


@pytest.mark.parametrize("name, command", [("lmdp-dagster-webserver.service", "dagster-webserver"),
                                           ("lmdp-dagster-daemon.service", "dagster-daemon")])
def test_the_systemd_units_start_the_two_services_of_this_checkout(name, command):
    service = _unit(name)["Service"]
    executable, *arguments = service["ExecStart"].split()
    assert Path(executable).name == command and (Path(sys.executable).parent / command).is_file()
    assert arguments[arguments.index("-w") + 1] == "workspace.yaml" and (PROJECT_ROOT / "workspace.yaml").is_file()
    assert service["UMask"] == "0077" and service["EnvironmentFile"] == "/etc/lmdp/lmdp.env"
    environment = yaml.safe_load((DEPLOY / "lmdp.env.example").read_text().replace("=", ": "))
    assert {"LMDP_HOME", "DAGSTER_HOME", "DAGSTER_PG_PASSWORD"} <= set(environment)
    assert "LMDP_MASTER_KEY" not in environment, "the master key is never in the environment file"
    if command == "dagster-daemon":
        assert service["LoadCredential"].startswith("lmdp-master-key:") and "%d/lmdp-master-key" in service["Environment"]
    else:
        assert "LoadCredential" not in service and "MASTER_KEY" not in (DEPLOY / name).read_text(), "the webserver only queues runs"

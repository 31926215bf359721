"""The production configuration, end to end, on a real PostgreSQL: deploy/dagster.yaml as shipped.

A PostgreSQL cluster (Debian's postgresql package; ``make postgres`` installs it) is
created in a temporary folder and run as an unprivileged user (PostgreSQL refuses
root), with a password. The Dagster webserver and daemon run as two processes, as the
systemd units in deploy/ start them. Then, as operators work:

1. two months of deliveries are dropped into landing/: the ``register_deliveries``
   sensor's runs go through the queue and succeed;
2. an approval is dropped into approvals/: the ``project_approvals`` sensor's build
   succeeds and its blocking checks are read back through GraphQL;
3. two builds of the same project are submitted at once: the queue's per-project limit
   runs them one after the other (the second QUEUED while the first runs, started only
   after it ended, their audit lines never interleaved);
4. a build's run worker and the code server that launched it are killed with SIGKILL
   while the build runs (a crash or the OOM killer; a code server alone would report
   its worker's death): the daemon's run monitoring marks the run failed, and the
   extract stays the last good one.

Slow (a few minutes): every run starts its own worker process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lmdp_pipeline.paths import PROJECT_ROOT

from .dagster_services import free_port, graphql, start_service, stop_service, wait_for
from .postgres_cluster import PostgresMissing, temporary_cluster

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:gql.*")]

BIN = Path(sys.executable).parent
PROJECT = "P2026-001"
MONTHS = ("2024-01", "2024-02")
STARTUP_SECONDS = 180
RUN_SECONDS = 900
CHECK_NAMES = ["no_direct_identifiers", "scope_and_period", "levels_not_finer", "approved_items_only", "pseudonyms_unique",
               "row_order", "period_complete"]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster in a temporary folder, owned and run by an unprivileged user; yields its connection."""
    try:
        with temporary_cluster() as env:
            yield env
    except PostgresMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="module")
def platform(postgres, tmp_path_factory):
    """A home with the production dagster.yaml; deliveries and approvals generated, then held back."""
    root = tmp_path_factory.mktemp("pg-platform")
    home, held = root / "home", root / "held"
    dagster_home = home / "dagster"
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    env = os.environ | postgres | {"LMDP_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "LMDP_MASTER_KEY": master}
    env.pop("LMDP_MASTER_KEY_FILE", None)
    done = subprocess.run([str(BIN / "lmdp"), "sample-data", "--persons", "300", "--months", f"{MONTHS[0]}:{MONTHS[-1]}"],
                          env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    held.mkdir()
    for zone in ("landing", "approvals"):
        shutil.move(home / zone, held / zone)
        (home / zone).mkdir()
    dagster_home.mkdir(mode=0o700)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    return home, held, env, root


@pytest.fixture(scope="module")
def services(platform):
    """``dagster-webserver`` and ``dagster-daemon run``: the two services of deploy/, on the PostgreSQL instance."""
    home, _, env, root = platform
    port = free_port()
    logs = root / "webserver.log", root / "daemon.log"
    webserver = start_service([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], env, logs[0])
    daemon = start_service([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs[1])
    try:
        wait_for("the webserver", STARTUP_SECONDS,
              lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).status == 200, logs)
        yield port, logs
    finally:
        stop_service(webserver)
        stop_service(daemon)


RUNS = """query ($job: String!) { runsOrError(filter: {pipelineName: $job}) {
  ... on Runs { results { runId status startTime endTime tags { key value } } } } }"""
CHECK = """query ($key: AssetKeyInput!, $name: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $name, partition: $partition, limit: 1) {
    runId status evaluation { success } } }"""
FAILURE = """query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }
"""
EVENTS = """query ($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
  __typename ... on MessageEvent { message } } } } }"""


def _runs(port: int, job: str) -> list[dict]:
    runs = graphql(port, RUNS, {"job": job})["runsOrError"]["results"]
    return [r | {"tags": {t["key"]: t["value"] for t in r["tags"]}} for r in runs]


def _finished(port: int, job: str, count: int):
    def probe():
        runs = _runs(port, job)
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done if len(done) >= count else None

    return probe


def _drop(held: Path, home: Path, relative: str) -> None:
    """Copy a held-back file into the platform atomically, as docs/operations.md tells the agency and operators."""
    target = home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(held / relative, target.with_name(f".{target.name}.part"))
    os.replace(target.with_name(f".{target.name}.part"), target)


def _audit(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit" / "audit.jsonl").read_text().splitlines()]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sensors_queue_and_run_monitoring_on_postgres(platform, services, postgres):
    home, held, env, _ = platform
    port, logs = services

    for path in sorted((held / "landing").glob("*/*.csv")):
        _drop(held, home, f"landing/{path.parent.name}/{path.name}")
    refreshes = wait_for("the register_deliveries sensor's two month runs", RUN_SECONDS, _finished(port, "register_refresh", 2), logs)
    assert [r["status"] for r in refreshes] == ["SUCCESS", "SUCCESS"], refreshes
    assert sorted(r["tags"]["dagster/partition"] for r in refreshes) == list(MONTHS)
    assert all(r["tags"]["dagster/sensor_name"] == "register_deliveries" and r["tags"]["lmdp/kind"] == "refresh" for r in refreshes)

    _drop(held, home, f"approvals/{PROJECT}.yaml")
    [build] = wait_for("the project_approvals sensor's build", RUN_SECONDS, _finished(port, "project_build", 1), logs)
    assert build["status"] == "SUCCESS" and build["tags"]["dagster/sensor_name"] == "project_approvals"
    assert build["tags"]["lmdp/project"] == PROJECT
    for name in CHECK_NAMES:
        [execution] = graphql(port, CHECK, {"key": {"path": ["projects", "extract"]}, "name": name, "partition": PROJECT})["assetCheckExecutions"]
        assert (execution["runId"], execution["evaluation"]["success"]) == (build["runId"], True), name
    extract = home / "extracts" / f"{PROJECT}.duckdb"
    assert extract.is_file()

    # 3. two builds of one project submitted at once: queued one after the other
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=port)

    def submit(who: str) -> str:
        return client.submit_job_execution(
            "project_build", repository_location_name="lmdp_pipeline",
            run_config={"ops": {"project_extract": {"config": {"fingerprint": "", "requested_by": who}}}},
            tags={"dagster/partition": PROJECT, "lmdp/project": PROJECT},
        )

    seen = len(_audit(home))
    first, second = submit("postgres test, first"), submit("postgres test, second")
    statuses = set()

    def both_done():
        runs = {r["runId"]: r for r in _runs(port, "project_build") if r["runId"] in (first, second)}
        statuses.add(tuple(runs[i]["status"] for i in (first, second) if i in runs))
        return runs if all(runs.get(i, {}).get("status") in ("SUCCESS", "FAILURE") for i in (first, second)) else None

    runs = wait_for("the two queued builds", 2 * RUN_SECONDS, both_done, logs)
    assert runs[first]["status"] == runs[second]["status"] == "SUCCESS", runs
    earlier, later = sorted(runs.values(), key=lambda r: r["startTime"])
    assert later["startTime"] >= earlier["endTime"], f"the two builds of {PROJECT} ran at the same time: {runs}"
    assert any(s[0] in ("STARTING", "STARTED") and s[1] == "QUEUED" or s[1] in ("STARTING", "STARTED") and s[0] == "QUEUED"
               for s in statuses if len(s) == 2), f"never seen one running while the other waited in the queue: {statuses}"
    steps = [(e["run_id"], e["event"]) for e in _audit(home)[seen:] if e["event"] in ("build_started", "build_published")]
    assert [event for _, event in steps] == ["build_started", "build_published"] * 2
    assert steps[0][0] == steps[1][0] == earlier["runId"] and steps[2][0] == steps[3][0] == later["runId"]

    # 4. a run worker killed while its build waits for the project: run monitoring fails the run
    before = _sha256(extract)
    lock = home / "locks" / f"{PROJECT}.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; d = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
        "fcntl.flock(d, fcntl.LOCK_EX); print('held', flush=True); time.sleep(900)"), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        seen = len(_audit(home))
        doomed = submit("postgres test, killed")
        wait_for("the doomed build waiting for the project", RUN_SECONDS,
              lambda: any(e["event"] == "build_requested" and e.get("run_id") == doomed for e in _audit(home)[seen:]), logs)
        messages = [e.get("message") or "" for e in graphql(port, EVENTS, {"runId": doomed})["logsForRun"]["events"]]
        [worker] = [int(m.split("pid: ")[1].split(")")[0]) for m in messages if m.startswith("Started process for run (pid: ")]
        server = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(server, signal.SIGKILL)  # its code server first, which would otherwise report the death itself,
        os.kill(worker, signal.SIGKILL)  # as when the OOM killer or a crash takes both
        status = wait_for("run monitoring to fail the killed run", 240,
                       lambda: (s := graphql(port, FAILURE, {"runId": doomed})["runOrError"]["status"]) in ("FAILURE", "SUCCESS") and s, logs)
    finally:
        holder.kill()
        holder.wait()
    assert status == "FAILURE"
    messages = [e.get("message") or "" for e in graphql(port, EVENTS, {"runId": doomed})["logsForRun"]["events"]]
    assert any("is gone: killed or crashed before the run ended" in m for m in messages), messages[-5:]
    assert _sha256(extract) == before, "the last good extract is untouched"
    assert postgres["DAGSTER_PG_PASSWORD"] not in "".join(log.read_text(errors="replace") for log in logs)
    assert not list((home / "dagster").glob("*.db")) and not (home / "dagster" / "history").exists(), "nothing stored in SQLite"

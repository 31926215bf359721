"""Crash safety: real ``lmdp build`` and ``lmdp refresh`` processes killed with SIGKILL at several moments.

What must hold after each kill, checked from outside (file bytes, Parquet footers, the
Dagster instance), never through the code under test:

- a killed build leaves the last good extract byte for byte as it was, and readable;
  the next build succeeds and cleans what the killed one left (candidate, WAL, spill);
- a killed refresh leaves each warehouse month either the old file (same bytes) or the
  new one (its footer names the new delivery's sha256, every row readable), never a
  partial file under a month's name; the next refresh stores every new month;
- a run whose ``lmdp`` process was killed does not stay in progress: the next ``lmdp``
  command on the host marks it failed (the daemon's run monitoring does the same in
  production: tests/test_postgres_deployment.py);
- two builds of one project at once never interleave: the second waits, says so, and
  starts only after the first published.

Moments are chosen by watching the file system and the audit log the process writes
(lock held, candidate created, candidate being filled, warehouse candidate written),
and the process is frozen (SIGSTOP) the instant a moment is seen, then killed, so the
kill lands where intended however fast the machine is.
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
import time
from pathlib import Path

import duckdb
import pytest

from lmdp_pipeline.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow

LMDP = str(Path(sys.executable).parent / "lmdp")
PROJECT = "P2026-001"
MONTHS = ("2024-01", "2024-02")
WATCH_SECONDS = 300


def _env(home: Path, master: str) -> dict:
    env = os.environ | {"LMDP_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "LMDP_MASTER_KEY": master}
    env.pop("LMDP_MASTER_KEY_FILE", None)
    return env


def _lmdp(env: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([LMDP, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _audit_events(home: Path) -> list[dict]:
    path = home / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _kill_when(command: list[str], env: dict, moment, what: str) -> int:
    """Start ``command`` in its own process group; the instant ``moment()`` is true, freeze and SIGKILL the group.

    Returns the pid of the killed process. Fails if the process ends before the moment.
    """
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + WATCH_SECONDS
    try:
        while time.monotonic() < deadline:
            if moment():
                os.killpg(process.pid, signal.SIGSTOP)  # frozen where seen: nothing more is written
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
                assert process.returncode == -signal.SIGKILL
                return process.pid
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace")
                pytest.fail(f"{' '.join(command[1:])} ended (exit {process.returncode}) before {what}:\n{output}")
            time.sleep(0.001)
        pytest.fail(f"{what} not seen within {WATCH_SECONDS} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()


def _runs_of_pid(home: Path, pid: int):
    """The Dagster runs an ``lmdp`` process with ``pid`` created, read straight from the instance."""
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_ref(_instance_ref(home)) as instance:
        return [(r.dagster_run.run_id, r.dagster_run.status) for r in instance.get_run_records(RunsFilter(tags={"lmdp/pid": str(pid)}))]


def _instance_ref(home: Path):
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.from_dir(str(home / "dagster"))


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """Two months of 3,000 persons refreshed through ``lmdp``, the project built once; its master key."""
    home = tmp_path_factory.mktemp("crash") / "home"
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    env = _env(home, master)
    for args in (["sample-data", "--persons", "3000", "--months", f"{MONTHS[0]}:{MONTHS[-1]}"], ["refresh"], ["build", PROJECT]):
        done = _lmdp(env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return home, env


def _extract_is_sound(path: Path) -> dict:
    """Open the extract read-only and read every table whole; return the row counts."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
    assert {"individuals", "jobs", "_manifest"} <= set(counts) and manifest["project"] == PROJECT
    return counts


def _candidates(home: Path) -> list[Path]:
    return list((home / "extracts").glob(f".{PROJECT}.*.partial.duckdb*"))


def _started_after(home: Path, seen: int, event: str):
    return lambda: any(e.get("event") == event for e in _audit_events(home)[seen:])


def _candidate_filled(home: Path, size: int):
    return lambda: any(p.stat().st_size > size for p in _candidates(home) if p.exists())


BUILD_MOMENTS = {
    "waiting for the project lock": None,  # set up in the test: another process holds the lock
    "lock held, key loaded (build_started audited)": lambda home, seen: _started_after(home, seen, "build_started"),
    "candidate file created": lambda home, seen: lambda: bool(_candidates(home)),
    "candidate being filled (over 256 kB)": lambda home, seen: _candidate_filled(home, 256 * 1024),
}


@pytest.mark.parametrize("moment", list(BUILD_MOMENTS))
def test_a_killed_build_leaves_the_last_good_extract_and_the_next_build_succeeds(platform, moment):
    home, env = platform
    extract = home / "extracts" / f"{PROJECT}.duckdb"
    before, rows_before = _sha256(extract), _extract_is_sound(extract)
    seen = len(_audit_events(home))
    holder = None
    if BUILD_MOMENTS[moment] is None:
        holder = _hold_lock(home)
        watch = _started_after(home, seen, "build_requested")
    else:
        watch = BUILD_MOMENTS[moment](home, seen)
    try:
        pid = _kill_when([LMDP, "build", PROJECT], env, watch, moment)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()

    assert _sha256(extract) == before, "the published extract is byte for byte the last good one"
    assert _extract_is_sound(extract) == rows_before
    [(run_id, status)] = _runs_of_pid(home, pid)
    assert status.value in ("STARTED", "STARTING", "NOT_STARTED"), "killed mid-run: nothing told the instance yet"

    again = _lmdp(env, "build", PROJECT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"run {run_id} was left in progress by a killed lmdp process: marked failed" in again.stderr
    assert dict(_runs_of_pid(home, pid))[run_id].value == "FAILURE"
    assert _sha256(extract) != before and _extract_is_sound(extract) == rows_before, "rebuilt from the same data"
    assert not _candidates(home), "the killed build's candidate and WAL were removed"
    assert not list((home / "warehouse" / ".spill").glob(f"build-{PROJECT}.*")), "and its spill folder"


def _hold_lock(home: Path) -> subprocess.Popen:
    """Another process holding the project's lock, as a running build or retirement does."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; d = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
        "fcntl.flock(d, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)"), str(home / "locks" / f"{PROJECT}.lock")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_two_builds_of_one_project_never_interleave(platform):
    """Both builds start while the project is busy, both wait and say so; once it is free they run one after the other."""
    home, env = platform
    seen = len(_audit_events(home))
    holder = _hold_lock(home)
    try:
        builds = [subprocess.Popen([LMDP, "build", PROJECT], env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(2)]
        deadline = time.monotonic() + WATCH_SECONDS
        while sum(e.get("event") == "build_requested" for e in _audit_events(home)[seen:]) < 2:  # both runs are waiting
            assert all(b.poll() is None for b in builds) and time.monotonic() < deadline, "a build ended before waiting"
            time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()
    outputs = [b.communicate(timeout=900) for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    for _, err in outputs:
        assert f"another build or retirement of {PROJECT} is running: this build waits for it to end" in err

    events = [e for e in _audit_events(home)[seen:] if e.get("project") == PROJECT]
    steps = [(e["run_id"], e["event"]) for e in events if e["event"] in ("build_started", "build_published")]
    assert len(steps) == 4 and len({run for run, _ in steps}) == 2
    (run_a, start_a), (run_a2, end_a), (run_b, start_b), (run_b2, end_b) = steps
    assert (run_a, run_b) == (run_a2, run_b2) and run_a != run_b, f"the two builds interleaved: {steps}"
    assert (start_a, end_a, start_b, end_b) == ("build_started", "build_published", "build_started", "build_published")
    _extract_is_sound(home / "extracts" / f"{PROJECT}.duckdb")


def _warehouse_files(home: Path) -> dict[Path, str]:
    return {p: _sha256(p) for p in sorted((home / "warehouse").glob("*/*.parquet"))}


def _footer_sha256(path: Path) -> str:
    with duckdb.connect() as con:
        rows = con.execute("SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)", [str(path)]).fetchall()
    return dict(rows)["source_sha256"]


REFRESH_MOMENTS = {
    "first warehouse candidate written": "partial",
    "first month's individuals replaced": "replaced",
    "a few seconds into the run": "delay",
}


@pytest.mark.parametrize("moment", list(REFRESH_MOMENTS))
def test_a_killed_refresh_leaves_each_month_old_or_new(platform, tmp_path, moment):
    home, env = platform
    old = _warehouse_files(home)
    assert len(old) >= 9 * len(MONTHS) - 2
    fresh = tmp_path / "redelivery"
    made = _lmdp(env, "sample-data", "--persons", "3000", "--months", f"{MONTHS[0]}:{MONTHS[-1]}", "--seed", str(100 + len(moment)),
                 "--output", str(fresh))
    assert made.returncode == 0, made.stderr
    for source in (fresh / "landing").glob("*/*.csv"):  # a corrected re-delivery of both months, dropped atomically
        target = home / "landing" / source.parent.name / source.name
        shutil.copyfile(source, target.with_name(f".{target.name}.part"))
        os.replace(target.with_name(f".{target.name}.part"), target)
    new_sha = {(p.parent.name, p.stem.rsplit("_", 1)[1]): _sha256(p) for p in (home / "landing").glob("*/*.csv")}
    individuals = home / "warehouse" / "individuals" / f"individuals_{MONTHS[0]}.parquet"
    started = time.monotonic()
    watches = {
        "partial": lambda: any((home / "warehouse").glob("*/.*.partial")),
        "replaced": lambda: _sha256(individuals) != old[individuals],
        "delay": lambda: time.monotonic() - started > 6,
    }
    _kill_when([LMDP, "refresh"], env, watches[REFRESH_MOMENTS[moment]], moment)  # the parent and its month workers

    changed = 0
    for path, sha in old.items():
        assert path.exists(), f"{path.name} vanished"
        if _sha256(path) == sha:
            continue
        register, month = path.parent.name, path.stem.rsplit("_", 1)[1]
        assert _footer_sha256(path) == new_sha[(register, month)], f"{path.name} is neither the old file nor the new delivery"
        with duckdb.connect() as con:
            con.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()  # every row group readable
        changed += 1
    assert set(_warehouse_files(home)) == set(old), "no other file appeared under a month's name"
    if REFRESH_MOMENTS[moment] == "replaced":
        assert changed >= 1

    again = _lmdp(env, "refresh")
    assert again.returncode == 0, again.stdout + again.stderr
    for path in old:
        register, month = path.parent.name, path.stem.rsplit("_", 1)[1]
        assert _footer_sha256(path) == new_sha[(register, month)], f"{path.name} not refreshed by the next run"
    assert not list((home / "warehouse").glob("*/.*.partial")), "the next refresh removed the killed one's candidates"
    assert not list((home / "warehouse" / ".spill").glob("ingest-*")), "and its spill folders"
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.from_ref(_instance_ref(home)) as instance:
        stuck = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
    assert not stuck, f"runs of the killed refresh left in progress: {[r.dagster_run.run_id for r in stuck]}"

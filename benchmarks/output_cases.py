"""Benchmark cases for output checking, on the extract ``make bench`` builds (BENCH-001: 100,000 persons, 24 months).

The table: mean wage by month of job start (50 months) and reference month (20 months),
jobs joined to individuals, for the persons of one canton: 1,071 cells with their totals,
a few hundred persons each, so that the rules, the suppression and the linear programmes
of the checks all have work. ``release`` times ``release_request`` (computed, checked,
written, released) on a project with no earlier release; ``release_after_100`` the same
request after 100 earlier releases of the same grouping with other filters (one canton
each way, citizenship groups, sexes, occupations), which every cell is compared with.
Setting the 100 releases up is not timed; they are kept under the benchmark home and
reused by later runs.

Each case also reports how much of its time DuckDB spent executing statements (the
release's connection is wrapped so that every ``execute`` and ``fetch`` is timed), in wall
clock and in CPU time of the process, and the machine's load average when it ended.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.outputs import release as release_module
from lmdp_pipeline.paths import PlatformPaths

from . import extract_cases

PROJECT = "BENCH-001"
REQUESTER = "bench.researcher"
OCCUPATIONS = ["13", "21", "22", "23", "24", "26", "31", "32", "33", "34", "42", "51", "52", "71", "72", "73", "75", "81", "83", "93"]
"""The 20 most common occupations (ISCO sub-major groups) in the benchmark's warehouse."""
TABLE = {
    "from": "jobs", "with_individuals": True, "rows": "j_start", "columns": "j_isco", "statistic": "mean", "value": "j_wage",
    "filter": {"j_start": {"between": ["2012-01", "2016-02"]}, "j_month": {"eq": "2024-12"}, "j_isco": {"in": OCCUPATIONS}},
}
CANTONS = ["01", "02", "04", "05", "06", "08", "09", "11"]
"""The cantons the benchmark's warehouse has people in."""
MONTHS = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)]
EARLIER = 100


def _earlier_filters() -> list[dict]:
    """100 filters on the same grouping: every month, cantons, citizenship groups, sexes, halves of the occupations."""
    base = {"j_start": TABLE["filter"]["j_start"], "j_isco": TABLE["filter"]["j_isco"]}
    filters = [{**base, "j_month": {"eq": m}} for m in MONTHS[:-1]]
    filters += [{**base, "j_month": {"eq": m}, "i_residence": {"eq": c}} for m in MONTHS[-3:] for c in CANTONS]
    filters += [{**base, "j_month": {"eq": m}, "i_citizenship": {"in": g}} for m in MONTHS[-4:]
                for g in (["5"], ["6"], ["0", "1", "2", "3", "4"])]
    filters += [{**base, "j_month": {"eq": m}, "i_residence": {"in": CANTONS[:4]}} for m in MONTHS]
    filters += [{**base, "j_month": {"eq": m}, "j_isco": {"in": half}} for m in MONTHS[-4:]
                for half in (OCCUPATIONS[:10], OCCUPATIONS[10:])]
    filters += [{**base, "j_month": {"eq": m}, "i_residence": {"in": CANTONS[4:]}} for m in MONTHS[-9:]]
    assert len(filters) >= EARLIER
    return filters[:EARLIER]


def bench_home(home: Path, name: str) -> PlatformPaths:
    """A platform home with the benchmark's extract (built once, by the extract benchmark's pipeline)."""
    built = extract_cases.pipeline_home(home)
    if not built.extract_file(PROJECT).is_file():
        extract_cases.pipeline(home)
    paths = PlatformPaths(home / "bench" / name)
    paths.extracts.mkdir(parents=True, exist_ok=True)
    if not paths.extract_file(PROJECT).exists():
        paths.extract_file(PROJECT).symlink_to(built.extract_file(PROJECT).resolve())
    return paths


def _request(paths: PlatformPaths, name: str, table: dict) -> Path:
    path = paths.output_request_file(PROJECT, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"project": PROJECT, "requester": REQUESTER, "title": name, "tables": {"wages": table}}))
    return path


class _TimedConnection:
    """A DuckDB connection whose statements (execute, fetch) are timed: wall clock, and CPU of the process (DuckDB's
    threads included), which a machine shared with other work inflates less."""

    def __init__(self, con):
        self._con, self.seconds, self.cpu_seconds = con, 0.0, 0.0

    def _timed(self, method, *args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.process_time() - cpu

    def execute(self, *args, **kwargs):
        self._timed(self._con.execute, *args, **kwargs)
        return self

    def fetchall(self):
        return self._timed(self._con.fetchall)

    def fetchone(self):
        return self._timed(self._con.fetchone)

    def __getattr__(self, name):
        return getattr(self._con, name)


@contextmanager
def _timing_duckdb():
    opened = release_module.open_extract
    connections = []

    @contextmanager
    def timed(*args, **kwargs):
        with opened(*args, **kwargs) as con:
            connections.append(_TimedConnection(con))
            yield connections[-1]

    release_module.open_extract = timed
    try:
        yield connections
    finally:
        release_module.open_extract = opened


def _release(paths: PlatformPaths, name: str) -> tuple[int, float, dict]:
    import openpyxl  # noqa: F401 - imported before the clock starts, as a long-running process would have them
    import scipy.optimize  # noqa: F401

    contracts = load_contracts()
    path = _request(paths, name, TABLE)
    with _timing_duckdb() as connections:
        started = time.perf_counter()
        result = release_module.release_request(paths, contracts, path, AuditLog(paths.audit), requested_by="benchmark")
        seconds = time.perf_counter() - started
    assert result.examination.status == "released", result.examination.summary()
    cells = sum(len(t.cells.cells) for t in result.examination.tables)
    return cells, seconds, {"duckdb_seconds": sum(c.seconds for c in connections),
                            "duckdb_cpu_seconds": sum(c.cpu_seconds for c in connections), "load": os.getloadavg()[0],
                            "suppressed": sum(t.summary()["suppressed"] for t in result.examination.tables),
                            "earlier_releases": result.examination.releases}


def release(home: Path) -> tuple[int, float, dict]:
    paths = bench_home(home, "outputs-fresh")
    shutil.rmtree(paths.outputs_dir(PROJECT), ignore_errors=True)
    return _release(paths, "wages")


def release_after_100(home: Path) -> tuple[int, float, dict]:
    paths = bench_home(home, "outputs-100")
    built = paths.extract_file(PROJECT).stat().st_mtime
    if any(record.stat().st_mtime < built for record in paths.output_ledger_records(PROJECT)):
        shutil.rmtree(paths.outputs_dir(PROJECT))  # released from an earlier build: differencing would only compare fingerprints
    for record in paths.output_ledger_records(PROJECT):  # the measured release of an earlier run
        if record.name.endswith("-wages.json"):
            record.unlink()
    paths.output_decision_file(PROJECT, "wages").unlink(missing_ok=True)
    shutil.rmtree(paths.output_released_dir(PROJECT, "wages"), ignore_errors=True)
    shutil.rmtree(paths.output_checking_dir(PROJECT, "wages"), ignore_errors=True)
    released = {record.name.split("-", 1)[1].removesuffix(".json") for record in paths.output_ledger_records(PROJECT)}
    contracts = load_contracts()
    for number, earlier in enumerate(_earlier_filters()):  # set up once (and completed if interrupted), not timed
        if f"earlier-{number:03d}" not in released:
            path = _request(paths, f"earlier-{number:03d}", {**TABLE, "filter": earlier})
            release_module.release_request(paths, contracts, path, AuditLog(paths.audit), requested_by="benchmark setup")
    assert len(paths.output_ledger_records(PROJECT)) == EARLIER
    return _release(paths, "wages")

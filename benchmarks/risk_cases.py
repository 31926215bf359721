"""Benchmark cases for the re-identification risk, on ``make bench``'s extract (100,000-person cohort, 24 months of 1,000,000).

Usage: python -m benchmarks.risk_cases CASE HOME
Prints one JSON line. Each case runs in its own process and times its own work:

- ``build_cold`` / ``build_new_month`` / ``build_warm``: ``build_extract`` of the
  extract benchmark's approval, with the risk step timed inside it; population
  frequencies counted for every month (none kept), for the newest month only (the
  steady state: one month delivered since the last build), or for none (all kept);
- ``lattice``: an approval with four quasi-identifiers at three levels each (birth
  month, country of citizenship, canton of residence, two-digit occupation), beyond the
  policy, so the build searches the lattice; the search is timed apart;
- ``pandas``: the same measures as ``build_cold`` (per table and month: classes, f,
  persons below k, sample and population uniques, expected re-identifications from the
  whole register's counts; persons below k in some month over the extract as a
  whole), as a straightforward pandas groupby would compute them from the same files.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from pathlib import Path

import duckdb

from . import extract_cases
from .cases import peak_memory_mb

K = 5


def _timed_build(home: Path, plan) -> dict:
    """``build_extract`` with the risk step and the search timed inside it."""
    from lmdp_pipeline.keys import ProjectKey
    from lmdp_pipeline.projects import build
    from lmdp_pipeline.risk import assess

    spent = {"risk": 0.0, "search": 0.0, "nodes": 0}
    measure, search = build.assess_candidate, assess.search

    def timed_measure(*args, **kwargs):
        started = time.perf_counter()
        try:
            return measure(*args, **kwargs)
        finally:
            spent["risk"] += time.perf_counter() - started

    def timed_search(*args, **kwargs):
        from lmdp_pipeline.risk import lattice

        started = time.perf_counter()
        nodes = lattice.minimal_nodes
        lattice.minimal_nodes = lambda *a, **k: (lambda found: spent.update(nodes=found[1]) or found)(nodes(*a, **k))
        try:
            return search(*args, **kwargs)
        finally:
            lattice.minimal_nodes = nodes
            spent["search"] += time.perf_counter() - started

    build.assess_candidate, assess.search = timed_measure, timed_search
    key = ProjectKey(plan.project, "key-bench", "", secrets.token_bytes(32))
    started = time.perf_counter()
    result = build.build_extract(plan, extract_cases.pipeline_home(home), key, {})
    total = time.perf_counter() - started
    figures = result.risk.figures
    return {"rows": sum(result.rows.values()), "seconds": total, "risk_seconds": spent["risk"], "search_seconds": spent["search"],
            "nodes": spent["nodes"], "persons": figures.persons, "persons_at_risk": figures.persons_at_risk,
            "suggestions": len(result.risk.suggestions)}


def _forget(home: Path, months: list[str] | None = None) -> None:
    """Remove kept population counts: all of them, or those of ``months``."""
    folder = extract_cases.pipeline_home(home).warehouse / ".frequencies"
    if months is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for month in months:
        for path in folder.glob(f"*/*/{month}.*.parquet"):
            path.unlink()


def build_cold(home: Path) -> dict:
    _forget(home)
    return _timed_build(home, extract_cases.plan())


def build_new_month(home: Path) -> dict:
    _timed_build(home, extract_cases.plan())  # every month kept
    _forget(home, extract_cases.MONTHS[-1:])
    return _timed_build(home, extract_cases.plan())


def build_warm(home: Path) -> dict:
    _timed_build(home, extract_cases.plan())
    return _timed_build(home, extract_cases.plan())


def lattice_plan():
    from lmdp_pipeline.contracts import load_contracts
    from lmdp_pipeline.period import Period
    from lmdp_pipeline.projects.approval import Approval
    from lmdp_pipeline.projects.plan import Plan

    data = extract_cases.approval().model_dump(by_alias=True)
    data["project"] = "BENCH-002"
    data["variables"] = {
        "individuals": {"i_birth_date": "month", "i_citizenship": "country", "i_residence": "canton"},
        "jobs": {"j_isco": "2digit", "j_employer": "pseudonym"},
    }
    data["justifications"] = {f"individuals.{v}": "The benchmark asks for finer levels." for v in ("i_birth_date", "i_citizenship", "i_residence")}
    data["risk_acceptance"] = {"justification": "A benchmark of the lattice search.", "compensating_measures": ["none: synthetic data"],
                               "accepted_by": ["bench.reviewer"], "up_to": {"persons_at_risk": 1.0, "reidentification_rate": 1.0}}
    months = extract_cases.MONTHS
    return Plan(Approval.model_validate(data), load_contracts(), Period.parse(f"{months[0]}:{months[-1]}"))


def lattice(home: Path) -> dict:
    plan = lattice_plan()
    _timed_build(home, plan)  # population counts kept: the search is what is timed
    return _timed_build(home, plan)


def pandas_measures(home: Path) -> dict:
    """The measures of the extract benchmark's risk step, in pandas: read, map levels, group, merge, count."""
    import pandas as pd

    from lmdp_pipeline.contracts import load_contracts

    _timed_build(home, extract_cases.plan())  # the extract to measure
    root = extract_cases.warehouse(home)
    extract = extract_cases.pipeline_home(home).extract_file("BENCH-001")
    code_lists = load_contracts().code_lists
    group, canton = code_lists["countries"].mapping("group"), code_lists["residence"].mapping("canton")
    sub_major = code_lists["isco08"].mapping("sub_major")
    started = time.perf_counter()
    people = pd.concat(pd.read_parquet(root / "individuals" / f"individuals_{m}.parquet",
                                       columns=["i_matricule", "i_month", "i_birth_date", "i_sex", "i_citizenship", "i_residence"])
                       for m in extract_cases.MONTHS)
    register = pd.DataFrame({"month": people["i_month"], "birth": pd.to_datetime(people["i_birth_date"]).dt.year, "sex": people["i_sex"],
                             "citizenship": people["i_citizenship"].map(group), "residence": people["i_residence"].map(canton)})
    keys = ["month", "birth", "sex", "citizenship", "residence"]
    population = register.groupby(keys, dropna=False).size().rename("F").reset_index()
    jobs_register = pd.concat(pd.read_parquet(root / "jobs" / f"jobs_{m}.parquet", columns=["j_matricule", "j_month", "j_isco"])
                              for m in extract_cases.MONTHS)
    jobs_register["isco"] = jobs_register["j_isco"].map(sub_major)
    jobs_register = jobs_register.sort_values(["j_month", "j_matricule", "isco"])
    profiles = jobs_register.groupby(["j_month", "j_matricule"])["isco"].agg(",".join).rename("profile").reset_index()
    jobs_population = profiles.groupby(["j_month", "profile"]).size().rename("F").reset_index()
    with duckdb.connect(str(extract), read_only=True) as con:
        individuals = con.execute("SELECT person_id, i_month AS month, i_birth_date AS birth, i_sex AS sex, i_citizenship AS citizenship, "
                                  "i_residence AS residence FROM individuals").df()
        jobs = con.execute("SELECT person_id, j_month, j_isco FROM jobs").df()
    sample = individuals.groupby(keys, dropna=False)["person_id"].nunique().rename("f").reset_index().merge(population, on=keys, how="left")
    jobs = jobs.sort_values(["j_month", "person_id", "j_isco"])
    job_profiles = jobs.groupby(["j_month", "person_id"])["j_isco"].agg(",".join).rename("profile").reset_index()
    job_classes = job_profiles.groupby(["j_month", "profile"]).size().rename("f").reset_index().merge(
        jobs_population, on=["j_month", "profile"], how="left")
    figures = []
    for classes, month in ((sample, "month"), (job_classes, "j_month")):
        classes["below"] = classes["f"].where(classes["f"] < K, 0)
        classes["expected"] = classes["f"] / classes["F"]
        figures.append(classes.groupby(month).agg(persons=("f", "sum"), classes=("f", "size"), below=("below", "sum"),
                                                  uniques=("f", lambda f: (f == 1).sum()), expected=("expected", "sum")))
    combined = individuals.merge(job_profiles.rename(columns={"j_month": "month"}), on=["person_id", "month"], how="outer")
    sizes = combined.groupby([*keys, "profile"], dropna=False)["person_id"].transform("size")
    at_risk = combined.loc[sizes < K, "person_id"].nunique()
    seconds = time.perf_counter() - started
    return {"rows": int(sum(f["persons"].sum() for f in figures)), "seconds": seconds, "persons_at_risk": int(at_risk)}


CASES = {"build_cold": build_cold, "build_new_month": build_new_month, "build_warm": build_warm, "lattice": lattice,
         "pandas": pandas_measures}


def main() -> None:
    case, home = sys.argv[1:3]
    result = CASES[case](Path(home))
    print(json.dumps({"case": case, **result, "peak_rss_mb": peak_memory_mb()}))


if __name__ == "__main__":
    main()

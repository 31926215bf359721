"""The risk where it shows: the blocking check, the accepted risk and its audit line, ``_risk``, Dagster, the preview.

Every figure of ``_risk`` is recomputed from the extract's own tables with plain SQL,
the preview is compared with the build, and ``_risk``, metadata, check results, the
event log and the audit log are searched for identifiers, pseudonyms and values.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import secrets
import shutil
import subprocess
import sys

import dagster as dg
import duckdb
import pytest
import yaml

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.paths import PROJECT_ROOT, PlatformPaths
from lmdp_pipeline.projects.build import CandidateExtract, ExtractBuilder, ExtractRefused
from lmdp_pipeline.projects.checks import WARN, check_extract
from lmdp_pipeline.projects.lifecycle import build_project, check
from lmdp_pipeline.risk import frequencies
from lmdp_pipeline.risk.assess import estimate_risk
from lmdp_pipeline.risk.frequencies import signature
from lmdp_pipeline.risk.model import RiskModel

from .conftest import WAREHOUSE_MONTHS


def own_home(small_home, folder) -> PlatformPaths:
    """A home over the shared warehouse and external files, with approvals of its own to edit."""
    folder.mkdir(parents=True)
    for zone in ("warehouse", "external"):
        (folder / zone).symlink_to(getattr(small_home, zone), target_is_directory=True)
    shutil.copytree(small_home.approvals, folder / "approvals")
    return PlatformPaths(folder)


@pytest.fixture(scope="module")
def home(small_home, tmp_path_factory):
    return own_home(small_home, tmp_path_factory.mktemp("risk-home") / "home")


@pytest.fixture(scope="module")
def keystore(home):
    return Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test"))


def build(home, contracts, keystore, project):
    return build_project(home, contracts, lambda: keystore, project, AuditLog(home.audit))


@pytest.fixture(scope="module")
def accepted(home, contracts, keystore):
    """P2026-002 (citizenship by country) refused without its risk_acceptance, then built with it."""
    path = home.approval_file("P2026-002")
    original = path.read_text()
    data = yaml.safe_load(original)
    del data["risk_acceptance"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ExtractRefused) as refused:
        build(home, contracts, keystore, "P2026-002")
    path.write_text(original)
    return refused.value, build(home, contracts, keystore, "P2026-002")[1]


def events(home, event, project="P2026-002"):
    return [e for e in AuditLog(home.audit).entries() if e["event"] == event and e.get("project") == project]


def test_a_risky_approval_is_refused_nothing_published(accepted, home):
    refused, _ = accepted
    [risk] = [c for c in refused.checks if c.name == "disclosure_risk"]
    assert risk.blocks and re.match(r"\d+ of \d+ persons \(\d+\.\d%\) are at risk in some month", risk.problems[0])
    assert [c.name for c in refused.checks if c.blocks] == ["disclosure_risk"]
    [line] = events(home, "build_refused")
    assert line["checks"]["disclosure_risk"] is False and "disclosure_risk" in line["reason"]


def test_the_accepted_risk_builds_with_a_warning_and_is_audited_with_its_figures(accepted, home):
    _, result = accepted
    [risk] = [c for c in result.checks if c.name == "disclosure_risk"]
    assert risk.severity == WARN and not risk.passed and not risk.blocks
    assert risk.problems[0].startswith("risk accepted by m.weber, l.hoffmann (The comparison between EU countries")
    assert home.extract_file("P2026-002").exists()
    [line] = events(home, "risk_accepted")
    assert line["accepted_by"] == ["m.weber", "l.hoffmann"] and len(line["compensating_measures"]) == 3
    assert line["figures"]["persons_at_risk"] == result.risk.figures.persons_at_risk > 0
    assert line["figures"]["share_at_risk"] == pytest.approx(result.risk.figures.share_at_risk, abs=1e-4)
    assert line["breaches"] == result.risk.problems and line["policy_version"] == result.risk.policy.version
    order = [e["event"] for e in AuditLog(home.audit).entries() if e.get("project") == "P2026-002"]
    assert order[-2:] == ["risk_accepted", "build_published"]


def test_a_replaced_survey_beyond_the_accepted_figures_is_refused_and_the_extract_stays(small_home, contracts, tmp_path):
    """The attack a blanket acceptance let through. The reviewers accept P2026-001's figures as its preview shows them;
    the researchers then replace their survey with answers that single each respondent out (every column alone far
    from a key, so the file passes the near-uniqueness rule). The survey table's expected re-identifications, counted
    here from the file itself, are then one per respondent: beyond the accepted figure, so the build is refused and the
    published extract stays as it was, until the reviewers accept the new figure."""
    home = own_home(small_home, tmp_path / "home")
    (home.home / "external").unlink()
    shutil.copytree(small_home.external, home.external)
    keystore = Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test"))
    path = home.approval_file("P2026-001")
    data = yaml.safe_load(path.read_text())
    preview = estimate_risk(home, check(home, contracts, path).plan)
    worst = preview.figures.worst_rate([t.name for t in preview.model.person_tables])
    ceilings = {"persons_at_risk": min(1.0, math.ceil(preview.figures.share_at_risk * 100) / 100),
                "reidentification_rate": math.ceil(worst.reidentification_rate * 100) / 100,
                "respondents_at_risk": min(1.0, math.ceil(preview.figures.share_of_respondents_at_risk * 100) / 100)}
    assert ceilings["reidentification_rate"] < 1.0, "the test needs room above the accepted figure"
    data["risk_acceptance"]["up_to"] = ceilings
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    first = build(home, contracts, keystore, "P2026-001")[1]
    assert first.risk.accepted
    published = hashlib.sha256(first.path.read_bytes()).hexdigest()

    survey = home.external_file("P2026-001", "survey_2025.csv")
    with survey.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for i, row in enumerate(rows):
        row["q_health"], row["q_hours"] = str(i % 5 + 1), str(20 + i // 5)
    with survey.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    data["external"]["survey_2025"]["sha256"] = hashlib.sha256(survey.read_bytes()).hexdigest()  # the new file approved...
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # ...and the figures left as they were
    answers = [(r["q_health"], r["q_hours"]) for r in rows]
    assert len(set(answers)) == len(answers), "every respondent alone in their answers: one re-identification each"
    assert len({r["q_hours"] for r in rows}) < 0.9 * len(rows) and len({r["q_health"] for r in rows}) == 5

    with pytest.raises(ExtractRefused) as refused:
        build(home, contracts, keystore, "P2026-001")
    [risk] = [c for c in refused.value.checks if c.name == "disclosure_risk"]
    assert risk.blocks and any(
        f"reidentification_rate at 100.00% is beyond the {ceilings['reidentification_rate']:.2%} the reviewers accepted" in p
        for p in risk.problems), risk.problems
    assert hashlib.sha256(home.extract_file("P2026-001").read_bytes()).hexdigest() == published
    assert events(home, "build_refused", "P2026-001")[-1]["checks"]["disclosure_risk"] is False

    data["risk_acceptance"]["up_to"]["reidentification_rate"] = 1.0  # the reviewers accept the new figure
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rebuilt = build(home, contracts, keystore, "P2026-001")[1]
    assert rebuilt.risk.accepted and events(home, "risk_accepted", "P2026-001")[-1]["up_to"]["reidentification_rate"] == 1.0


def test_a_rule_the_acceptance_names_no_figure_for_is_not_accepted(small_home, contracts, tmp_path):
    """P2026-002 breaks both rules; an acceptance of its re-identification rate alone leaves its persons at risk refused."""
    home = own_home(small_home, tmp_path / "home")
    keystore = Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test"))
    path = home.approval_file("P2026-002")
    data = yaml.safe_load(path.read_text())
    data["risk_acceptance"]["up_to"] = {"reidentification_rate": 1.0}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ExtractRefused) as refused:
        build(home, contracts, keystore, "P2026-002")
    [risk] = [c for c in refused.value.checks if c.name == "disclosure_risk"]
    assert risk.blocks and any(p.startswith("persons_at_risk at ") and "is not covered: risk_acceptance.up_to names no figure" in p
                               for p in risk.problems), risk.problems
    assert not any(p.startswith("reidentification_rate at ") for p in risk.problems)
    assert not home.extract_file("P2026-002").exists()


def risk_rows(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT section, scope, month, item, value, text FROM _risk").fetchall()


def test_risk_figures_are_what_the_extract_itself_shows(accepted, home):
    """Persons below k per month and over the period, recomputed from the individuals table with plain SQL."""
    _, result = accepted
    rows = risk_rows(result.path)
    measures = {(scope, month, item): value for section, scope, month, item, value, _ in rows if section == "measure"}
    with duckdb.connect(str(result.path), read_only=True) as con:
        con.execute("""CREATE TEMP TABLE classes AS SELECT i_month, i_birth_date, i_sex, i_citizenship, count(DISTINCT person_id) AS n
                       FROM individuals GROUP BY ALL""")
        monthly = con.execute("""SELECT i_month, sum(n), count(*), sum(n) FILTER (WHERE n < 5), count(*) FILTER (WHERE n = 1)
                                 FROM classes GROUP BY ALL""").fetchall()
        persons, at_risk = con.execute("""SELECT count(DISTINCT person_id), count(DISTINCT person_id) FILTER (WHERE c.n < 5)
            FROM individuals i JOIN classes c USING (i_month, i_birth_date, i_sex, i_citizenship)""").fetchone()
    for month, units, classes, below, uniques in monthly:
        assert measures[("individuals", month, "persons")] == units
        assert measures[("individuals", month, "classes")] == classes
        assert measures[("individuals", month, "persons_below_k")] == (below or 0)
        assert measures[("extract", month, "sample_uniques")] == uniques
    assert measures[("extract", "period", "persons")] == persons
    assert measures[("extract", "period", "persons_at_risk")] == at_risk > 0
    assert measures[("extract", "period", "share_at_risk")] == pytest.approx(at_risk / persons, abs=1e-4)


def test_risk_records_the_policy_the_verdict_the_acceptance_and_the_suggestions(accepted):
    _, result = accepted
    rows = risk_rows(result.path)
    policy = yaml.safe_load((PROJECT_ROOT / "data_contracts" / "disclosure_policy.yaml").read_text())
    recorded = {item: (value, text) for section, _, _, item, value, text in rows if section == "policy"}
    assert recorded["version"] == (None, policy["version"])
    assert {k: v for k, (v, _) in recorded.items() if k != "version"} == {k: float(v) for k, v in policy["risk"].items()}
    verdicts = {item: text for section, _, _, item, _, text in rows if section == "verdict"}
    assert verdicts == {"persons_at_risk": "beyond the policy", "reidentification_rate": verdicts["reidentification_rate"],
                        "respondents_at_risk": "within the policy", "result": "beyond the policy, risk accepted"}
    assert {(item, text) for section, _, _, item, _, text in rows if section == "quasi_identifier"} == {
        ("i_birth_date", "year"), ("i_sex", "sex"), ("i_citizenship", "country")}
    lines = [text for section, scope, _, item, _, text in rows if section == "suggestion" and item == "approval_line"]
    assert lines and any(line.startswith("variables.individuals.") for line in lines)
    assert [text for section, _, _, item, _, text in rows if item == "compensating_measure"][0].startswith("no output crosses")
    assert {item: value for section, _, _, item, value, _ in rows if section == "risk_acceptance" and item.startswith("up_to_")} == {
        "up_to_persons_at_risk": 1.0, "up_to_reidentification_rate": 1.0}


SAMPLE_SIDE = {"persons", "employers", "records", "classes", "smallest_class", "classes_below_k", "persons_below_k", "employers_below_k",
               "records_below_k", "sample_uniques", "smallest_l", "classes_below_l", "persons_below_l", "persons_at_risk",
               "share_at_risk", "information_kept", "respondents", "respondents_at_risk", "share_of_respondents_at_risk"}


def secrets_of(home, extract) -> tuple[set[str], set[str]]:
    """Every matricule of the warehouse and pseudonym of the extract; every value (two characters or more) of its
    quasi-identifiers."""
    with duckdb.connect() as con:
        identifiers = {v for (v,) in con.execute(f"SELECT DISTINCT i_matricule FROM '{home.warehouse}/individuals/*.parquet'").fetchall()}
    with duckdb.connect(str(extract), read_only=True) as con:
        identifiers |= {v for (v,) in con.execute("SELECT DISTINCT person_id FROM individuals").fetchall()}
        present = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'individuals' AND "
                                             "column_name IN ('i_citizenship', 'i_birth_date', 'i_residence')").fetchall()]
        values = {str(v) for c in present for (v,) in con.execute(f"SELECT DISTINCT {c} FROM individuals").fetchall()}
    return identifiers, {v for v in values if len(v) >= 2}


def leaks(text: str, identifiers: set[str], values: set[str]) -> set[str]:
    tokens = set(re.findall(r"[A-Za-z0-9]+", text))
    return (tokens & identifiers) | (tokens & values)


def test_risk_holds_no_identifier_no_value_and_no_population_count(accepted, home):
    """A researcher opening _risk learns counts the extract already tells, the policy and the verdict; nothing else."""
    _, result = accepted
    rows = risk_rows(result.path)
    identifiers, values = secrets_of(home, result.path)
    assert values and identifiers
    text = "\n".join(str(cell) for row in rows for cell in row if cell is not None)
    assert not leaks(text, identifiers, values)
    assert {item for section, _, _, item, _, _ in rows if section == "measure"} <= SAMPLE_SIDE


def test_the_preview_measures_what_the_build_finds(accepted, home, contracts):
    _, result = accepted
    preview = estimate_risk(home, check(home, contracts, home.approval_file("P2026-002")).plan)
    assert preview.figures == result.risk.figures and preview.problems == result.risk.problems
    assert [s.changes for s in preview.suggestions] == [s.changes for s in result.risk.suggestions]


def test_an_extract_unlike_the_warehouse_is_refused_whatever_was_accepted(home, contracts, keystore, tmp_path):
    """A birth year no one in the register has: every other check lets it through (a year is a year); the population
    frequency join does not, and no acceptance covers it."""
    plan = check(home, contracts, home.approval_file("P2026-002")).plan
    with CandidateExtract(PlatformPaths(tmp_path / "scratch"), plan.project, tmp_path / "spill") as candidate:
        builder = ExtractBuilder(candidate.con, plan, home, keystore.load("P2026-002"))
        builder.write_tables()
        candidate.con.execute("UPDATE individuals SET i_birth_date = 1850 WHERE rowid = 0")
        builder.assess_risk()
        builder.document({})
        outcomes = {o.name: o for o in check_extract(candidate.con, plan, builder.facts)}
    assert [name for name, o in outcomes.items() if o.blocks] == ["disclosure_risk"]
    assert any("1 combinations of quasi-identifiers are not in the register" in p for p in outcomes["disclosure_risk"].problems)


def test_population_counts_are_kept_reused_and_recounted_when_a_month_changes(accepted, home, contracts, keystore, monkeypatch, tmp_path):
    _, result = accepted
    [table] = RiskModel.of(check(home, contracts, home.approval_file("P2026-002")).plan).tables
    kept = {m: home.frequency_files("individuals", signature(table, contracts), m) for m in WAREHOUSE_MONTHS}
    assert all(len(files) == 1 for files in kept.values()), "one file per month, after the build"

    def never(*args, **kwargs):
        raise AssertionError("counted again")

    monkeypatch.setattr(frequencies, "count", never)
    again = build(home, contracts, keystore, "P2026-002")[1]
    assert again.risk.figures == result.risk.figures, "read back, the counts give the same figures"
    monkeypatch.undo()

    month = WAREHOUSE_MONTHS[1]
    source = home.warehouse_file("individuals", month)
    counted = []
    real = frequencies.count
    monkeypatch.setattr(frequencies, "count", lambda con, t, rows, name, params: counted.append(params) or real(con, t, rows, name, params))
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # as a re-ingestion would
    try:
        third = build(home, contracts, keystore, "P2026-002")[1]
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert counted == [{"period_from": month, "period_to": month}], "only the changed month is counted"
    now = home.frequency_files("individuals", signature(table, contracts), month)
    assert len(now) == 1 and now != kept[month], "the stale count is replaced"
    assert third.risk.figures == result.risk.figures


def test_a_preview_writes_nothing(contracts, small_home, tmp_path):
    """``lmdp approvals check`` runs outside any Dagster run: it counts what it needs in memory and keeps nothing."""
    fresh = tmp_path / "fresh"
    shutil.copytree(small_home.warehouse, fresh / "warehouse", ignore=shutil.ignore_patterns(".frequencies", ".spill"))
    (fresh / "external").symlink_to(small_home.external, target_is_directory=True)
    shutil.copytree(small_home.approvals, fresh / "approvals")
    paths = PlatformPaths(fresh)
    before = sorted(p for p in fresh.rglob("*") if ".spill" not in p.parts)
    estimate_risk(paths, check(paths, contracts, paths.approval_file("P2026-001")).plan)
    assert sorted(p for p in fresh.rglob("*") if ".spill" not in p.parts) == before


# --- Dagster: the check's severity, the headline metadata, nothing identifying in the event log --------------------


@pytest.fixture(scope="module")
def dagster_runs(small_home, tmp_path_factory, contracts):
    from assets.projects import build_project_assets

    from .test_project_assets import build as materialize

    paths = own_home(small_home, tmp_path_factory.mktemp("risk-dagster") / "home")
    assets = build_project_assets(contracts)
    with dg.instance_for_test() as instance:
        runs = {project: materialize(assets, paths, instance, project) for project in ("P2026-002", "P2026-003")}
        yield paths, instance, runs


def test_the_check_warns_for_an_accepted_risk_and_passes_for_a_safe_extract(dagster_runs):
    _, _, runs = dagster_runs
    assert all(result.success for result in runs.values())
    checks = {project: {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}
              for project, result in runs.items()}
    assert checks["P2026-002"]["disclosure_risk"] == (False, dg.AssetCheckSeverity.WARN)
    assert checks["P2026-003"]["disclosure_risk"] == (True, dg.AssetCheckSeverity.ERROR)


def extract_metadata(result) -> dict:
    from assets.projects import EXTRACT_KEY

    [materialization] = [m for m in result.asset_materializations_for_node("project_extract") if m.asset_key == EXTRACT_KEY]
    return materialization.metadata


def test_the_extract_materialisation_carries_the_headline_figures(dagster_runs):
    _, _, runs = dagster_runs
    risky, safe = extract_metadata(runs["P2026-002"]), extract_metadata(runs["P2026-003"])
    assert risky["risk/result"].value == "beyond the policy, risk accepted" and risky["risk/accepted"].value is True
    assert risky["risk/persons_at_risk"].value > 0 and 0 < risky["risk/share_at_risk"].value <= 1
    assert risky["risk/highest_reidentification_rate"].value > 0.05 and risky["risk/population_uniques_in_a_month"].value >= 0
    assert "suggestions" in risky["risk"].value and "approval lines:" in risky["risk"].value
    assert safe["risk/result"].value == "meets the policy" and safe["risk/persons_at_risk"].value == 0


def test_no_identifier_or_value_in_metadata_check_results_or_logs(dagster_runs):
    paths, instance, runs = dagster_runs
    for project, result in runs.items():
        extract = paths.extract_file(project)
        identifiers, values = secrets_of(paths, extract)
        event_log = "\n".join(dg.serialize_value(r.event_log_entry) for r in instance.get_records_for_run(result.run_id).records)
        assert not set(re.findall(r"[A-Za-z0-9]+", event_log)) & identifiers, "no matricule or pseudonym in the event log"
        risk = "\n".join(str(v.value) for k, v in extract_metadata(result).items() if k.startswith("risk"))
        checks = "\n".join(str(e.metadata["problems"].value) for e in result.get_asset_check_evaluations() if e.check_name == "disclosure_risk")
        assert not leaks(risk + checks, identifiers, values)
        audit = "\n".join(str(e) for e in AuditLog(paths.audit).entries() if e.get("project") == project)
        assert not leaks(audit, identifiers, values)


# --- the command line -------------------------------------------------------------------------------------


def lmdp(home, *args):
    env = {**os.environ, "LMDP_HOME": str(home.home)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([sys.executable, "-m", "lmdp_cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_approvals_check_prints_the_risk_and_refuses_what_the_build_would_refuse(small_home, tmp_path):
    home = own_home(small_home, tmp_path / "home")
    safe = lmdp(home, "approvals", "check", str(home.approval_file("P2026-003")))
    assert safe.returncode == 0, safe.stderr
    assert "re-identification risk (disclosure policy" in safe.stdout and "result: meets the policy" in safe.stdout
    assert "quasi-identifiers: individuals.i_sex (sex)" in safe.stdout

    path = home.approval_file("P2026-002")
    original = path.read_text()
    accepted = lmdp(home, "approvals", "check", str(path))
    assert accepted.returncode == 0, accepted.stderr
    assert "result: beyond the policy, risk accepted" in accepted.stdout and "risk_acceptance by m.weber, l.hoffmann" in accepted.stdout
    assert re.search(r"suggestions \(least information lost first.*\n\s+1\. individuals\.", accepted.stdout)
    assert re.search(r"unique in the whole register, [\d.]+ expected re-identifications", accepted.stdout)

    data = yaml.safe_load(path.read_text())
    del data["risk_acceptance"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = lmdp(home, "approvals", "check", str(path))
    assert refused.returncode == 1 and "result: beyond the policy" in refused.stdout
    assert "its build would be refused: the re-identification risk is beyond the disclosure policy" in refused.stderr
    assert "Traceback" not in refused.stderr

    data["risk_acceptance"] = yaml.safe_load(original)["risk_acceptance"] | {"up_to": {"persons_at_risk": 1.0, "reidentification_rate": 0.06}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    beyond = lmdp(home, "approvals", "check", str(path))
    assert beyond.returncode == 1 and "result: beyond the policy and the accepted figures" in beyond.stdout
    assert re.search(r"reidentification_rate at [\d.]+% is beyond the 6.00% the reviewers accepted", beyond.stdout)
    assert "beyond the disclosure policy and beyond the figures its risk_acceptance covers (up_to)" in beyond.stderr


def test_the_employer_s_activity_and_size_count_in_each_job(home, contracts, keystore):
    """Jobs with enterprises delivered: each person-month's multiset of (occupation, employer's section, size),
    recounted from the published tables with plain SQL; the preview finds the same."""
    from lmdp_pipeline.projects.build import build_extract

    from .conftest import approved_files, plan_for

    plan = approved_files(plan_for("P2026-001", contracts, "2024-02:2024-03", justifications={}, variables={
        "individuals": {"i_birth_date": "year", "i_sex": "default"}, "jobs": {"j_isco": "1digit", "j_employer": "pseudonym"},
        "enterprises": {"e_employer": "pseudonym", "e_nace": "section", "e_size": "default"}}), home)
    result = build_extract(plan, home, keystore.create("LINKED-01"), {})
    measures = {(scope, month, item): value for section, scope, month, item, value, _ in risk_rows(result.path) if section == "measure"}
    with duckdb.connect(str(result.path), read_only=True) as con:
        recounted = con.execute("""WITH rows AS (SELECT j.person_id, j.j_month, j.j_isco, e.e_nace, e.e_size FROM jobs j
                LEFT JOIN enterprises e ON e.employer_id = j.employer_id AND e.e_month = j.j_month),
            profiles AS (SELECT j_month, list_sort(list(struct_pack(a := j_isco, b := e_nace, c := e_size))) AS p, person_id
                FROM rows GROUP BY j_month, person_id),
            classes AS (SELECT j_month, p, count(*) AS n FROM profiles GROUP BY ALL)
            SELECT j_month, count(*), coalesce(sum(n) FILTER (WHERE n < 5), 0) FROM classes GROUP BY ALL""").fetchall()
        employers = con.execute("SELECT e_month, count(*) FROM enterprises GROUP BY ALL").fetchall()
    assert len(recounted) == 2
    for month, classes, below in recounted:
        assert (measures[("jobs", month, "classes")], measures[("jobs", month, "persons_below_k")]) == (classes, below)
    for month, count in employers:
        assert measures[("enterprises", month, "employers")] == count, "enterprises are measured per employer"
    assert estimate_risk(home, plan).figures == result.risk.figures

"""The researchers' own files: they choose who is in them and know every answer, so a respondent at risk is one they can find.

Each attack below was published as "meets the policy" before the respondents were judged
among themselves: the share of persons at risk was averaged over the whole extract (one
planted person in six hundred is far under 5%) and the re-identification rate was
counted file by file. The persons at risk are recomputed here from the files the test
wrote and the warehouse's rows, with plain Python.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from collections import Counter

import duckdb
import pytest
import yaml

from lmdp_pipeline.disclosure_policy import PERSONS_AT_RISK, REIDENTIFICATION_RATE, RESPONDENTS_AT_RISK, policy_of
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.projects.build import ExtractRefused
from lmdp_pipeline.projects.scope import population_sql

from .conftest import plan_for
from .test_risk_build import build, own_home

PROJECT = "P2026-001"
PERIOD = {"from": "2024-02", "to": "2024-03"}
RESPONDENTS = 60


@pytest.fixture
def project(small_home, contracts, tmp_path):
    """P2026-001 narrowed to the persons' sex and the researchers' files, no risk accepted, in a home of its own."""
    home = own_home(small_home, tmp_path / "home")
    (home.home / "external").unlink()
    home.external_file(PROJECT, "x").parent.mkdir(parents=True)
    keystore = Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test"))
    plan = plan_for(PROJECT, contracts, f"{PERIOD['from']}:{PERIOD['to']}")
    sql, params = population_sql(plan.approval, contracts, home.warehouse, plan.period)
    with duckdb.connect() as con:
        members = sorted(m for (m,) in con.execute(sql, params).fetchall())
    return home, keystore, members


def deliver(home, files: dict[str, dict[str, int]]) -> None:
    """The files (name -> matricule -> answer) and the approval declaring each (one answer column, codes 1 to 5)."""
    for name, answers in files.items():
        with home.external_file(PROJECT, f"{name}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["matricule", f"q_{name}"])
            writer.writerows(answers.items())
    path = home.approval_file(PROJECT)
    data = yaml.safe_load(path.read_text())
    data.pop("risk_acceptance", None)
    data |= {"period": PERIOD, "variables": {"individuals": {"i_sex": "default"}}, "justifications": {}, "external": {
        name: {"file": f"{name}.csv", "sha256": checksum(home, name), "id_column": "matricule",
               "columns": {f"q_{name}": {"type": "integer", "values": [1, 2, 3, 4, 5]}}} for name in files}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def checksum(home, name: str) -> str:
    return hashlib.sha256(home.external_file(PROJECT, f"{name}.csv").read_bytes()).hexdigest()


def respondents_at_risk(home, contracts, files: dict[str, dict[str, int]]) -> tuple[int, int]:
    """Respondents, and those whose sex and answers (every file together) fewer than k persons share in some month."""
    k = policy_of(contracts).risk.k
    files_ = [str(home.warehouse_file("individuals", m)) for m in (PERIOD["from"], PERIOD["to"])]
    with duckdb.connect() as con:
        sexes = con.execute(f"SELECT i_month, i_matricule, i_sex FROM read_parquet({files_})").fetchall()
    respondents = set().union(*(answers for answers in files.values()))
    combination = {(month, m): (sex, *(answers.get(m) for answers in files.values())) for month, m, sex in sexes if m in respondents}
    sizes = Counter((month, c) for (month, _), c in combination.items())
    at_risk = {m for (month, m), c in combination.items() if sizes[(month, c)] < k}
    return len(respondents), len(at_risk)


def refusal(home, contracts, keystore) -> list[str]:
    with pytest.raises(ExtractRefused) as refused:
        build(home, contracts, keystore, PROJECT)
    [risk] = [c for c in refused.value.checks if c.name == "disclosure_risk"]
    assert risk.blocks and [c.name for c in refused.value.checks if c.blocks] == ["disclosure_risk"]
    return risk.problems


def test_a_target_given_an_answer_no_one_else_has_is_refused(project, contracts):
    """Sixty respondents answer 3; the researchers add the person they want to find, answering 5: alone in their class."""
    home, keystore, members = project
    survey = {m: 3 for m in members[:RESPONDENTS]}
    deliver(home, {"survey": survey})
    assert respondents_at_risk(home, contracts, {"survey": survey}) == (RESPONDENTS, 0)
    published = build(home, contracts, keystore, PROJECT)[1]
    assert published.risk.meets_policy and published.risk.figures.respondents == RESPONDENTS
    before = hashlib.sha256(published.path.read_bytes()).hexdigest()

    target = members[RESPONDENTS]
    planted = survey | {target: 5}
    deliver(home, {"survey": planted})
    assert respondents_at_risk(home, contracts, {"survey": planted}) == (RESPONDENTS + 1, 1)
    problems = refusal(home, contracts, keystore)
    [problem] = problems  # the respondents' rule alone: one planted person is nothing to the other two
    assert problem.startswith(f"1 of the {RESPONDENTS + 1} persons of the researchers' files (1.6%) are at risk in some month")
    assert problem.endswith("so each one at risk is one they can find; the policy allows 0%")
    assert hashlib.sha256(home.extract_file(PROJECT).read_bytes()).hexdigest() == before, "the last extract stays"


def test_a_target_singled_out_only_by_answers_split_over_two_files_is_refused(project, contracts):
    """Each file alone puts the target among fourteen persons with the same answer, and no one of either file at risk;
    together, the target's answers are theirs alone."""
    home, keystore, members = project
    target, others = members[RESPONDENTS], members[:RESPONDENTS]
    first = {m: 4 if i < 13 else 3 for i, m in enumerate(others)} | {target: 4}
    second = {m: 4 if 13 <= i < 26 else 3 for i, m in enumerate(others)} | {target: 4}
    files = {"wave_a": first, "wave_b": second}
    for name, answers in files.items():
        assert respondents_at_risk(home, contracts, {name: answers}) == (RESPONDENTS + 1, 0), "each file alone is safe"
    deliver(home, files)
    respondents, at_risk = respondents_at_risk(home, contracts, files)
    assert respondents == RESPONDENTS + 1 and at_risk >= 1
    [problem] = [p for p in refusal(home, contracts, keystore) if "persons of the researchers' files" in p]
    assert problem.startswith(f"{at_risk} of the {respondents} persons of the researchers' files"), problem


def test_the_rule_stands_alone_and_an_acceptance_covers_it_only_when_named(project, contracts):
    """The planted target breaks neither of the other rules; an acceptance naming only them leaves it refused, and one
    naming the respondents' share builds with a warning."""
    home, keystore, members = project
    deliver(home, {"survey": {m: 3 for m in members[:RESPONDENTS]} | {members[RESPONDENTS]: 5}})
    path = home.approval_file(PROJECT)
    data = yaml.safe_load(path.read_text())
    acceptance = yaml.safe_load(home.approval_file("P2026-002").read_text())["risk_acceptance"]
    data["risk_acceptance"] = acceptance | {"up_to": {PERSONS_AT_RISK: 1.0, REIDENTIFICATION_RATE: 1.0}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    [problem] = [p for p in refusal(home, contracts, keystore) if p.startswith(RESPONDENTS_AT_RISK)]
    assert "is not covered: risk_acceptance.up_to names no figure for it" in problem

    data["risk_acceptance"]["up_to"] = {RESPONDENTS_AT_RISK: 0.02}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = build(home, contracts, keystore, PROJECT)[1]
    assert result.risk.accepted and [b.rule for b in result.risk.breaches] == [RESPONDENTS_AT_RISK]
    with duckdb.connect(str(result.path), read_only=True) as con:
        shown = dict(con.execute("SELECT item, value FROM _risk WHERE section = 'measure' AND scope = 'extract' "
                                 "AND item LIKE '%respondents%'").fetchall())
    assert shown == {"respondents": RESPONDENTS + 1, "respondents_at_risk": 1, "share_of_respondents_at_risk": round(1 / 61, 4)}


def test_a_matricule_spelt_in_letters_or_cut_by_letters_is_refused(project, contracts):
    """Six respondents' own matricules in a text column, spelt with letters (0 -> a) or cut into runs of four digits
    by an x: no run of eight digits for the content rules to find, and a column far from a key. Each of the six is alone
    in their class."""
    home, keystore, members = project
    letters = str.maketrans("0123456789", "abcdefghij")
    spelt = {m: "none" for m in members[:RESPONDENTS]}
    spelt |= {m: m.translate(letters) for m in members[:3]} | {m: "x".join((m[:4], m[4:8], m[8:])) for m in members[3:6]}
    path = home.approval_file(PROJECT)
    deliver(home, {"survey": {m: 3 for m in members[:RESPONDENTS]}})
    with home.external_file(PROJECT, "survey.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["matricule", "q_survey", "q_code"])
        writer.writerows((m, 3, spelt[m]) for m in members[:RESPONDENTS])
    data = yaml.safe_load(path.read_text())
    data["external"]["survey"]["columns"]["q_code"] = {"type": "string"}
    data["external"]["survey"]["sha256"] = checksum(home, "survey")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert respondents_at_risk(home, contracts, {"survey": spelt}) == (RESPONDENTS, 6)
    [problem] = [p for p in refusal(home, contracts, keystore) if "persons of the researchers' files" in p]
    assert problem.startswith(f"6 of the {RESPONDENTS} persons of the researchers' files (10.0%)"), problem

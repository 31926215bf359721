"""Approval specs: the examples are valid, each kind of mistake is named by its field, and need-to-know holds.

Need-to-know is tried as an attacker would: a blank justification, a cohort selected
on a restricted register with nothing justified, a condition finer than the default,
a hostile YAML file.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import yaml

from lmdp_pipeline.paths import PROJECT_ROOT
from lmdp_pipeline.projects.approval import MAX_APPROVAL_BYTES, ApprovalError, parse_approval
from lmdp_pipeline.projects.rules import check_approval, condition_level, uses_needing_justification

EXAMPLES = PROJECT_ROOT / "sample_data" / "approvals"
MONTHS = [f"2024-0{m}" for m in range(1, 7)]
TODAY = dt.date(2026, 11, 28)


def held(contracts, months=MONTHS) -> dict[str, list[str]]:
    return {register: list(months) for register in contracts.registers}


@pytest.fixture
def spec(tmp_path):
    """A writable copy of the first example approval, returned as (path, data)."""
    path = tmp_path / "P2026-001.yaml"
    shutil.copyfile(EXAMPLES / "P2026-001.yaml", path)
    return path, yaml.safe_load(path.read_text(encoding="utf-8"))


def problems_of(path, data, contracts, today=TODAY, months=None) -> list[str]:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        approval = parse_approval(path)
    except ApprovalError as error:
        return error.problems
    return check_approval(approval, contracts, months or held(contracts), today, path)[1]


def test_the_example_approvals_are_valid(contracts):
    for path in sorted(EXAMPLES.glob("*.yaml")):
        approval = parse_approval(path)
        period, problems = check_approval(approval, contracts, held(contracts), TODAY, path)
        assert problems == [] and str(period) == "2024-01:2024-06"


def set_path(data, dotted: str, value):
    node = data
    *parents, last = dotted.split("/")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node.insert(int(last), value)
    else:
        node[last] = value


MISTAKES = [
    ("unknown-register", "variables/persons", {"p_age": "default"}, "field variables.persons: unknown register 'persons'"),
    ("unknown-variable", "variables/jobs/j_salary", "default", "field variables.jobs.j_salary: jobs has no variable 'j_salary'"),
    ("unknown-level", "variables/jobs/j_isco", "3digit", "field variables.jobs.j_isco: '3digit' is not a level of jobs.j_isco"),
    ("finer-without-justification", "justifications/individuals.i_residence", None,
     "field justifications.individuals.i_residence: level 'canton' is finer than the default 'country'"),
    ("restricted-register-without-justification", "justifications/absences", None,
     "field justifications.absences: absences is a restricted register"),
    ("restricted-variable-without-justification", "variables/absences/ab_diagnosis", "chapter",
     "field justifications.absences.ab_diagnosis: absences.ab_diagnosis is restricted"),
    ("unknown-operator", "population/0/where/a_status", {"like": "emp%"}, "field population.0.where.a_status.like: Extra inputs are not permitted"),
    ("two-operators", "population/0/where/a_status", {"in": ["employee"], "eq": "employee"}, "exactly one operator"),
    ("unknown-code", "population/0/where/a_status", {"in": ["employe"]}, "'employe' is not in the code list of a_status"),
    ("condition-on-unknown-column", "population/1/where/i_age", {"eq": 50}, "field population.1.where.i_age: individuals has no variable 'i_age'"),
    ("between-on-a-code", "population/0/where/a_status", {"between": ["a", "z"]}, "a_status is not ordered"),
    ("bad-date", "population/1/where/i_birth_date", {"between": ["1960-13-01", "1975-12-31"]}, "'1960-13-01' is not a date"),
    ("list-as-scalar", "population/0/where/a_status", {"eq": ["employee"]}, "field population.0.where.a_status.eq"),
    ("integer-as-text", "population/2", {"register": "cash_benefits", "where": {"cb_days": {"between": ["a", "z"]}}},
     "field population.2.where.cb_days.between: 'a' is not an integer"),
    ("integer-as-decimal", "population/2", {"register": "cash_benefits", "where": {"cb_days": {"eq": 2.5}}},
     "field population.2.where.cb_days.eq: '2.5' is not an integer"),
    ("reversed-range", "population/1/where/i_birth_date", {"between": [dt.date(1975, 12, 31), dt.date(1960, 1, 1)]}, "ends before it starts"),
    ("period-outside-data", "period", {"from": "2023-01", "to": "2024-06"}, "field period: individuals lacks 12 month(s) of 2023-01:2024-06"),
    ("period-reversed", "period", {"from": "2024-06", "to": "2024-01"}, "ends (2024-01) before it starts (2024-06)"),
    ("malformed-month", "period", {"from": "2024-1", "to": "2024-06"}, "field period.from"),
    ("malformed-rolling", "period", {"from": "2024-01", "to": "newest"}, "field period.to"),
    ("expired", "expires_on", dt.date(2026, 11, 27), "field expires_on: the approval expired on 2026-11-27"),
    ("revoked", "status", "revoked", "field status: the project is revoked"),
    ("unknown-status", "status", "pending", "field status"),
    ("malformed-project-id", "project", "p-1", "field project: 'p-1' is not a project id"),
    ("project-id-with-newline", "project", "P2026-001\n", "is not a project id"),
    ("project-not-file-name", "project", "P2026-099", "'P2026-099' must match the file name 'P2026-001'"),
    ("unknown-external-type", "external/survey_2025/columns/q_hours", {"type": "float"}, "field external.survey_2025.columns.q_hours.type"),
    ("reserved-external-column", "external/survey_2025/columns/lmdp_valid", {"type": "integer"}, "reserved by the platform"),
    ("identifier-as-condition", "population/0/where/a_employer", {"eq": "19632000410"}, "cannot be selected on an identifier"),
    ("stray-justification", "justifications/jobs.j_wage", "Wages are interesting here.", "field justifications.jobs.j_wage: justifies nothing"),
    ("reference-month-coarsened", "variables/individuals/i_month", "year", "i_month is the reference month of every row"),
    ("one-reviewer", "approved_by", ["m.weber"], "field approved_by"),
    ("same-reviewer-twice", "approved_by", ["m.weber", "m.weber"], "at least two distinct reviewers"),
    ("researcher-approves-own-project", "approved_by", ["m.weber", "a.schmit"], "a.schmit cannot approve a project they research"),
    ("no-researchers", "researchers", [], "field researchers"),
    ("bad-recipient", "recipients", ["age1notakey"], "field recipients.0"),
    ("risk-accepted-without-measures", "risk_acceptance/compensating_measures", [], "field risk_acceptance.compensating_measures"),
    ("risk-accepted-blank", "risk_acceptance/justification", "   ", "field risk_acceptance.justification"),
    ("risk-accepted-by-nobody", "risk_acceptance/accepted_by", [], "field risk_acceptance.accepted_by"),
    ("risk-accepted-without-figures", "risk_acceptance/up_to", None, "field risk_acceptance.up_to: Field required"),
    ("risk-accepted-up-to-nothing", "risk_acceptance/up_to", {}, "field risk_acceptance.up_to: name the worst figure accepted for at least one rule"),
    ("risk-accepted-up-to-an-unknown-rule", "risk_acceptance/up_to", {"sample_uniques": 0.2}, "field risk_acceptance.up_to.sample_uniques"),
    ("risk-accepted-up-to-a-percentage", "risk_acceptance/up_to/persons_at_risk", 8, "field risk_acceptance.up_to.persons_at_risk"),
    ("risk-accepted-up-to-yes", "risk_acceptance/up_to/persons_at_risk", True, "field risk_acceptance.up_to.persons_at_risk"),
    ("risk-accepted-up-to-text", "risk_acceptance/up_to/reidentification_rate", "6%", "field risk_acceptance.up_to.reidentification_rate"),
    ("risk-accepted-within-the-policy", "risk_acceptance/up_to/reidentification_rate", 0.05,
     "field risk_acceptance.up_to.reidentification_rate: 5.00% is not above the policy's 5.00%, so it accepts nothing"),
    ("output-threshold-of-one", "risk_acceptance/output_threshold", 1, "field risk_acceptance.output_threshold"),
    ("output-threshold-no-higher", "risk_acceptance/output_threshold", 10,
     "field risk_acceptance.output_threshold: 10 persons per cell is not above the platform's threshold of 10"),
]


@pytest.mark.parametrize(("field", "value", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_named_by_file_and_field(spec, contracts, field, value, message):
    path, data = spec
    set_path(data, field, value)
    problems = problems_of(path, data, contracts)
    assert any(message in p for p in problems), problems
    assert all(p.startswith(str(path)) for p in problems)


def test_all_problems_are_reported_at_once(spec, contracts):
    path, data = spec
    set_path(data, "variables/jobs/j_isco", "3digit")
    set_path(data, "justifications/absences", None)
    set_path(data, "expires_on", dt.date(2026, 11, 27))
    assert len(problems_of(path, data, contracts)) == 3


def test_an_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "P2026-003.yaml"
    path.write_text("project: [unclosed\n", encoding="utf-8")
    with pytest.raises(ApprovalError, match=r"P2026-003.yaml: not a valid approval file: line \d+, column \d+"):
        parse_approval(path)


# --- need-to-know, tried by breaking it ---------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "Needed.", "Research question"])
def test_a_blank_or_one_word_justification_unlocks_nothing(spec, contracts, blank):
    path, data = spec
    set_path(data, "justifications/individuals.i_residence", blank)
    problems = problems_of(path, data, contracts)
    assert any("field justifications.individuals.i_residence" in p and "at least 3 words" in p for p in problems), problems


def test_a_cohort_selected_on_a_restricted_register_needs_its_justification(spec, contracts):
    """Mental disorders (ICD-10 chapter V) from the restricted absences register, nothing justified: refused."""
    path, data = spec
    data["population"].append({"register": "absences", "where": {"ab_diagnosis": {"in": ["V"]}}})
    del data["variables"]["absences"]
    del data["justifications"]["absences"]
    problems = problems_of(path, data, contracts)
    assert any("field justifications.absences:" in p and "population is selected from the restricted register" in p
               for p in problems), problems
    assert any("field justifications.absences.ab_diagnosis:" in p and "restricted variable" in p for p in problems), problems
    data["justifications"]["absences"] = "The cohort is defined by sickness absence."
    data["justifications"]["absences.ab_diagnosis"] = "Mental disorders define the cohort under study."
    assert problems_of(path, data, contracts) == []


def test_a_condition_finer_than_the_default_needs_a_justification(spec, contracts):
    path, data = spec
    set_path(data, "population/1/where/i_birth_date", {"between": [dt.date(1960, 3, 15), dt.date(1975, 12, 31)]})
    problems = problems_of(path, data, contracts)
    assert any("field justifications.individuals.i_birth_date" in p and "at level 'day'" in p for p in problems), problems
    data["justifications"]["individuals.i_birth_date"] = "Eligibility starts on the reform date of 15 March."
    assert problems_of(path, data, contracts) == []


def test_a_condition_on_a_country_needs_a_justification_but_a_whole_group_does_not(spec, contracts):
    path, data = spec
    set_path(data, "population/1/where/i_citizenship", {"in": ["IT"]})
    assert any("i_citizenship at level 'country'" in p for p in problems_of(path, data, contracts))
    variable = contracts["individuals"].variable("i_citizenship")
    group = variable.codes.mapping("group")["IT"]
    countries = sorted(c for c, g in variable.codes.mapping("group").items() if g == group)
    set_path(data, "population/1/where/i_citizenship", {"in": countries})
    assert problems_of(path, data, contracts) == []


def test_condition_levels(contracts):
    from lmdp_pipeline.projects.approval import Condition

    birth = contracts["individuals"].variable("i_birth_date")
    assert condition_level(birth, Condition.model_validate({"between": [dt.date(1960, 1, 1), dt.date(1975, 12, 31)]})) == "year"
    assert condition_level(birth, Condition.model_validate({"between": [dt.date(1960, 2, 1), dt.date(1975, 2, 28)]})) == "month"
    assert condition_level(birth, Condition.model_validate({"between": [dt.date(1960, 2, 1), dt.date(1975, 2, 27)]})) == "day"
    assert condition_level(birth, Condition.model_validate({"eq": dt.date(1960, 1, 1)})) == "day"
    citizenship = contracts["individuals"].variable("i_citizenship")
    assert condition_level(citizenship, Condition.model_validate({"not_in": ["LU"]})) == "group", "Luxembourg is a group of its own"
    assert condition_level(citizenship, Condition.model_validate({"not_in": ["IT"]})) == "country"


def test_the_example_needs_exactly_its_justifications(contracts):
    approval = parse_approval(EXAMPLES / "P2026-001.yaml")
    assert {u.key for u in uses_needing_justification(approval, contracts)} == set(approval.justifications)


# --- hostile YAML ----------------------------------------------------------------------------------


def test_nested_aliases_are_refused_before_they_expand(tmp_path):
    """A billion-laughs file: nine levels of aliases would exhaust memory; refused at the first alias, message bounded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "P2026-009.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ApprovalError) as refused:
        parse_approval(path)
    assert "anchors (&) and aliases (*) are not allowed" in str(refused.value)
    assert len(str(refused.value)) < 500


def test_a_duplicate_key_is_refused_not_last_wins(spec):
    path, _ = spec
    text = path.read_text(encoding="utf-8").replace("status: approved", "status: revoked\nstatus: approved")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ApprovalError, match="the key 'status' appears twice"):
        parse_approval(path)


def test_an_oversized_file_is_refused_unread(spec):
    path, _ = spec
    path.write_text(path.read_text(encoding="utf-8") + "#" * MAX_APPROVAL_BYTES, encoding="utf-8")
    with pytest.raises(ApprovalError, match="an approval is at most"):
        parse_approval(path)


def test_every_message_is_bounded(spec, contracts):
    path, data = spec
    data["variables"]["individuals"] = {f"i_unknown_{i}_" + "x" * 400: "default" for i in range(100)}
    problems = problems_of(path, data, contracts)
    assert len(problems) <= 41 and all(len(p) <= 300 for p in problems)
    assert "more problems" in problems[-1]


# --- rolling periods ---------------------------------------------------------------------------------


def test_a_rolling_period_ends_at_the_newest_month_every_register_holds(spec, contracts):
    path, data = spec
    set_path(data, "period", {"from": "2024-02", "to": "latest"})
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    approval = parse_approval(path)
    months = held(contracts)
    months["jobs"] = MONTHS[:-1]
    period, problems = check_approval(approval, contracts, months, TODAY, path)
    assert problems == [] and str(period) == "2024-02:2024-05"


def test_a_rolling_period_stops_at_the_expiry_month(spec, contracts):
    path, data = spec
    set_path(data, "period", {"from": "2024-01", "to": "latest"})
    set_path(data, "expires_on", dt.date(2024, 3, 31))
    set_path(data, "approved_on", dt.date(2024, 1, 1))
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    period, _ = check_approval(parse_approval(path), contracts, held(contracts), dt.date(2024, 3, 1), path)
    assert str(period) == "2024-01:2024-03"


def test_a_month_missing_inside_the_period_is_named(spec, contracts):
    path, data = spec
    months = held(contracts)
    months["absences"] = [m for m in MONTHS if m != "2024-03"]
    problems = problems_of(path, data, contracts, months=months)
    assert any("absences lacks 1 month(s) of 2024-01:2024-06: 2024-03" in p for p in problems), problems

"""Approval specs: the examples are valid, and each kind of mistake is named by its field."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import yaml

from lmdp_pipeline.approvals import ApprovalError, check_approval, load_approvals, parse_approval
from lmdp_pipeline.paths import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "sample_data" / "approvals"
MONTHS = [f"2024-0{m}" for m in range(1, 7)]
TODAY = dt.date(2026, 11, 28)


@pytest.fixture
def spec(tmp_path):
    """A writable copy of the first example approval, returned as (path, data)."""
    path = tmp_path / "P2026-001.yaml"
    shutil.copyfile(EXAMPLES / "P2026-001.yaml", path)
    return path, yaml.safe_load(path.read_text(encoding="utf-8"))


def problems_of(path, data, contracts, today=TODAY) -> list[str]:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        approval = parse_approval(path)
    except ApprovalError as error:
        return error.problems
    return check_approval(approval, contracts, MONTHS, today, path)


def test_the_example_approvals_are_valid(contracts):
    approvals, problems = load_approvals(EXAMPLES)
    assert problems == [] and sorted(approvals) == ["P2026-001", "P2026-002"]
    for path, approval in approvals.values():
        assert check_approval(approval, contracts, MONTHS, TODAY, path) == []


def set_path(data, dotted: str, value):
    node = data
    *parents, last = dotted.split("/")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value


MISTAKES = [
    ("unknown-register", "variables/persons", {"p_age": "default"}, "field variables.persons: unknown register 'persons'"),
    ("unknown-variable", "variables/jobs/j_salary", "default", "field variables.jobs.j_salary: jobs has no variable 'j_salary'"),
    ("unknown-level", "variables/jobs/j_isco", "3digit", "field variables.jobs.j_isco: '3digit' is not a level of jobs.j_isco"),
    ("finer-without-justification", "justifications/individuals.i_residence", None,
     "field justifications.individuals.i_residence: level 'canton' is finer than the default 'country' and needs a justification"),
    ("restricted-register-without-justification", "justifications/absences", None,
     "field justifications.absences: absences is a restricted register and needs a justification"),
    ("restricted-variable-without-justification", "variables/absences/ab_diagnosis", "chapter",
     "field justifications.absences.ab_diagnosis: absences.ab_diagnosis is restricted and needs a justification"),
    ("unknown-operator", "population/0/where/a_status", {"like": "emp%"}, "field population.0.where.a_status.like: Extra inputs are not permitted"),
    ("two-operators", "population/0/where/a_status", {"in": ["employee"], "eq": "employee"}, "exactly one operator"),
    ("unknown-code", "population/0/where/a_status", {"in": ["employe"]}, "employe not in the code list of affiliation.a_status"),
    ("condition-on-unknown-column", "population/1/where/i_age", {"eq": 50}, "field population.1.where.i_age: individuals has no variable 'i_age'"),
    ("between-on-a-code", "population/0/where/a_status", {"between": ["a", "z"]}, "a_status is not ordered"),
    ("bad-date", "population/1/where/i_birth_date", {"between": ["1960-13-01", "1975-12-31"]}, "'1960-13-01' is not a date"),
    ("period-outside-data", "period", {"from": "2023-01", "to": "2024-06"}, "field period: 2023-01 to 2024-06 is outside the months available (2024-01 to 2024-06)"),
    ("period-reversed", "period", {"from": "2024-06", "to": "2024-01"}, "ends (2024-01) before it starts (2024-06)"),
    ("malformed-month", "period", {"from": "2024-1", "to": "2024-06"}, "field period.from"),
    ("expired", "expires_on", dt.date(2025, 12, 31), "field expires_on: the approval expired on 2025-12-31"),
    ("revoked", "status", "revoked", "field status: the project is revoked"),
    ("unknown-status", "status", "pending", "field status"),
    ("malformed-project-id", "project", "p-1", "field project: String should match pattern"),
    ("project-not-file-name", "project", "P2026-099", "'P2026-099' must match the file name 'P2026-001'"),
    ("unknown-external-type", "external/survey_2025/columns/q_hours", {"type": "float"}, "field external.survey_2025.columns.q_hours.type"),
    ("identifier-as-condition", "population/0/where/a_employer", {"eq": "19632000410"}, "cannot be selected on an identifier"),
    ("stray-justification", "justifications/jobs.j_wage", "Wages are interesting.", "field justifications.jobs.j_wage: justifies nothing that is requested"),
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
    set_path(data, "expires_on", dt.date(2020, 1, 1))
    assert len(problems_of(path, data, contracts)) == 3


def test_a_second_file_for_the_same_project_is_refused(tmp_path):
    shutil.copyfile(EXAMPLES / "P2026-001.yaml", tmp_path / "P2026-001.yaml")
    shutil.copyfile(EXAMPLES / "P2026-001.yaml", tmp_path / "P2026-001.yml")
    approvals, problems = load_approvals(tmp_path)
    assert list(approvals) == ["P2026-001"]
    assert problems and "P2026-001 is also approved in" in problems[0]


def test_an_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "P2026-003.yaml"
    path.write_text("project: [unclosed\n", encoding="utf-8")
    with pytest.raises(ApprovalError, match="P2026-003.yaml: cannot be read as YAML"):
        parse_approval(path)

"""What is measured: the quasi-identifiers the contracts mark, their coarser levels, and the tables of a plan."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from lmdp_pipeline.contracts import VariableType
from lmdp_pipeline.projects.granularity import level_expression
from lmdp_pipeline.risk.model import AS_DECLARED, DROPPED, QuasiIdentifier, RiskModel

from .conftest import plan_for

MARKED = {
    "individuals": {"i_birth_date", "i_sex", "i_citizenship", "i_residence"},
    "affiliation": {"a_status"},
    "jobs": {"j_isco"},
    "enterprises": {"e_nace", "e_size", "e_commune"},
    "family_links": {"f_relation"},
}


def test_the_contracts_mark_what_an_outsider_can_know(contracts):
    """Demographics, activity status, occupation, the employer's activity, size and place, household links
    (docs/disclosure-risk.md says why these and not event dates or amounts)."""
    marked = {c.register: {v.name for v in c.variables if v.quasi_identifier} for c in contracts}
    assert {r: m for r, m in marked.items() if m} == MARKED
    sensitive = {(c.register, v.name) for c in contracts for v in c.variables if v.protection == "restricted"}
    assert sensitive == {("absences", "ab_diagnosis")}


def finest_values(variable) -> list:
    if variable.codes is not None:
        return list(variable.codes.finest.labels)
    if variable.type is VariableType.date:
        return [dt.date(1931, 1, 1) + dt.timedelta(days=d) for d in range(0, 30000, 97)]
    raise AssertionError(f"{variable.name}: no test values for {variable.type}")


@pytest.mark.parametrize(("register", "name"), sorted((r, n) for r, names in MARKED.items() for n in names))
def test_a_coarser_level_of_an_approved_value_is_the_coarser_level_of_the_finest(contracts, register, name):
    """For every approved level and every coarser one offered, coarsening the delivered value gives exactly what the
    build delivers at the coarser level, for every code (or a spread of dates)."""
    variable = contracts[register].variable(name)
    values = finest_values(variable)
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE finest AS SELECT unnest(?::{'DATE' if variable.type is VariableType.date else 'VARCHAR'}[]) AS v", [values])
        for approved in variable.level_names:
            qi = QuasiIdentifier(register, name, approved, variable)
            assert qi.levels[0] == approved and qi.levels[-1] == DROPPED
            offered = list(qi.levels[1:-1])
            assert offered == variable.level_names[variable.level_names.index(approved) + 1:], "every coarser contract level"
            for target in offered:
                delivered = level_expression(variable, approved, "v")
                mismatched = con.execute(
                    f"SELECT count(*) FROM finest WHERE ({qi.at(target, f'({delivered})')}) IS DISTINCT FROM ({level_expression(variable, target, 'v')})"
                ).fetchone()[0]
                assert mismatched == 0, f"{name}: {approved} -> {target}"


def test_every_external_column_counts_the_researchers_know_them_all(contracts):
    plan = plan_for("P2026-001", contracts)
    model = RiskModel.of(plan)
    [survey] = [t for t in model.tables if t.name == "external_survey_2025"]
    assert [(qi.column, qi.level, qi.levels) for qi in survey.own] == [
        ("q_health", AS_DECLARED, (AS_DECLARED, DROPPED)), ("q_hours", AS_DECLARED, (AS_DECLARED, DROPPED))]
    assert survey.month is None and survey.single and survey.about_persons


def test_a_plan_measures_its_tables_per_unit_and_month(contracts):
    model = RiskModel.of(plan_for("P2026-001", contracts))
    tables = {t.name: t for t in model.tables}
    assert set(tables) == {"individuals", "jobs", "external_survey_2025"}, "absences has no quasi-identifier"
    assert tables["individuals"].single and not tables["jobs"].single, "several job spells a month are one multiset"
    assert [qi.level for qi in tables["individuals"].own] == ["year", "sex", "group", "canton"]
    assert tables["jobs"].linked == (), "no enterprises delivered: the employer's activity is not in the extract"
    assert model.sensitive == ()


def test_the_employer_s_quasi_identifiers_travel_with_the_jobs_when_enterprises_are_delivered(contracts):
    unlinked = RiskModel.of(plan_for("P2026-001", contracts, variables={
        "individuals": {"i_birth_date": "year"}, "jobs": {"j_isco": "1digit", "j_employer": "pseudonym"},
        "enterprises": {"e_nace": "section", "e_size": "default"}}))
    tables = {t.name: t for t in unlinked.tables}
    assert tables["jobs"].linked == () and tables["enterprises"].unit is None, "without employer_id nothing joins them"
    plan = plan_for("P2026-001", contracts, variables={
        "individuals": {"i_birth_date": "year"}, "jobs": {"j_isco": "1digit", "j_employer": "pseudonym"},
        "enterprises": {"e_employer": "pseudonym", "e_nace": "section", "e_size": "default"}})
    model = RiskModel.of(plan)
    tables = {t.name: t for t in model.tables}
    assert tables["enterprises"].unit == "employer_id" and tables["enterprises"].single
    assert [qi.name for qi in tables["jobs"].linked] == ["enterprises.e_nace", "enterprises.e_size"]
    assert tables["jobs"].employer == "j_employer"
    assert [qi.name for qi in model.dimensions] == [
        "individuals.i_birth_date", "jobs.j_isco", "enterprises.e_nace", "enterprises.e_size", "external_survey_2025.q_health",
        "external_survey_2025.q_hours"]
    assert [t.name for t in model.person_tables] == ["individuals", "jobs", "external_survey_2025"]


def test_a_delivered_restricted_variable_is_sensitive(contracts):
    plan = plan_for("P2026-001", contracts, variables={
        "individuals": {"i_birth_date": "year", "i_sex": "default"}, "absences": {"ab_diagnosis": "chapter"}},
        justifications={"absences": "Sickness absence is the outcome of the study.",
                        "absences.ab_diagnosis": "The diagnosis chapter is the exposure we study."})
    [diagnosis] = RiskModel.of(plan).sensitive
    assert (diagnosis.table, diagnosis.column, diagnosis.month, diagnosis.level) == ("absences", "ab_diagnosis", "ab_month", "chapter")

"""Bad requests are refused with a message naming the file and the field; nothing is written."""

from __future__ import annotations

import pytest

from lmdp_pipeline.outputs.examination import examine
from lmdp_pipeline.paths import PlatformPaths

from .outputs_helpers import PERSON, column, grid_rows, make_extract, write_request

SEX = column("i_sex", "VARCHAR", "sex", {"1": "Male", "2": "Female"})
MONTH = column("i_month", "VARCHAR", "month")
REASON = column("ab_reason", "VARCHAR", "reason", {"sickness": "Sickness", "maternity": "Maternity"})
AB_MONTH = column("ab_month", "VARCHAR", "month")
EMPLOYER = column("employer_id", "VARCHAR", "pseudonym")
HOURS = column("q_hours", "BIGINT", "as declared")


@pytest.fixture
def home(tmp_path) -> PlatformPaths:
    paths = PlatformPaths(tmp_path)
    individuals = [(p, "2024-01", sex) for (p, sex, _) in grid_rows({("1", None): 20, ("2", None): 20})[0]]
    absences = [(p, "2024-01", "sickness") for p, _, _ in grid_rows({("1", None): 15})[0]]
    make_extract(paths, {
        "individuals": ([PERSON, MONTH, SEX], individuals),
        "absences": ([PERSON, AB_MONTH, REASON], absences),
        "jobs": ([PERSON, EMPLOYER, column("j_month", "VARCHAR", "month")], []),
        "external_survey": ([PERSON, HOURS, column("q_label", "VARCHAR")], [(p, 40, "Total") for p, _, _ in grid_rows({("1", None): 12})[0]]),
    })
    return paths


def refused(home, contracts, tables=None, **extra) -> list[str]:
    examination = examine(home, contracts, write_request(home, "bad", tables, **extra))
    assert examination.status == "refused"
    assert not (home.outputs_dir("P2026-090") / "released").exists() and not (home.outputs_dir("P2026-090") / "decisions").exists()
    return examination.all_reasons


COUNT = {"from": "absences", "rows": "ab_reason", "statistic": "count"}


@pytest.mark.parametrize(("table", "field", "words"), [
    ({**COUNT, "rows": "ab_colour"}, "tables.t.rows", "unknown variable ab_colour: not a column of absences"),
    ({**COUNT, "rows": "ab_start"}, "tables.t.rows", "absences.ab_start exists in the data contracts, but project P2026-090 did not receive it"),
    ({**COUNT, "rows": "i_sex"}, "tables.t.rows", "i_sex is a column of individuals, not of absences: add with_individuals: true"),
    ({**COUNT, "rows": "person_id"}, "tables.t.rows", "person_id is a pseudonym: a table cannot be grouped by it"),
    ({"from": "jobs", "rows": "j_month", "statistic": "count", "filter": {"employer_id": {"eq": "00ff00ff00ff00ff"}}},
     "tables.t.filter.employer_id", "employer_id is a pseudonym: a table cannot be filtered by it"),
    ({**COUNT, "filter": {"ab_colour": {"eq": "red"}}}, "tables.t.filter.ab_colour", "unknown variable ab_colour"),
    ({**COUNT, "filter": {"ab_reason": {"in": ["holiday"]}}}, "tables.t.filter.ab_reason", "'holiday' is not a code of ab_reason"),
    ({**COUNT, "filter": {"ab_reason": {"eq": "maternity"}}}, "tables.t.filter", "the filter selects no row of absences: nothing to tabulate"),
    ({"from": "external_survey", "rows": "q_label", "statistic": "count"}, "tables.t.rows", "a value reads 'Total', the label of the table's totals"),
    ({**COUNT, "filter": {}}, "tables.t.filter", "should have at least 1 item"),
    ({**COUNT, "filter": {"ab_reason": {}}}, "tables.t.filter.ab_reason", "exactly one operator"),
    ({**COUNT, "statistic": "mean"}, "tables.t", "statistic mean needs a value variable"),
    ({**COUNT, "statistic": "sum", "value": "ab_reason"}, "tables.t.value", "ab_reason is VARCHAR, not a number"),
    ({**COUNT, "value": "ab_month"}, "tables.t", "statistic count counts persons: remove value"),
    ({**COUNT, "statistic": "mode"}, "tables.t.statistic", "Input should be 'count', 'sum', 'mean', 'median' or 'share'"),
    ({**COUNT, "columns": "ab_reason"}, "tables.t", "rows and columns are both ab_reason"),
    ({**COUNT, "from": "benefits_in_kind"}, "tables.t.from", "benefits_in_kind: the project did not receive it"),
    ({**COUNT, "from": "holidays"}, "tables.t.from", "holidays: no such table"),
    ({**COUNT, "with_individuals": True, "rows": "i_sex", "structural_zeros": [{"ab_month": "2024-01"}]}, "tables.t",
     "structural_zeros[0] names a cell by its row and column values"),
    ({**COUNT, "structural_zeros": [{"ab_reason": "holiday"}]}, "tables.t.structural_zeros[0].ab_reason", "'holiday' is not a code"),
    ({"from": "external_survey", "rows": "q_hours", "statistic": "count", "filter": {"q_hours": {"between": ["a", "b"]}}},
     "tables.t.filter.q_hours", "'a' is not a BIGINT value, the type of q_hours"),
])
def test_a_bad_table_is_refused_naming_the_field(home, contracts, table, field, words):
    reasons = refused(home, contracts, {"t": table})
    assert any(f"bad.yaml: field {field}" in r and words in r for r in reasons), reasons


def test_every_problem_is_reported_at_once(home, contracts):
    reasons = refused(home, contracts, {"a": {**COUNT, "rows": "ab_colour"}, "b": {**COUNT, "value": "ab_month", "statistic": "sum"}})
    assert len(reasons) == 2 and "tables.a.rows" in reasons[0] and "tables.b.value" in reasons[1]


def test_the_requester_must_be_a_researcher_of_the_project(home, contracts):
    reasons = refused(home, contracts, {"t": COUNT}, requester="m.weber")
    assert any("field requester: m.weber is not a researcher of project P2026-090" in r for r in reasons)


def test_a_request_without_tables_or_files_is_refused(home, contracts):
    assert any("at least one table or attached file" in r for r in refused(home, contracts))


@pytest.mark.parametrize(("text", "words"), [
    ("project: P2026-090\nrequester: a.researcher\ntitle: x\ntables: {t: &t {from: absences}}\nagain: *t\n", "anchors (&) and aliases (*) are not allowed in a request"),
    ("project: P2026-090\nproject: P2026-091\n", "the key 'project' appears twice"),
    ("- a list\n", "expected a mapping at the top level"),
    ("project: P2026-091\nrequester: a.researcher\ntitle: x\ntables: {t: {from: absences, rows: ab_reason, statistic: count}}\n",
     "field project: 'P2026-091' must be the project whose folder holds the request"),
])
def test_malformed_files_are_refused(home, contracts, text, words):
    path = write_request(home, "bad", {"t": COUNT})
    path.write_text(text, encoding="utf-8")
    examination = examine(home, contracts, path)
    assert examination.status == "refused" and any(words in r for r in examination.all_reasons), examination.all_reasons


def test_a_request_outside_lmdp_home_is_not_examined(home, contracts, tmp_path):
    elsewhere = tmp_path / "copy" / "P2026-090" / "requests" / "r.yaml"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text(write_request(home, "r", {"t": COUNT}).read_text())
    examination = examine(home, contracts, elsewhere)
    assert examination.status == "refused" and "requests are checked where the platform keeps them" in examination.reasons[0]


def test_a_request_of_a_project_without_an_extract_is_refused(home, contracts):
    home.extract_file("P2026-090").unlink()
    assert any("has no extract" in r and "build it first" in r for r in refused(home, contracts, {"t": COUNT}))

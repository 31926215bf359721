"""Tables on the researchers' own columns: used in two ways, they go to an output checker, nothing released.

The review of 2026-11-30 released two count tables of women, by ``q_a`` and by
``q_b``, ``q_b`` marking the same 22 respondents as ``q_a`` plus a target: 22 and 23,
the target's sex by difference. Differencing compares cells of one grouping; a test on
pairs of cells of other groupings was dodged with pooled categories and with a third
table. These tests make the two-table and three-table designs, within a request and
across releases, and require that a person decides; one way used again is released.
"""

from __future__ import annotations

import pytest

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.outputs.examination import examine
from lmdp_pipeline.outputs.release import release_request
from lmdp_pipeline.paths import PlatformPaths

from .outputs_helpers import PERSON, column, make_extract, pid, write_request

CODES = {"1": "one", "2": "two", "3": "three"}
SEX = column("i_sex", "VARCHAR", "sex", {"1": "male", "2": "female"})
MONTH = column("i_month", "VARCHAR", "month")
Q_A, Q_B = column("q_a", "VARCHAR", "as declared", CODES), column("q_b", "VARCHAR", "as declared", CODES)
TARGET = 22


def women(rows: str, **filters) -> dict:
    return {"from": "external_survey", "with_individuals": True, "rows": rows, "statistic": "count",
            "filter": {"i_sex": {"eq": "2"}, **filters}}


@pytest.fixture
def home(tmp_path) -> PlatformPaths:
    """60 respondents, women and men: q_a = 1 marks persons 0-21; q_b = 1 the same and the target (person 22)."""
    paths = PlatformPaths(tmp_path)
    survey = [(pid(n), "1" if n < TARGET else "2", "1" if n <= TARGET else "2") for n in range(60)]
    people = [(pid(n), "2024-03", "2" if n % 3 else "1") for n in range(60)]
    make_extract(paths, {"external_survey": ([PERSON, Q_A, Q_B], survey), "individuals": ([PERSON, MONTH, SEX], people)})
    return paths


def release(home, contracts, name, tables):
    return release_request(home, contracts, write_request(home, name, tables), AuditLog(home.audit), requested_by="test")


def released(home) -> list[str]:
    return sorted(p.parent.name for p in home.outputs.rglob("released/*/results.json"))


def test_two_tables_grouped_by_two_own_columns_go_to_an_output_checker(home, contracts):
    result = release(home, contracts, "r1", {"by_a": women("q_a"), "by_b": women("q_b")})
    assert result.examination.status == "review" and released(home) == []
    assert any("in 2 different ways" in r for r in result.examination.review_reasons)


def test_one_own_column_with_three_filters_is_three_ways(home, contracts):
    """A - C + B: each pair of cells far apart, the combination one person."""
    tables = {"a": women("i_sex", q_a={"in": ["1", "2"]}), "c": women("i_sex", q_a={"eq": "2"}),
              "b": women("i_sex", q_b={"eq": "1"})}
    examination = examine(home, contracts, write_request(home, "r1", tables))
    assert examination.status == "review" and any("in 3 different ways" in r for r in examination.review_reasons)


def test_a_second_way_after_a_release_goes_to_an_output_checker(home, contracts):
    assert release(home, contracts, "r1", {"by_a": women("q_a")}).examination.status == "released"
    second = release(home, contracts, "r2", {"by_b": women("q_b")})
    assert second.examination.status == "review" and released(home) == ["r1"]


def test_the_same_way_again_and_tables_without_own_columns_are_released(home, contracts):
    assert release(home, contracts, "r1", {"by_a": women("q_a")}).examination.status == "released"
    by_sex = {"from": "individuals", "rows": "i_sex", "statistic": "count"}
    again = release(home, contracts, "r2", {"by_a": {**women("q_a"), "filter": {"i_sex": {"in": ["1", "2"]}}}, "by_sex": by_sex})
    assert again.examination.status == "released" and released(home) == ["r1", "r2"]
    assert not again.examination.review_reasons


CANTON = column("i_canton", "VARCHAR", "canton", {"C1": "one"})


def _extract(home, without: tuple[str, str] | None = None) -> None:
    """The fixture's extract with a canton in individuals, or rebuilt with ``without`` (table, column) gone: earlier
    releases using that column no longer resolve."""
    survey = [(pid(n), "1" if n < TARGET else "2", "1" if n <= TARGET else "2") for n in range(60)]
    people = [(pid(n), "2024-03", "2" if n % 3 else "1", "C1") for n in range(60)]
    tables = {"external_survey": ([PERSON, Q_A, Q_B], survey), "individuals": ([PERSON, MONTH, SEX, CANTON], people)}
    if without:
        table, name = without
        columns, rows = tables[table]
        position = [c[0] for c in columns].index(name)
        tables[table] = ([c for c in columns if c[0] != name], [r[:position] + r[position + 1:] for r in rows])
    make_extract(home, tables)


def test_a_released_external_table_that_no_longer_resolves_sends_own_columns_to_a_checker(home, contracts):
    assert release(home, contracts, "r1", {"by_a": women("q_a")}).examination.status == "released"
    _extract(home, without=("external_survey", "q_a"))
    second = release(home, contracts, "r2", {"by_b": women("q_b")})
    assert second.examination.status == "review" and any("no longer read" in r for r in second.examination.review_reasons)


def test_a_released_register_table_that_no_longer_resolves_does_not(home, contracts):
    """Only a table read from an external dataset can have used its columns."""
    _extract(home)
    by_canton = {"from": "individuals", "rows": "i_canton", "statistic": "count"}
    assert release(home, contracts, "r1", {"by_canton": by_canton}).examination.status == "released"
    _extract(home, without=("individuals", "i_canton"))
    second = release(home, contracts, "r2", {"by_a": women("q_a")})
    assert second.examination.status == "released" and not second.examination.review_reasons


def test_a_sum_of_values_the_researchers_set_goes_to_an_output_checker(tmp_path, contracts):
    """The attack of the third review: the persons to find weigh 1, 2, 4, ... 128 and everyone else 0; the sum of the
    weights of women is the binary code of which targets are women (computed here), one table, one way, every cell
    rule met. A mean or median of the same column is the same code, divided or ranked."""
    home = PlatformPaths(tmp_path)
    weights = [2 ** n if n < 8 else 0 for n in range(60)]
    sexes = ["2" if n % 3 else "1" for n in range(60)]
    weight = column("q_w", "BIGINT", "as declared")
    make_extract(home, {"external_survey": ([PERSON, weight], [(pid(n), weights[n]) for n in range(60)]),
                        "individuals": ([PERSON, MONTH, SEX], [(pid(n), "2024-03", sexes[n]) for n in range(60)])})
    code = sum(w for w, s in zip(weights, sexes) if s == "2")
    assert [n for n in range(8) if code >> n & 1] == [n for n in range(8) if sexes[n] == "2"], "the sum names the women among them"
    for statistic in ("sum", "mean", "median"):
        table = {"from": "external_survey", "with_individuals": True, "rows": "i_sex", "statistic": statistic, "value": "q_w"}
        result = release(home, contracts, f"weights-{statistic}", {"t": table})
        assert result.examination.status == "review" and released(home) == []
        assert any("external_survey.q_w" in r and "an output checker decides" in r for r in result.examination.review_reasons)
    own = {"from": "external_survey", "rows": "q_w", "statistic": "sum", "value": "q_w"}
    assert release(home, contracts, "own-answers", {"t": own}).examination.status != "review", "their own answers back"

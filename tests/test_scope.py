"""Population and period compiled to SQL: the right persons, checked against pandas, and spec values never become SQL."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from lmdp_pipeline.paths import PROJECT_ROOT
from lmdp_pipeline.period import Period
from lmdp_pipeline.projects.approval import Approval, Condition, parse_approval
from lmdp_pipeline.projects.scope import estimate, months_held, population_sql

from .conftest import WAREHOUSE_MONTHS as MONTHS

PERIOD = Period.parse("2024-02:2024-02")
"""One month inside the warehouse's three, so rows of both neighbours exist and must be left out."""


@pytest.fixture(scope="module")
def warehouse(small_home):
    return small_home.warehouse


@pytest.fixture(scope="module")
def approval() -> Approval:
    return parse_approval(PROJECT_ROOT / "sample_data" / "approvals" / "P2026-001.yaml")


def frame(warehouse, register) -> pd.DataFrame:
    return duckdb.sql(f"SELECT * FROM read_parquet('{warehouse}/{register}/*.parquet')").df()


def persons(warehouse, contracts, approval, period=PERIOD) -> set[str]:
    sql, params = population_sql(approval, contracts, warehouse, period)
    return {row[0] for row in duckdb.connect().execute(sql, params).fetchall()}


def with_blocks(approval: Approval, *blocks: dict) -> Approval:
    from lmdp_pipeline.projects.approval import PopulationBlock

    return approval.model_copy(update={"population": [PopulationBlock.model_validate(b) for b in blocks]})


def in_period(df: pd.DataFrame, column: str, period: Period = PERIOD) -> pd.DataFrame:
    return df[(df[column] >= str(period.first)) & (df[column] <= str(period.last))]


def test_population_is_every_block_within_the_period(warehouse, contracts, approval):
    got = persons(warehouse, contracts, approval)
    affiliation, individuals = frame(warehouse, "affiliation"), frame(warehouse, "individuals")
    employees = set(in_period(affiliation, "a_month").query("a_status == 'employee'")["a_matricule"])
    people = in_period(individuals, "i_month")
    birth = pd.to_datetime(people["i_birth_date"])
    born = set(people[(birth >= pd.Timestamp("1960-01-01")) & (birth <= pd.Timestamp("1975-12-31"))]["i_matricule"])
    assert got == employees & born and got


def test_the_period_ends_where_it_says(warehouse, contracts, approval):
    """Persons who are employees only in the month after the period are not in it (a period one month too long would be)."""
    employees = lambda period: set(in_period(frame(warehouse, "affiliation"), "a_month", period)  # noqa: E731
                                   .query("a_status == 'employee'")["a_matricule"])
    block = {"register": "affiliation", "where": {"a_status": {"in": ["employee"]}}}
    only_later = employees(Period.parse(f"{MONTHS[2]}:{MONTHS[2]}")) - employees(PERIOD) - employees(Period.parse(MONTHS[0]))
    assert only_later, "the sample has persons who become employees in the last month"
    got = persons(warehouse, contracts, with_blocks(approval, block))
    assert got == employees(PERIOD) and not (got & only_later)


def test_not_in_excludes(warehouse, contracts, approval):
    affiliation = in_period(frame(warehouse, "affiliation"), "a_month")
    block = {"register": "affiliation", "where": {"a_status": {"not_in": ["employee"]}}}
    got = persons(warehouse, contracts, with_blocks(approval, block))
    assert got == set(affiliation[affiliation["a_status"] != "employee"]["a_matricule"]) and got


def test_every_condition_of_a_block_applies(warehouse, contracts, approval):
    individuals = in_period(frame(warehouse, "individuals"), "i_month")
    block = {"register": "individuals", "where": {"i_sex": {"eq": "2"}, "i_citizenship": {"in": ["LU"]}}}
    got = persons(warehouse, contracts, with_blocks(approval, block))
    expected = set(individuals[(individuals["i_sex"] == "2") & (individuals["i_citizenship"] == "LU")]["i_matricule"])
    women = set(individuals[individuals["i_sex"] == "2"]["i_matricule"])
    assert got == expected and got and expected != women


def test_between_is_inclusive(warehouse, contracts, approval):
    individuals = in_period(frame(warehouse, "individuals"), "i_month")
    some_birthday = sorted(individuals["i_birth_date"].unique())[len(individuals) // 4]
    block = {"register": "individuals", "where": {"i_birth_date": {"between": [some_birthday, some_birthday]}}}
    got = persons(warehouse, contracts, with_blocks(approval, block))
    assert got == set(individuals[individuals["i_birth_date"] == some_birthday]["i_matricule"]) and got


def test_estimate_counts_rows_of_the_population_in_the_period(warehouse, contracts, approval):
    count, rows = estimate(approval, contracts, warehouse, PERIOD)
    population = persons(warehouse, contracts, approval)
    assert count == len(population) > 0 and set(rows) == set(approval.variables)
    jobs = in_period(frame(warehouse, "jobs"), "j_month")
    assert rows["jobs"] == len(jobs[jobs["j_matricule"].isin(population)])


def test_spec_values_are_bound_never_spliced(warehouse, contracts, approval):
    hostile = "employee'); DROP TABLE population; --"
    block = approval.population[0].model_copy(update={"where": {"a_status": Condition.model_validate({"in": [hostile]})}})
    tampered = approval.model_copy(update={"population": [block]})
    sql, params = population_sql(tampered, contracts, warehouse, PERIOD)
    assert hostile not in sql and hostile in params["b0_0"]
    assert duckdb.connect().execute(sql, params).fetchall() == []


def test_months_held_are_read_per_register(small_home, contracts, approval, tmp_path):
    import shutil

    copy = tmp_path / "warehouse"
    shutil.copytree(small_home.warehouse, copy)
    (copy / "jobs" / f"jobs_{MONTHS[0]}.parquet").unlink()
    held = months_held(copy, approval, contracts)
    assert held["jobs"] == list(MONTHS[1:]) and held["individuals"] == list(MONTHS)
    assert set(held) == {"affiliation", "individuals", "jobs", "absences"}, "delivered and population registers"


def test_date_values_of_a_condition_may_be_text_or_dates(warehouse, contracts, approval):
    as_text = {"register": "individuals", "where": {"i_birth_date": {"between": ["1960-01-01", "1975-12-31"]}}}
    as_dates = {"register": "individuals", "where": {"i_birth_date": {"between": [dt.date(1960, 1, 1), dt.date(1975, 12, 31)]}}}
    assert persons(warehouse, contracts, with_blocks(approval, as_text)) == persons(warehouse, contracts, with_blocks(approval, as_dates))

"""Population and period compiled to SQL: the right persons, and spec values never become SQL."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from lmdp_pipeline.approvals import Approval, Condition, parse_approval
from lmdp_pipeline.paths import PROJECT_ROOT
from lmdp_pipeline.scope import available_months, estimate, population_sql

from .conftest import WAREHOUSE_MONTHS as MONTHS


@pytest.fixture
def warehouse(small_home, tmp_path):
    """A private copy: one test removes a file."""
    shutil.copytree(small_home.warehouse, tmp_path / "warehouse")
    return tmp_path / "warehouse"


@pytest.fixture(scope="module")
def approval() -> Approval:
    example = parse_approval(PROJECT_ROOT / "sample_data" / "approvals" / "P2026-001.yaml")
    return example.model_copy(update={"period": example.period.model_copy(update={"from_": "2024-02", "to": "2024-03"})})


def frame(warehouse, register) -> pd.DataFrame:
    return duckdb.sql(f"SELECT * FROM read_parquet('{warehouse}/{register}/*.parquet')").df()


def test_population_is_every_block_within_the_period(warehouse, contracts, approval):
    sql, params = population_sql(approval, contracts, warehouse)
    got = {row[0] for row in duckdb.connect().execute(sql, params).fetchall()}
    affiliation, individuals = frame(warehouse, "affiliation"), frame(warehouse, "individuals")
    in_period = lambda df, column: df[(df[column] >= "2024-02") & (df[column] <= "2024-03")]  # noqa: E731
    employees = set(in_period(affiliation, "a_month").query("a_status == 'employee'")["a_matricule"])
    people = in_period(individuals, "i_month")
    birth = pd.to_datetime(people["i_birth_date"])
    born = set(people[(birth >= pd.Timestamp("1960-01-01")) & (birth <= pd.Timestamp("1975-12-31"))]["i_matricule"])
    assert got == employees & born and got


def test_estimate_counts_rows_of_the_population_in_the_period(warehouse, contracts, approval):
    persons, rows = estimate(approval, contracts, warehouse)
    assert persons > 0 and set(rows) == set(approval.variables)
    jobs = frame(warehouse, "jobs")
    sql, params = population_sql(approval, contracts, warehouse)
    population = {r[0] for r in duckdb.connect().execute(sql, params).fetchall()}
    expected = jobs[(jobs["j_month"] >= "2024-02") & jobs["j_matricule"].isin(population)]
    assert rows["jobs"] == len(expected)


def test_spec_values_are_bound_never_spliced(warehouse, contracts, approval):
    hostile = "employee'); DROP TABLE population; --"
    block = approval.population[0].model_copy(update={"where": {"a_status": Condition.model_validate({"in": [hostile]})}})
    tampered = approval.model_copy(update={"population": [block]})
    sql, params = population_sql(tampered, contracts, warehouse)
    assert hostile not in sql and hostile in params["b0_0"]
    assert duckdb.connect().execute(sql, params).fetchall() == []


def test_available_months_are_those_every_register_has(warehouse):
    assert available_months(warehouse, ["jobs", "individuals"]) == list(MONTHS)
    (warehouse / "jobs" / f"jobs_{MONTHS[0]}.parquet").unlink()
    assert available_months(warehouse, ["jobs", "individuals"]) == list(MONTHS[1:])

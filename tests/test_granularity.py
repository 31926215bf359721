"""Levels compiled to SQL: right values, and never anything finer than the level asked for."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from lmdp_pipeline.contracts import VariableType
from lmdp_pipeline.projects.granularity import level_expression


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def value_at(con, contracts, register, variable, level, literal):
    return con.execute(f"SELECT {level_expression(contracts[register].variable(variable), level, literal)}").fetchone()[0]


@pytest.mark.parametrize(
    ("register", "variable", "level", "literal", "expected"),
    [
        ("individuals", "i_residence", "canton", "'0701'", "07"),
        ("individuals", "i_residence", "country", "'0701'", "LU"),
        ("individuals", "i_residence", "country", "'FR'", "FR"),
        ("individuals", "i_citizenship", "group", "'PT'", "4"),
        ("individuals", "i_citizenship", "group", "'IT'", "5"),
        ("individuals", "i_citizenship", "group", "'US'", "6"),
        ("individuals", "i_birth_date", "day", "DATE '1970-03-15'", dt.date(1970, 3, 15)),
        ("individuals", "i_birth_date", "month", "DATE '1970-03-15'", "1970-03"),
        ("individuals", "i_birth_date", "year", "DATE '1970-03-15'", 1970),
        ("individuals", "i_month", "year", "'2024-03'", 2024),
        ("enterprises", "e_nace", "division", "'62.01'", "62"),
        ("enterprises", "e_nace", "section", "'62.01'", "J"),
        ("jobs", "j_isco", "2digit", "'2512'", "25"),
        ("jobs", "j_isco", "1digit", "'2512'", "2"),
        ("jobs", "j_wage", "band_500", "3210.55", 3000),
        ("jobs", "j_wage", "band_100", "3210.55", 3200),
        ("jobs", "j_hours", "band_10", "38.0", 30),
        ("reclassifications", "r_reduction", "band_25", "0", 0),
        ("reclassifications", "r_reduction", "band_25", "20", 1),
        ("reclassifications", "r_reduction", "band_25", "75", 50),
        ("absences", "ab_reason", "group", "'occupational_disease'", "accident"),
    ],
)
def test_levels(con, contracts, register, variable, level, literal, expected):
    assert value_at(con, contracts, register, variable, level, literal) == expected


def test_no_level_is_finer_than_itself(con, contracts):
    """Each coded level yields only codes of that level, and coarser levels are functions of finer ones."""
    for contract in contracts:
        for variable in contract.variables:
            if variable.type is not VariableType.code:
                continue
            codes = [c.code for c in variable.codes.finest.codes]
            outputs = {}
            for level in variable.levels[1:]:
                sql = level_expression(variable, level, "code")
                rows = dict(con.execute(f"SELECT code, {sql} FROM unnest(?) t(code)", [codes]).fetchall())
                allowed = set(variable.codes.level(level.code_level).labels)
                assert set(rows.values()) <= allowed, f"{variable.name} {level.name}"
                assert len(set(rows.values())) == len(allowed)
                outputs[level.name] = rows
            names = [lv.name for lv in variable.levels[1:]]
            for finer, coarser in zip(names, names[1:]):
                pairs = {(outputs[finer][c], outputs[coarser][c]) for c in codes}
                assert len({f for f, _ in pairs}) == len(pairs), f"{variable.name}: {coarser} is not a function of {finer}"


def test_bands_and_truncation_lose_information_monotonically(con, contracts):
    wage = contracts["jobs"].variable("j_wage")
    values = [0, 99.99, 100, 499.99, 500, 1234.56, 99999]
    for level in ("band_100", "band_500"):
        sql = level_expression(wage, level, "v")
        out = [r[0] for r in con.execute(f"SELECT {sql} FROM unnest(?) t(v)", [values]).fetchall()]
        assert out == sorted(out) and all(o <= v for o, v in zip(out, values))
    assert len({value_at(con, contracts, "jobs", "j_wage", "band_500", str(v)) for v in values}) < len(values)


def test_a_pseudonym_is_not_a_level_expression(contracts):
    with pytest.raises(ValueError, match="pseudonyms come from the project's key"):
        level_expression(contracts["jobs"].variable("j_employer"), "pseudonym", "j_employer")

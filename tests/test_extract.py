"""The extract: exactly what was approved, pseudonymised, documented, and written atomically."""

from __future__ import annotations

import base64
import re
import secrets
import stat

import duckdb
import pytest

from lmdp_pipeline.approvals import parse_approval
from lmdp_pipeline.extract import build_extract
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.paths import PROJECT_ROOT
from lmdp_pipeline.scope import population_sql

from .conftest import WAREHOUSE_MONTHS

PERIOD = ("2024-02", "2024-03")


def approval_for(project: str):
    example = parse_approval(PROJECT_ROOT / "sample_data" / "approvals" / f"{project}.yaml")
    return example.model_copy(update={"period": example.period.model_copy(update={"from_": PERIOD[0], "to": PERIOD[1]})})


@pytest.fixture(scope="module")
def built(small_home, contracts, tmp_path_factory):
    """Both example projects built from the small warehouse, each with its own key."""
    folder = tmp_path_factory.mktemp("extracts")
    keystore = Keystore(folder / "keys", MasterKey(secrets.token_bytes(32), "test"))
    results = {}
    for project in ("P2026-001", "P2026-002"):
        key = keystore.create(project)
        result = build_extract(
            approval_for(project), contracts, small_home.warehouse, folder, key, {"approval_sha256": "0" * 64}, folder / "staging" / project
        )
        results[project] = (result, key)
    return results


def connect(result):
    return duckdb.connect(str(result.path), read_only=True)


def all_text_cells(con) -> list[str]:
    values = []
    for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
        columns = [c for c, t in con.execute(f"SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '{table}'").fetchall() if t == "VARCHAR"]
        for column in columns:
            values += [v for (v,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL').fetchall()]
    return values


def test_tables_are_the_requested_registers_and_the_documentation(built):
    result, _ = built["P2026-001"]
    with connect(result) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"individuals", "jobs", "absences", "_manifest", "_dictionary", "_lineage"}


def test_no_identifier_of_the_identified_zone_in_any_cell(built, small_home):
    identified = set()
    with duckdb.connect() as con:
        for register, column in [("individuals", "i_matricule"), ("jobs", "j_employer"), ("benefits_in_kind", "bk_provider")]:
            identified |= {v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM '{small_home.warehouse}/{register}/*.parquet'").fetchall()}
    for result, _ in built.values():
        with connect(result) as con:
            cells = all_text_cells(con)
        assert not identified & set(cells)
        assert not [c for c in cells if re.fullmatch(r"\d{11}|\d{13}", c)]


def test_rows_only_for_the_population_and_inside_the_period(built, small_home, contracts):
    result, key = built["P2026-001"]
    approval = approval_for("P2026-001")
    sql, params = population_sql(approval, contracts, small_home.warehouse)
    with duckdb.connect() as con:
        population = {p for (p,) in con.execute(sql, params).fetchall()}
    with connect(result) as con:
        persons = {p for (p,) in con.execute("SELECT DISTINCT person_id FROM individuals").fetchall()}
        months = {m for (m,) in con.execute("SELECT DISTINCT i_month FROM individuals UNION SELECT DISTINCT j_month FROM jobs").fetchall()}
        in_jobs = con.execute("SELECT count(*) FROM jobs WHERE person_id NOT IN (SELECT person_id FROM individuals)").fetchone()[0]
    assert len(persons) == len(population) == result.persons > 0
    assert months == set(PERIOD) and WAREHOUSE_MONTHS[0] not in months
    assert in_jobs == 0, "the same person has the same person_id in every table"


def test_no_column_finer_than_approved(built, contracts):
    result, _ = built["P2026-001"]
    cantons = set(contracts.code_lists["residence"].level("canton").labels)
    sub_major = set(contracts.code_lists["isco08"].level("sub_major").labels)
    with connect(result) as con:
        assert {r for (r,) in con.execute("SELECT DISTINCT i_residence FROM individuals").fetchall()} <= cantons
        assert {r for (r,) in con.execute("SELECT DISTINCT i_citizenship FROM individuals").fetchall()} <= set("0123456")
        assert con.execute("SELECT typeof(i_birth_date) FROM individuals LIMIT 1").fetchone()[0] == "BIGINT"
        assert {r for (r,) in con.execute("SELECT DISTINCT j_isco FROM jobs").fetchall()} <= sub_major
        assert all(re.fullmatch(r"\d{4}-\d{2}", v) for (v,) in con.execute("SELECT DISTINCT j_start FROM jobs").fetchall())
        columns = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'absences'").fetchall()}
    assert "ab_diagnosis" not in columns, "a restricted variable that was not approved is absent"


def test_documentation_tables(built):
    result, key = built["P2026-001"]
    with connect(result) as con:
        manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
        dictionary = con.execute("SELECT level, codes FROM _dictionary WHERE table_name = 'individuals' AND column_name = 'i_citizenship'").fetchone()
        lineage = con.execute("SELECT source, transformations FROM _lineage WHERE table_name = 'jobs' AND column_name = 'employer_id'").fetchone()
    assert manifest["key_id"] == key.key_id and manifest["project"] == "P2026-001"
    assert '"individuals": ' in manifest["table_rows"]
    assert dictionary[0] == "group" and "Other EU-27" in dictionary[1]
    assert lineage == ("jobs.j_employer", "pseudonymised with the project's key; filtered to the project's population and period")


def test_two_projects_share_no_pseudonym(built):
    (first, _), (second, _) = built["P2026-001"], built["P2026-002"]
    with connect(first) as a, connect(second) as b:
        ids_a = {p for (p,) in a.execute("SELECT person_id FROM individuals").fetchall()}
        ids_b = {p for (p,) in b.execute("SELECT person_id FROM individuals").fetchall()}
    assert ids_a and ids_b and not ids_a & ids_b


def test_no_key_material_in_the_file(built):
    for result, key in built.values():
        data = result.path.read_bytes()
        for secret in (key.material, key.material.hex().encode(), base64.b64encode(key.material)):
            assert secret not in data


def test_file_is_private_and_no_partial_is_left(built):
    result, _ = built["P2026-001"]
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert [p.name for p in result.path.parent.iterdir() if p.name.startswith(".")] == []
    staged = result.path.parent / "staging" / "P2026-001" / "jobs.parquet"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600


def test_a_failed_build_keeps_the_previous_extract(built, small_home, contracts):
    result, key = built["P2026-001"]
    before = result.path.read_bytes()
    broken = approval_for("P2026-001").model_copy(update={"variables": {"jobs": {"j_isco": "4digit", "j_nothing": "default"}}})
    with pytest.raises(KeyError):
        build_extract(broken, contracts, small_home.warehouse, result.path.parent, key, {}, result.path.parent / "staging-broken")
    assert result.path.read_bytes() == before
    assert [p.name for p in result.path.parent.iterdir() if p.name.startswith(".")] == []

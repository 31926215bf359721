"""The extract: exactly what was approved, pseudonymised, documented, and written atomically."""

from __future__ import annotations

import base64
import json
import re
import secrets
import stat
from pathlib import Path

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
            approval_for(project), contracts, small_home.warehouse, folder, key, {"approval_sha256": "0" * 64}, small_home.external
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
    assert tables == {"individuals", "jobs", "absences", "external_survey_2025", "_manifest", "_inputs", "_dictionary", "_lineage"}


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
        types = dict(con.execute("SELECT column_name, data_type FROM _dictionary WHERE table_name = 'individuals'").fetchall())
        lineage = con.execute("SELECT source, transformations FROM _lineage WHERE table_name = 'jobs' AND column_name = 'employer_id'").fetchone()
    assert manifest["key_id"] == key.key_id and manifest["project"] == "P2026-001"
    with connect(result) as con:
        inputs = con.execute("SELECT register, month, length(source_sha256), rows FROM _inputs WHERE month IS NOT NULL ORDER BY ALL").fetchall()
    assert {(r, m) for r, m, _, _ in inputs} == {(r, m) for r in ("absences", "affiliation", "individuals", "jobs") for m in PERIOD}
    assert all(length == 64 and rows > 0 for _, _, length, rows in inputs)
    assert '"individuals": ' in manifest["table_rows"]
    assert dictionary[0] == "group" and "Other EU-27" in dictionary[1]
    assert types["i_birth_date"] == "BIGINT" and types["person_id"] == "VARCHAR", "a year is an integer, and the file says so"
    assert "individuals" in json.loads(manifest["table_grains"])
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


def test_a_failed_build_keeps_the_previous_extract(built, small_home, contracts):
    result, key = built["P2026-001"]
    before = result.path.read_bytes()
    broken = approval_for("P2026-001").model_copy(update={"variables": {"jobs": {"j_isco": "4digit", "j_nothing": "default"}}})
    with pytest.raises(KeyError):
        build_extract(broken, contracts, small_home.warehouse, result.path.parent, key, {}, small_home.external)
    assert result.path.read_bytes() == before
    assert [p.name for p in result.path.parent.iterdir() if p.name.startswith(".")] == []


# --- the blocking checks, tried by breaking the candidate before they run -------------------


@pytest.fixture
def tampered(built, small_home, contracts, tmp_path):
    """Build P2026-001's candidate, break it with ``tamper(con)``, and return the failing checks."""
    from lmdp_pipeline.extract import CandidateExtract, ExtractBuilder
    from lmdp_pipeline.extract_checks import check_extract

    _, key = built["P2026-001"]
    approval = approval_for("P2026-001")

    def failing(tamper) -> dict[str, list[str]]:
        with CandidateExtract(tmp_path, approval.project, tmp_path / "spill") as candidate:
            builder = ExtractBuilder(candidate.con, approval, contracts, small_home.warehouse, key)
            builder.scope()
            for register in approval.variables:
                builder.register_table(register)
            builder.document({})
            tamper(candidate.con)
            outcomes = check_extract(candidate.con, approval, contracts, builder.identifier_maps)
        return {o.name: o.problems for o in outcomes if not o.passed}

    return failing


def test_all_checks_pass_on_a_built_extract(built):
    for result, _ in built.values():
        assert result.checks and all(c.passed for c in result.checks)


@pytest.mark.parametrize(
    ("statement", "check", "words"),
    [
        ("UPDATE jobs SET j_isco = '2512' WHERE rowid = 0", "levels_not_finer", "jobs.j_isco: 1 distinct values finer than level '2digit'"),
        ("UPDATE individuals SET i_residence = '0701' WHERE rowid = 0", "levels_not_finer", "individuals.i_residence"),
        ("UPDATE individuals SET i_month = '2024-01' WHERE rowid = 0", "scope_and_period", "1 rows outside the period"),
        ("UPDATE jobs SET person_id = 'ffffffffffffffff' WHERE rowid = 0", "scope_and_period", "jobs: 1 persons outside the population"),
        ("ALTER TABLE absences ADD COLUMN ab_diagnosis VARCHAR", "approved_items_only", "ab_diagnosis"),
        ("CREATE TABLE benefits_in_kind AS SELECT 1 AS x", "approved_items_only", "table benefits_in_kind was not approved"),
        ("CREATE MACRO lmdp_check(n) AS n % 10", "approved_items_only", "macro lmdp_check was not approved"),
        ("CREATE VIEW everything AS SELECT * FROM jobs", "approved_items_only", "view everything was not approved"),
        ("UPDATE absences SET ab_reason = 'Marie Schmit' WHERE rowid = 0", "no_direct_identifiers", "hold spaces"),
        ("UPDATE jobs SET person_id = 'P' || person_id WHERE rowid = 0", "pseudonyms_unique", "jobs: 1 person_id values are not pseudonyms"),
    ],
    ids=["finer-code", "commune-for-canton", "outside-period", "stranger", "restricted-column", "extra-table", "macro", "view",
         "a-name", "not-a-pseudonym"],
)
def test_each_check_catches_its_breach(tampered, statement, check, words):
    problems = tampered(lambda con: con.execute(statement))
    assert check in problems and any(words in p for p in problems[check]), problems


def test_a_matricule_in_a_cell_is_caught_and_never_shown(tampered):
    leaked = []

    def leak(con):
        leaked.append(con.execute("SELECT identifier FROM population_map LIMIT 1").fetchone()[0])
        con.execute("UPDATE jobs SET employer_id = ? WHERE rowid = 0", leaked)

    problems = tampered(leak)["no_direct_identifiers"]
    assert "jobs.employer_id: 1 distinct values look like identifiers" in problems
    assert "jobs.employer_id: 1 distinct values are identifiers of the identified zone" in problems
    assert not any(leaked[0] in p for p in problems), "the report never shows the value"


def test_a_candidate_left_without_publishing_never_replaces_the_extract(built, tmp_path):
    from lmdp_pipeline.extract import CandidateExtract

    result, _ = built["P2026-001"]
    before = result.path.read_bytes()
    with pytest.raises(RuntimeError, match="refused"):
        with CandidateExtract(result.path.parent, "P2026-001", tmp_path) as candidate:
            candidate.con.execute("CREATE TABLE individuals AS SELECT 1 AS x")
            raise RuntimeError("refused")
    assert result.path.read_bytes() == before
    assert [p.name for p in result.path.parent.iterdir() if p.name.startswith(".")] == []


def test_spilled_temporary_tables_stay_in_the_identified_zone(built, small_home, tmp_path):
    """The build's temporary tables hold matricules: DuckDB may spill them only under warehouse/.spill, removed after."""
    from lmdp_pipeline.extract import CandidateExtract
    from lmdp_pipeline.spill import spill_folder

    zone = small_home.warehouse / ".spill"
    with spill_folder(small_home.warehouse) as spill, CandidateExtract(tmp_path / "extracts", "P2026-001", spill) as candidate:
        assert Path(candidate.con.execute("SELECT current_setting('temp_directory')").fetchone()[0]) == spill
        assert spill.parent == zone and stat.S_IMODE(spill.stat().st_mode) == 0o700
    assert not spill.exists() and [p.name for p in (tmp_path / "extracts").iterdir()] == []
    assert zone.is_dir() and not any(zone.iterdir()), "the builds of this module spilled there and left nothing"

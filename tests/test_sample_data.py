"""The synthetic deliveries look and hang together like the source agency's."""

from __future__ import annotations

import filecmp
import hashlib
from pathlib import Path

import duckdb
import pytest
import yaml

from lmdp_pipeline import matricule
from lmdp_pipeline.contracts import VariableType
from lmdp_pipeline.paths import PROJECT_ROOT
from lmdp_pipeline.synthetic import generate

COMMITTED = PROJECT_ROOT / "sample_data"
COMMITTED_ARGS = {"persons": 400, "period": "2024-01:2024-06", "seed": 7}


def read(con: duckdb.DuckDBPyConnection, landing: Path, register: str) -> str:
    """A view over all months of a register, every column as text, with the file name."""
    view = f"v_{register}"
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_csv('{landing}/{register}/*.csv', "
        "all_varchar = true, header = true, filename = true)"
    )
    return view


@pytest.fixture(scope="module")
def con(generated):
    connection = duckdb.connect()
    for register in generated.rows:
        read(connection, generated.landing, register)
    yield connection
    connection.close()


def test_one_csv_per_register_and_month(generated, contracts):
    assert set(generated.rows) == set(contracts.registers)
    for register, months in generated.rows.items():
        assert len(months) == 24
        for month in months:
            assert (generated.landing / register / f"{register}_{month}.csv").is_file()


def test_files_carry_the_contract_columns_including_direct_identifiers(generated, contracts, con):
    for contract in contracts:
        columns = [row[0] for row in con.execute(f"DESCRIBE v_{contract.register}").fetchall()]
        assert columns[:-1] == contract.delivered_columns  # last column is the file name


def test_one_row_per_key_in_every_delivery(contracts, con):
    for contract in contracts:
        key = ", ".join(contract.key + ["filename"])
        duplicates = con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM v_{contract.register} GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        assert duplicates == 0, contract.register


def test_values_follow_the_contract(contracts, con):
    for contract in contracts:
        view = f"v_{contract.register}"
        for v in contract.variables:
            nulls = con.execute(f"SELECT count(*) FROM {view} WHERE {v.name} IS NULL").fetchone()[0]
            if not v.nullable:
                assert nulls == 0, f"{contract.register}.{v.name} has empty values"
            if v.codes is not None:
                allowed = [c.code for c in v.codes.finest.codes]
                outside = con.execute(
                    f"SELECT DISTINCT {v.name} FROM {view} WHERE {v.name} IS NOT NULL AND NOT list_contains(?, {v.name})",
                    [allowed],
                ).fetchall()
                assert outside == [], f"{contract.register}.{v.name}: {outside[:5]}"
            if v.min is not None or v.max is not None:
                low, high = con.execute(f"SELECT min({v.name}::DOUBLE), max({v.name}::DOUBLE) FROM {view}").fetchone()
                assert (v.min is None or low >= v.min) and (v.max is None or high <= v.max), v.name
            if v.type is VariableType.date:
                con.execute(f"SELECT {v.name}::DATE FROM {view}")  # every value parses as a date


def test_month_column_matches_the_file(contracts, con):
    for contract in contracts:
        month = contract.delivery.month_column
        wrong = con.execute(
            f"SELECT count(*) FROM v_{contract.register} WHERE NOT ends_with(filename, '_' || {month} || '.csv')"
        ).fetchone()[0]
        assert wrong == 0, contract.register


def test_references_hold_within_each_month(contracts, con):
    checked = 0
    for contract in contracts:
        for ref in contract.quality.references:
            target = contracts[ref.register]
            broken = con.execute(
                f"""SELECT count(*) FROM v_{contract.register} s
                    ANTI JOIN v_{ref.register} t
                      ON s.{ref.column} = t.{ref.to_column}
                     AND s.{contract.delivery.month_column} = t.{target.delivery.month_column}
                    WHERE s.{ref.column} IS NOT NULL"""
            ).fetchone()[0]
            assert broken == 0, f"{contract.register}.{ref.column} -> {ref.register}.{ref.to_column}"
            checked += 1
    assert checked >= 10


def test_every_identifier_is_a_valid_number(contracts, con):
    for contract in contracts:
        for v in contract.identifiers:
            values = [row[0] for row in con.execute(f"SELECT DISTINCT {v.name} FROM v_{contract.register} WHERE {v.name} IS NOT NULL").fetchall()]
            if v.identifier_format == "matricule":
                invalid = [value for value in values if not matricule.is_valid(value)]
                assert invalid == [], f"{contract.register}.{v.name}: {len(invalid)} invalid"
            elif v.identifier_format == "employer_number":
                assert all(len(x) == 11 and x.isdigit() for x in values)
            else:
                assert all(len(x) == 8 and x.isdigit() for x in values)


def test_luxembourg_like_marginals(con):
    residents = con.execute(
        """SELECT i_citizenship, count(*) AS n FROM v_individuals
           WHERE i_month = '2023-01' AND length(i_residence) = 4 GROUP BY 1 ORDER BY n DESC"""
    ).fetchall()
    total = sum(n for _, n in residents)
    share = dict((c, n / total) for c, n in residents)
    assert 0.40 <= share["LU"] <= 0.54
    assert residents[1][0] == "PT", "Portuguese are the largest foreign group"
    cross_border = con.execute(
        """SELECT avg(CASE WHEN i.i_residence IN ('FR', 'BE', 'DE') THEN 1 ELSE 0 END)
           FROM v_affiliation a JOIN v_individuals i ON a.a_matricule = i.i_matricule AND a.a_month = i.i_month
           WHERE a.a_month = '2023-01' AND a.a_status = 'employee'"""
    ).fetchone()[0]
    assert 0.38 <= cross_border <= 0.52


def test_people_age_move_and_change_citizenship(con):
    birth_dates = con.execute(
        "SELECT count(*) FROM (SELECT i_matricule FROM v_individuals GROUP BY 1 HAVING count(DISTINCT i_birth_date) > 1)"
    ).fetchone()[0]
    assert birth_dates == 0
    changes = con.execute(
        """SELECT count(DISTINCT i_residence) > 1 AS moved, count(DISTINCT i_citizenship) > 1 AS naturalised
           FROM v_individuals GROUP BY i_matricule"""
    ).fetchall()
    assert sum(moved for moved, _ in changes) > 0
    assert sum(naturalised for _, naturalised in changes) > 0
    born = con.execute("SELECT count(*) FROM v_individuals WHERE i_month = '2024-12' AND i_birth_date >= '2023-01-01'").fetchone()[0]
    assert born > 0, "children are born during the period"


def test_benefits_absences_and_jobs_are_coherent(con):
    # A long sickness absence is followed by sickness cash benefits after the employer's 77 days.
    paid = con.execute(
        """SELECT count(*) FROM v_absences a JOIN v_cash_benefits c ON a.ab_matricule = c.cb_matricule
           WHERE a.ab_reason = 'sickness' AND c.cb_type = 'sickness' AND c.cb_month > a.ab_month"""
    ).fetchone()[0]
    assert paid > 0
    # Absences are certified to an employer the person works for that month.
    foreign = con.execute(
        """SELECT count(*) FROM v_absences a ANTI JOIN v_jobs j
           ON a.ab_matricule = j.j_matricule AND a.ab_employer = j.j_employer AND a.ab_month = j.j_month"""
    ).fetchone()[0]
    assert foreign == 0
    # Every employee's main employer is one of the person's jobs that month.
    mismatched = con.execute(
        """SELECT count(*) FROM v_affiliation a ANTI JOIN v_jobs j
           ON a.a_matricule = j.j_matricule AND a.a_employer = j.j_employer AND a.a_month = j.j_month
           WHERE a.a_status = 'employee'"""
    ).fetchone()[0]
    assert mismatched == 0


def test_example_approvals_and_external_file(generated):
    assert [p.name for p in generated.approvals] == ["P2026-001.yaml", "P2026-002.yaml", "P2026-003.yaml"]
    survey = generated.external[0]
    lines = survey.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "matricule,q_health,q_hours"
    ids = [line.split(",")[0] for line in lines[1:]]
    assert sum(not matricule.is_valid(i) for i in ids) == 2, "two mistyped ids show the linkage report"
    declared = yaml.safe_load(generated.approvals[0].read_text())["external"]["survey_2025"]
    assert declared["sha256"] == hashlib.sha256(survey.read_bytes()).hexdigest(), "the approval names the file it approves"


def test_generation_is_deterministic(tmp_path, contracts):
    first = generate(tmp_path / "a", persons=300, period="2024-01:2024-03", seed=3, contracts=contracts)
    second = generate(tmp_path / "b", persons=300, period="2024-01:2024-03", seed=3, contracts=contracts)
    other = generate(tmp_path / "c", persons=300, period="2024-01:2024-03", seed=4, contracts=contracts)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 9 * 3 + 4 + 3  # deliveries; three approvals and the survey; output requests and the attached model
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", [str(f) for f in files], shallow=False)
    assert mismatch == [] and errors == []
    assert first.rows == second.rows
    individuals = "landing/individuals/individuals_2024-01.csv"
    assert (tmp_path / "a" / individuals).read_bytes() != (tmp_path / "c" / individuals).read_bytes()
    assert other.rows != first.rows


def test_committed_sample_data_is_what_the_generator_writes(tmp_path, contracts):
    """sample_data/ is regenerated with the command in its README; a stale copy fails here."""
    generate(tmp_path, contracts=contracts, **COMMITTED_ARGS)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(str(p.relative_to(COMMITTED)) for p in COMMITTED.rglob("*") if p.is_file() and p.name != "README.md")
    assert committed == files
    _, mismatch, errors = filecmp.cmpfiles(tmp_path, COMMITTED, files, shallow=False)
    assert mismatch == [] and errors == []

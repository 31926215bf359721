"""The researchers' own data: linked to the right persons, nothing identifying through, bad files refused whole.

Tried as an attacker holding the researchers' own file would: matricules smuggled
through declared columns of every type, a file without its header line, the file's
order kept in the extract.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import secrets
import shutil

import duckdb
import pytest
import yaml

from lmdp_pipeline import matricule
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.projects.approval import ApprovalError
from lmdp_pipeline.projects.build import build_extract
from lmdp_pipeline.projects.external import ExternalDataRefused, inspect_external
from lmdp_pipeline.projects.lifecycle import check

from .conftest import approved_files, plan_for, project_home
from .test_extract import all_text_cells

PROJECT = "P2026-001"
SURVEY = "survey_2025"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return Keystore(tmp_path_factory.mktemp("keys"), MasterKey(secrets.token_bytes(32), "test")).create(PROJECT)


@pytest.fixture(scope="module")
def survey_rows(small_home) -> list[dict]:
    with (small_home.external / PROJECT / f"{SURVEY}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def home(small_home, tmp_path_factory):
    return project_home(small_home, tmp_path_factory.mktemp("external-home"))


@pytest.fixture(scope="module")
def built(home, contracts, key):
    return build_extract(approved_files(plan_for(PROJECT, contracts), home), home, key, {})


def own_external(small_home, tmp_path) -> PlatformPaths:
    """A home over the shared warehouse, with an external folder of its own for a rewritten survey."""
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "warehouse").symlink_to(small_home.warehouse, target_is_directory=True)
    (folder / "external" / PROJECT).mkdir(parents=True)
    return PlatformPaths(folder)


def test_rows_join_to_the_right_persons(built, survey_rows):
    """The birth year in each survey matricule is the birth year the registers hold for the linked person_id."""
    with duckdb.connect(str(built.path), read_only=True) as con:
        linked = con.execute(
            """SELECT e.q_health, e.q_hours, any_value(i.i_birth_date) FROM external_survey_2025 e
               JOIN individuals i USING (person_id) GROUP BY e.person_id, e.q_health, e.q_hours"""
        ).fetchall()
        total = con.execute("SELECT count(*), count(DISTINCT person_id) FROM external_survey_2025").fetchone()
    assert total[0] == total[1] == len(linked) > 0, "every linked row is a person of the individuals table, once"
    expected = {(int(r["q_health"]), int(r["q_hours"]), int(r["matricule"][:4])) for r in survey_rows if matricule.is_valid(r["matricule"])}
    assert set(linked) <= expected and len(set(linked)) > len(linked) // 2


def test_linkage_report_counts_every_row_and_names_invalid_ids_by_row_number(built, survey_rows, small_home):
    [survey] = built.externals
    invalid_rows = [n for n, row in enumerate(survey_rows, start=1) if not matricule.is_valid(row["matricule"])]
    assert len(invalid_rows) == 2, "the sample survey has two mistyped matricules"
    report = survey.linkage
    assert (report.rows_read, report.invalid_ids, report.invalid_id_rows) == (len(survey_rows), 2, invalid_rows)
    assert report.valid_ids == report.linked + report.not_linked and report.not_linked > 0, "the sample has persons outside"
    with duckdb.connect(str(built.path), read_only=True) as con:
        manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
        inputs = con.execute("SELECT file, source_sha256, rows FROM _inputs WHERE register = 'external_survey_2025'").fetchall()
        lineage = dict(con.execute("SELECT column_name, source FROM _lineage WHERE table_name = 'external_survey_2025'").fetchall())
        dictionary = dict(con.execute("SELECT column_name, description FROM _dictionary WHERE table_name = 'external_survey_2025'").fetchall())
    sha256 = hashlib.sha256((small_home.external / PROJECT / f"{SURVEY}.csv").read_bytes()).hexdigest()
    assert manifest["external_survey_2025_sha256"] == sha256
    assert json.loads(manifest["external_survey_2025_linkage"])["linked"] == report.linked
    assert inputs == [(f"external/{PROJECT}/{SURVEY}.csv", sha256, len(survey_rows))]
    assert lineage == {c: f"external/{PROJECT}/{SURVEY}.csv.{s}" for c, s in
                       [("person_id", "matricule"), ("q_health", "q_health"), ("q_hours", "q_hours")]}
    assert "values [1, 2, 3, 4, 5]" in dictionary["q_health"]


def test_no_matricule_of_the_file_reaches_the_extract(built, survey_rows):
    with duckdb.connect(str(built.path), read_only=True) as con:
        cells = set(all_text_cells(con))
        columns = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'external_survey_2025'").fetchall()}
    assert columns == {"person_id", "q_health", "q_hours"}
    assert not cells & {r["matricule"] for r in survey_rows}
    assert not [c for c in cells if re.fullmatch(r"\d{8,13}", c)]


def test_a_project_without_external_data_is_unaffected(small_home, contracts, tmp_path):
    key = Keystore(tmp_path / "keys", MasterKey(secrets.token_bytes(32), "test")).create("P2026-002")
    result = build_extract(plan_for("P2026-002", contracts), own_external(small_home, tmp_path), key, {})
    with duckdb.connect(str(result.path), read_only=True) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        manifest = {i for (i,) in con.execute("SELECT item FROM _manifest").fetchall()}
    assert not [t for t in tables if t.startswith("external_")] and not [i for i in manifest if i.startswith("external_")]
    assert result.externals == [] and not any(c.blocks for c in result.checks)


def test_a_parquet_file_links_like_its_csv(built, small_home, contracts, key, tmp_path):
    paths = own_external(small_home, tmp_path)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv('{small_home.external / PROJECT / SURVEY}.csv', all_varchar = true)) "
                    f"TO '{paths.external / PROJECT / SURVEY}.parquet' (FORMAT parquet)")
    result = build_extract(approved_files(_with_survey(plan_for(PROJECT, contracts), file=f"{SURVEY}.parquet"), paths), paths, key, {})
    assert result.externals[0].linkage.as_dict() | {"invalid_id_rows": None} == built.externals[0].linkage.as_dict() | {"invalid_id_rows": None}
    with duckdb.connect(str(result.path), read_only=True) as a, duckdb.connect(str(built.path), read_only=True) as b:
        query = "SELECT * FROM external_survey_2025 ORDER BY person_id"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


# --- bad files: refused whole, with a message naming the problem, and nothing built ----------


def _with_survey(plan, **changes):
    from lmdp_pipeline.projects.plan import Plan

    approval = plan.approval
    survey = approval.external[SURVEY].model_copy(update=changes)
    return Plan(approval.model_copy(update={"external": {SURVEY: survey}}), plan.contracts, plan.period)


def _declare(plan, **columns):
    from lmdp_pipeline.projects.approval import ExternalColumn

    declared = dict(plan.approval.external[SURVEY].columns) | {name: ExternalColumn(type=kind) for name, kind in columns.items()}
    return _with_survey(plan, columns=declared)


def _rewrite(rows: list[dict], path, transform) -> None:
    rows = transform([dict(r) for r in rows])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["matricule", "q_health", "q_hours"])
        writer.writeheader()
        writer.writerows(rows)


def _add(column, values):
    return lambda rows: [r | {column: values(i, r)} for i, r in enumerate(rows)]


def _smuggled(suffix: str = "", blank_every: int = 0):
    """Each row's own matricule with ``suffix``, blank in every ``blank_every``-th row (the attack of the review)."""
    return lambda i, r: "" if blank_every and i % blank_every == 0 else r["matricule"] + suffix


def _wide(i, r):
    """Every third row's own matricule in full-width digits: no ASCII digit for a pattern to find."""
    return "" if i % 3 else r["matricule"].translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def _others_matricule(i, r):
    return "" if i % 3 else r["matricule"]


BAD_FILES = {
    "missing-id-column": (lambda rows: [{"id" if k == "matricule" else k: v for k, v in r.items()} for r in rows], {},
                          "the id column 'matricule' is missing"),
    "wrong-type": (lambda rows: [r | {"q_hours": "forty"} if i == 2 else r for i, r in enumerate(rows)], {},
                   "column 'q_hours': 1 values are not of type integer (rows 3)"),
    "undeclared-value": (lambda rows: [r | {"q_health": "9"} if i == 0 else r for i, r in enumerate(rows)], {},
                         "column 'q_health': 1 values are not among the declared values"),
    "undeclared-column": (_add("q_extra", lambda i, r: "1"), {}, "column 4 of the header is not declared"),
    "names": (_add("last_name", lambda i, r: "Schmit"), {"last_name": "string"}, "column 'last_name' looks like a direct identifier by its name"),
    "e-mails": (_add("q_contact", lambda i, r: f"p{i}@example.lu"), {"q_contact": "string"}, "column 'q_contact' holds e-mail addresses"),
    "phones": (_add("q_reach", lambda i, r: "+352 621 123 456"), {"q_reach": "string"}, "column 'q_reach' holds phone numbers"),
    "addresses": (_add("q_where", lambda i, r: "12 rue de la Gare"), {"q_where": "string"}, "column 'q_where' holds text with spaces"),
    "respondent-number": (_add("q_number", lambda i, r: str(1000 + i)), {"q_number": "integer"}, "column 'q_number' has "),
    "matricule-as-decimal": (_add("q_score", _smuggled(".0")), {"q_score": "decimal"}, "column 'q_score' holds a valid matricule inside"),
    "matricule-with-a-letter-and-blanks": (_add("q_code", _smuggled("A", blank_every=9)), {"q_code": "string"},
                                           "column 'q_code' holds matricules of this file or of the population"),
    "near-unique-over-non-blank": (_add("q_code", lambda i, r: "" if i % 2 else f"R{i}"), {"q_code": "string"},
                                   "column 'q_code' has "),
    "employer-numbers-in-a-decimal": (_add("q_amount", lambda i, r: f"{19632000000 + i % 3}.5"), {"q_amount": "decimal"},
                                      "column 'q_amount' holds runs of 8 or more digits (identifiers) in 3 distinct values"),
    "matricules-in-full-width-digits": (_add("q_code", _wide), {"q_code": "string"}, "column 'q_code' holds runs of 8 or more digits"),
    "some-matricules-in-an-integer": (_add("q_ref", _others_matricule), {"q_ref": "integer"}, "column 'q_ref' holds runs of 8 or more digits"),
    "exact-income-as-decimal": (_add("q_income", lambda i, r: f"{123456 + 997 * i}.{i % 100:02d}"), {"q_income": "decimal"},
                                "round or band it"),
    "exact-dates": (_add("q_interview", lambda i, r: f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}" if i < 100 else "2025-01-01"),
                    {"q_interview": "date"}, "column 'q_interview' has"),
    "duplicate-ids": (lambda rows: rows + [rows[0]], {}, "2 rows share a matricule with another row (rows 1, "),
    "empty": (lambda rows: [], {}, "the file has no rows"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_external_file_is_refused_whole_and_builds_nothing(case, built, survey_rows, small_home, contracts, key, tmp_path):
    transform, declared, words = BAD_FILES[case]
    if case == "duplicate-ids":
        survey_rows = [r for r in survey_rows if matricule.is_valid(r["matricule"])]
    paths = own_external(small_home, tmp_path)
    _rewrite(survey_rows, paths.external / PROJECT / f"{SURVEY}.csv", transform)
    paths.extracts.mkdir()
    shutil.copy(built.path, paths.extracts / built.path.name)
    before = (paths.extracts / built.path.name).read_bytes()
    plan = approved_files(_declare(plan_for(PROJECT, contracts), **declared), paths)
    with pytest.raises(ExternalDataRefused) as refused:
        build_extract(plan, paths, key, {})
    message = str(refused.value)
    assert words in message and f"{SURVEY}.csv" in message, message
    assert not any(r["matricule"] in message for r in survey_rows), "the error never shows a matricule"
    assert (paths.extracts / built.path.name).read_bytes() == before, "the previous extract stays"
    assert [p.name for p in paths.extracts.iterdir()] == [built.path.name], "no candidate left behind"
    if case not in ("duplicate-ids", "empty"):  # the preview refuses it too, before any key or build
        with pytest.raises(ExternalDataRefused, match=re.escape(words)):
            inspect_external(paths, PROJECT, SURVEY, plan.approval.external[SURVEY])


def test_a_file_other_than_the_approved_one_is_refused_and_builds_nothing(built, survey_rows, small_home, contracts, key, tmp_path):
    """The attack of the third review: the researchers re-delivered their file with one more row and compared the
    builds (the one new person_id was the added person's; the linked count said whether they are in the population).
    A file is linked only if it is the one the approval names, at the approval check and again at the build."""
    paths = own_external(small_home, tmp_path)
    survey = paths.external / PROJECT / f"{SURVEY}.csv"
    _rewrite(survey_rows, survey, lambda rows: rows)
    approved = hashlib.sha256(survey.read_bytes()).hexdigest()
    plan = approved_files(plan_for(PROJECT, contracts), paths)
    assert plan.approval.external[SURVEY].sha256 == approved
    newcomer = next(m for m in _valid_matricules("1965", 50) if m not in {r["matricule"] for r in survey_rows})
    _rewrite(survey_rows, survey, lambda rows: rows + [{"matricule": newcomer, "q_health": "3", "q_hours": "40"}])
    delivered = hashlib.sha256(survey.read_bytes()).hexdigest()
    paths.extracts.mkdir()
    with pytest.raises(ExternalDataRefused) as refused:
        build_extract(plan, paths, key, {})
    assert f"field external.{SURVEY}.sha256: the file is not the one the reviewers approved (its sha256 is {delivered})" in str(refused.value)
    assert list(paths.extracts.iterdir()) == [], "nothing built"

    data = yaml.safe_load((small_home.approvals / f"{PROJECT}.yaml").read_text())
    data["external"][SURVEY]["sha256"] = approved
    paths.approvals.mkdir()
    (paths.approvals / f"{PROJECT}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ApprovalError, match=f"field external.{SURVEY}.sha256: the file is not the one the reviewers approved"):
        check(paths, contracts, paths.approvals / f"{PROJECT}.yaml")
    data["external"][SURVEY]["sha256"] = delivered  # the reviewers approve the new file
    (paths.approvals / f"{PROJECT}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert check(paths, contracts, paths.approvals / f"{PROJECT}.yaml").plan.approval.external[SURVEY].sha256 == delivered


def test_a_file_replaced_while_the_build_reads_it_is_refused(built, survey_rows, small_home, contracts, key, tmp_path,
                                                              monkeypatch):
    """An operator drops the next version (not yet approved) while a build is linking the approved one: the build
    checked the approved file's checksum but would load the new one. The new file must never be linked."""
    from lmdp_pipeline.projects import external

    paths = own_external(small_home, tmp_path)
    survey = paths.external / PROJECT / f"{SURVEY}.csv"
    _rewrite(survey_rows, survey, lambda rows: rows)
    plan = approved_files(plan_for(PROJECT, contracts), paths)
    newcomer = next(m for m in _valid_matricules("1965", 50) if m not in {r["matricule"] for r in survey_rows})
    reading = external.check_external

    def replaced_then_read(*args, **kwargs):
        _rewrite(survey_rows, survey, lambda rows: rows + [{"matricule": newcomer, "q_health": "3", "q_hours": "40"}])
        return reading(*args, **kwargs)

    monkeypatch.setattr(external, "check_external", replaced_then_read)
    paths.extracts.mkdir()
    with pytest.raises(ExternalDataRefused, match=f"the file changed while it was read; field external.{SURVEY}.sha256"):
        build_extract(plan, paths, key, {})
    assert list(paths.extracts.iterdir()) == [], "nothing built"


def test_a_file_without_its_header_line_echoes_no_value(survey_rows, small_home, contracts, key, tmp_path):
    """The first data row read as a header must not reach a message: a matricule (and here a name) would."""
    paths = own_external(small_home, tmp_path)
    first = survey_rows[0]["matricule"]
    lines = [f"{r['matricule']},Jean Dupont,{r['q_health']},{r['q_hours']}" for r in survey_rows]
    (paths.external / PROJECT / f"{SURVEY}.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ExternalDataRefused) as refused:
        build_extract(approved_files(plan_for(PROJECT, contracts), paths), paths, key, {})
    message = str(refused.value)
    assert "does the file lack its header line?" in message
    assert first not in message and "Dupont" not in message


@pytest.mark.parametrize("name", ["lmdp_valid", "lmdp_row", "c1"])
def test_file_columns_never_collide_with_the_platforms_own(name, survey_rows, small_home, contracts, key, tmp_path):
    paths = own_external(small_home, tmp_path)
    _rewrite(survey_rows, paths.external / PROJECT / f"{SURVEY}.csv", _add(name, lambda i, r: "1"))
    with pytest.raises(ExternalDataRefused, match="column 4 of the header is not declared"):
        build_extract(approved_files(plan_for(PROJECT, contracts), paths), paths, key, {})


def test_a_date_column_with_a_few_dates_is_linked(survey_rows, small_home, contracts, key, tmp_path):
    """ISO dates are not phone numbers: a declared date column (here a month of interview) links, typed."""
    paths = own_external(small_home, tmp_path)
    _rewrite(survey_rows, paths.external / PROJECT / f"{SURVEY}.csv", _add("q_month", lambda i, r: f"2025-0{1 + i % 3}-01"))
    result = build_extract(approved_files(_declare(plan_for(PROJECT, contracts), q_month="date"), paths), paths, key, {})
    with duckdb.connect(str(result.path), read_only=True) as con:
        assert con.execute("SELECT DISTINCT typeof(q_month) FROM external_survey_2025").fetchall() == [("DATE",)]


@pytest.mark.parametrize(("distinct_every", "refused"), [(1, True), (10, False)], ids=["near-unique", "repeated"])
def test_near_uniqueness_applies_to_small_files(distinct_every, refused, survey_rows, small_home, contracts, key, tmp_path):
    """Five respondents, each with a different value, is a key; the old rule skipped files under 20 rows."""
    paths = own_external(small_home, tmp_path)
    valid = [r for r in survey_rows if matricule.is_valid(r["matricule"])][:5]
    _rewrite(valid, paths.external / PROJECT / f"{SURVEY}.csv", _add("q_code", lambda i, r: f"K{i // distinct_every}"))
    plan = approved_files(_declare(plan_for(PROJECT, contracts), q_code="string"), paths)
    if refused:
        with pytest.raises(ExternalDataRefused, match=r"column 'q_code' has (\d) distinct values in the \1 non-blank rows"):
            build_extract(plan, paths, key, {})
    else:
        assert build_extract(plan, paths, key, {}).externals


@pytest.mark.parametrize("padding", ["invalid matricules", "persons outside the population"])
def test_rows_the_linkage_drops_do_not_dilute_a_key(padding, survey_rows, small_home, contracts, key, tmp_path):
    """The attack of the review: a per-respondent key padded with rows sharing one value passes a count over the whole
    file (121 distinct values in 140 rows), but the padding never reaches the extract, where the key is unique again."""
    paths = own_external(small_home, tmp_path)
    linked = [r for r in survey_rows if matricule.is_valid(r["matricule"])]
    if padding == "invalid matricules":
        pads = [{"matricule": f"x{i}", "q_health": "3", "q_hours": "40"} for i in range(len(linked))]
    else:  # valid matricules of persons who are not in the cohort (born 1940): dropped as not linked
        pads = [{"matricule": m, "q_health": "3", "q_hours": "40"} for m in _valid_matricules("1940", len(linked))]
    rows = [r | {"q_weight": str(2 + i)} for i, r in enumerate(linked)] + [r | {"q_weight": "1"} for r in pads]
    assert len({r["q_weight"] for r in rows}) < 0.9 * len(rows), "the whole file is no key by the count"
    _rewrite(rows, paths.external / PROJECT / f"{SURVEY}.csv", lambda rows: rows)
    plan = approved_files(_declare(plan_for(PROJECT, contracts), q_weight="integer"), paths)
    with pytest.raises(ExternalDataRefused, match=r"column 'q_weight' has (\d+) distinct values in the \1 non-blank rows"):
        build_extract(plan, paths, key, {})
    if padding == "invalid matricules":  # the preview, which knows no population, judges the rows with valid ids
        with pytest.raises(ExternalDataRefused, match="column 'q_weight' has"):
            inspect_external(paths, PROJECT, SURVEY, plan.approval.external[SURVEY])


def _valid_matricules(year: str, count: int) -> list[str]:
    """Matricules with valid check digits for persons born on 1 January of ``year``."""
    return [body + matricule.check_digits(body) for body in (f"{year}0101{serial:03d}" for serial in range(count))]


def test_every_column_of_the_file_counts_as_a_quasi_identifier(survey_rows, small_home, contracts, key, tmp_path):
    """A key kept just under the near-uniqueness limit with linked respondents (80% unique, the rest sharing a value)
    is measured: the survey table's expected re-identifications are recomputed here from the extract's own rows."""
    paths = own_external(small_home, tmp_path)
    rows = [r for r in survey_rows if matricule.is_valid(r["matricule"])]
    rows = [r | {"q_weight": str(2 + i) if i % 5 else "1"} for i, r in enumerate(rows)]
    _rewrite(rows, paths.external / PROJECT / f"{SURVEY}.csv", lambda rows: rows)
    result = build_extract(approved_files(_declare(plan_for(PROJECT, contracts), q_weight="integer"), paths), paths, key, {})
    with duckdb.connect(str(result.path), read_only=True) as con:
        published = con.execute("SELECT q_health, q_hours, q_weight FROM external_survey_2025").fetchall()
        listed = {c for (c,) in con.execute(
            "SELECT item FROM _risk WHERE section = 'quasi_identifier' AND scope = 'external_survey_2025'").fetchall()}
    assert listed == {"q_health", "q_hours", "q_weight"}, "none of them was declared a quasi-identifier"
    sizes = {combination: published.count(combination) for combination in published}
    [measured] = [t for t in result.risk.figures.tables if t.table == "external_survey_2025"]
    assert measured.units == len(published) and measured.sample_uniques == sum(1 for n in sizes.values() if n == 1)
    assert measured.expected_reidentifications == pytest.approx(sum(1 / sizes[c] for c in published))
    assert measured.reidentification_rate > result.risk.policy.risk.max_reidentification_rate, "beyond the policy: refused unless accepted"


@pytest.mark.parametrize(
    ("dataset", "words"),
    [
        ({"file": "s.csv", "sha256": "0" * 64, "id_column": "matricule", "columns": {"matricule": {"type": "string"}}}, "not a declared column"),
        ({"file": "s.csv", "sha256": "0" * 64, "id_column": "matricule", "columns": {"q": {"type": "integer", "values": [1, 2.5]}}}, "2.5 is not of type integer"),
        ({"file": "s.csv", "sha256": "0" * 64, "id_column": "matricule", "columns": {"q": {"type": "string", "values": ["very good"]}}}, "without spaces"),
        ({"file": "s.xlsx", "sha256": "0" * 64, "id_column": "matricule", "columns": {"q": {"type": "integer"}}}, "external.survey_2025.file"),
        ({"file": "s.csv", "sha256": "0" * 64, "id_column": "matricule", "columns": {"q": {"type": "integer", "quasi_identifier": False}}},
         "every column of the researchers' own file is a quasi-identifier"),
    ],
    ids=["id-declared", "value-type", "value-with-space", "not-csv-or-parquet", "column-declared-unknown-to-them"],
)
def test_a_bad_declaration_is_refused_with_the_approval(dataset, words, tmp_path):
    import yaml

    from lmdp_pipeline.projects.approval import ApprovalError, parse_approval
    from lmdp_pipeline.paths import PROJECT_ROOT

    spec = yaml.safe_load((PROJECT_ROOT / "sample_data" / "approvals" / f"{PROJECT}.yaml").read_text())
    spec["external"] = {SURVEY: dataset}
    path = tmp_path / f"{PROJECT}.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ApprovalError) as refused:
        parse_approval(path)
    assert any(words in p for p in refused.value.problems), refused.value.problems

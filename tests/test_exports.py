"""A project's exports, codebook and package, made from real builds of the example projects.

Each file is read back by another implementation (pandas' Stata reader, ReadStat
through pyreadstat, pyarrow, age through pyrage) and compared with the extract as
DuckDB reads it and with the contracts' code lists; hashes are recomputed with hashlib.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import secrets

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pyrage
import pyreadstat
import pytest
import yaml

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.exports import ExportError
from lmdp_pipeline.exports.package import Member, PackageError, open_package, write_package
from lmdp_pipeline.exports.publish import export_project
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.paths import PACKAGE_MANIFEST, PlatformPaths
from lmdp_pipeline.projects.lifecycle import build_project, retire_project

IDENTITY = pyrage.x25519.Identity.generate()
SECOND = pyrage.x25519.Identity.generate()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_home(small_home, folder, recipients: dict[str, list[str]]):
    """A home of its own over the small warehouse, with the example approvals copied (recipients added)."""
    folder.mkdir(parents=True, exist_ok=True)
    for zone in ("warehouse", "external"):
        (folder / zone).symlink_to(getattr(small_home, zone), target_is_directory=True)
    (folder / "approvals").mkdir()
    for path in small_home.approval_files():
        spec = yaml.safe_load(path.read_text())
        if recipients.get(spec["project"]):
            spec["recipients"] = recipients[spec["project"]]
        (folder / "approvals" / path.name).write_text(yaml.safe_dump(spec, sort_keys=False))
    return PlatformPaths(folder)


def build(paths, contracts, store, project):
    return build_project(paths, contracts, lambda: store, project, AuditLog(paths.audit))


@pytest.fixture(scope="module")
def store_key():
    return MasterKey(secrets.token_bytes(32), "test")


@pytest.fixture(scope="module")
def exported(small_home, tmp_path_factory, contracts, store_key):
    """P2026-001 (with two recipients) and P2026-002 (none), built and exported."""
    paths = make_home(small_home, tmp_path_factory.mktemp("exports-home"),
                      {"P2026-001": [str(IDENTITY.to_public()), str(SECOND.to_public())]})
    store = Keystore(paths.keys, store_key)
    results = {}
    for project in ("P2026-001", "P2026-002"):
        build(paths, contracts, store, project)
        results[project] = export_project(paths, contracts, project, AuditLog(paths.audit))
    return paths, results


def extract_frame(paths, project, table) -> pd.DataFrame:
    with duckdb.connect(str(paths.extract_file(project)), read_only=True) as con:
        return con.execute(f'SELECT * FROM "{table}"').df()


def approved_labels(contracts, register, variable, level) -> dict[str, str]:
    """The code list at the approved level, straight from the contract."""
    var = contracts[register].variable(variable)
    code_level = var.level(level).code_level
    return (var.codes.level(code_level) if code_level else var.codes.finest).labels


CODES = {  # register -> code column -> approved level, as the example approvals ask
    "individuals": {"i_sex": "sex", "i_citizenship": "group", "i_residence": "canton"},
    "jobs": {"j_isco": "2digit"},
    "absences": {"ab_reason": "reason"},
}
P1_TABLES = ["individuals", "jobs", "absences", "external_survey_2025"]


def test_every_table_in_every_format(exported):
    paths, results = exported
    names = sorted(p.name for p in paths.exports_dir("P2026-001").iterdir())
    assert names == sorted([f"{t}.{f}" for t in P1_TABLES for f in ("dta", "sav", "parquet")]
                           + ["codebook.html", "codebook.md", "value_labels.csv"])
    assert {t.table: t.rows for t in results["P2026-001"].tables} == {
        t: len(extract_frame(paths, "P2026-001", t)) for t in P1_TABLES}


@pytest.mark.parametrize("table", ["individuals", "jobs", "absences"])
def test_stata_values_and_labels_are_the_extracts(exported, contracts, table):
    paths, _ = exported
    extract = extract_frame(paths, "P2026-001", table)
    path = paths.exports_dir("P2026-001") / f"{table}.dta"
    stata = pd.read_stata(path, convert_categoricals=False, convert_dates=True)
    with pd.io.stata.StataReader(path) as reader:
        value_labels, variable_labels = reader.value_labels(), reader.variable_labels()
    assert len(stata) == len(extract) and list(stata.columns) == list(extract.columns)
    for column in extract.columns:
        if column in CODES[table]:
            labels = approved_labels(contracts, table, column, CODES[table][column])
            shown = [None if pd.isna(n) else value_labels[column][int(n)] for n in stata[column]]
            assert shown == [None if pd.isna(c) else labels[c] for c in extract[column]], column
        elif column.endswith("_id"):
            assert stata[column].tolist() == extract[column].tolist()
        elif extract[column].dtype.kind == "M" or column in ("ab_start", "ab_end"):
            assert stata[column].tolist() == pd.to_datetime(extract[column]).tolist(), column
        elif extract[column].dtype.kind in "iuf":
            assert stata[column].tolist() == extract[column].tolist(), column
        else:  # months: text YYYY-MM in the extract, %tm in Stata
            expected = [pd.NaT if pd.isna(m) else pd.Timestamp(f"{m}-01") for m in extract[column]]
            assert stata[column].tolist() == expected, column
    assert variable_labels["person_id"] == "Person (pseudonym)"
    if table == "individuals":
        assert variable_labels["i_birth_date"] == "Date of birth (year)" and variable_labels["i_sex"] == "Sex"
        assert variable_labels["i_residence"] == "Place of residence (canton)"
    if table == "jobs":
        assert variable_labels["employer_id"] == "Employer (pseudonym)" and stata["j_end"].isna().any(), "missing dates stay missing"


@pytest.mark.parametrize("table", ["individuals", "jobs", "absences"])
def test_spss_values_and_labels_are_the_extracts(exported, contracts, table):
    paths, _ = exported
    extract = extract_frame(paths, "P2026-001", table)
    spss, meta = pyreadstat.read_sav(paths.exports_dir("P2026-001") / f"{table}.sav", extra_date_formats=["MOYR"])
    assert list(spss.columns) == list(extract.columns) and len(spss) == len(extract)
    for column, level in CODES[table].items():
        labels = approved_labels(contracts, table, column, level)
        shown = [None if pd.isna(n) else meta.variable_value_labels[column][n] for n in spss[column]]
        assert shown == [None if pd.isna(c) else labels[c] for c in extract[column]], column
    month = [c for c in extract.columns if c.endswith("_month")][0]
    assert spss[month].tolist() == [dt.date.fromisoformat(f"{m}-01") for m in extract[month]]
    assert spss["person_id"].tolist() == extract["person_id"].tolist()
    assert meta.column_names_to_labels["person_id"] == "Person (pseudonym)"


def test_parquet_is_the_extract_with_codes_as_dictionaries(exported, contracts):
    paths, _ = exported
    for table in ("individuals", "jobs", "absences"):
        extract = extract_frame(paths, "P2026-001", table)
        parquet = pq.read_table(paths.exports_dir("P2026-001") / f"{table}.parquet")
        assert parquet.column_names == list(extract.columns)
        for column in extract.columns:
            values = parquet.column(column).to_pylist()
            expected = [None if pd.isna(v) else (v.date() if isinstance(v, pd.Timestamp) else v) for v in extract[column]]
            assert values == expected, column
        for column, level in CODES[table].items():
            field = parquet.schema.field(column)
            labels = approved_labels(contracts, table, column, level)
            assert field.type.value_type == "string" and json.loads(field.metadata[b"labels"]) == labels
            assert list(parquet.to_pandas()[column].cat.categories) == list(labels), "every code of the level is a factor level"


def test_value_labels_csv_maps_every_number_to_its_code(exported, contracts):
    paths, _ = exported
    rows = list(csv.DictReader((paths.exports_dir("P2026-001") / "value_labels.csv").open(encoding="utf-8")))
    stata = pd.read_stata(paths.exports_dir("P2026-001") / "individuals.dta", convert_categoricals=False)
    extract = extract_frame(paths, "P2026-001", "individuals")
    for column in CODES["individuals"]:
        code_of = {int(r["number"]): r["code"] for r in rows if r["table"] == "individuals" and r["variable"] == column}
        assert [code_of[int(n)] for n in stata[column]] == extract[column].tolist()
    sex = [(r["number"], r["code"], r["label"]) for r in rows if r["variable"] == "i_sex"]
    assert sex == [("1", "1", "Male"), ("2", "2", "Female")]


def test_the_codebook_says_what_the_project_received(exported, contracts):
    paths, results = exported
    folder = paths.exports_dir("P2026-001")
    html, md = (folder / "codebook.html").read_text(), (folder / "codebook.md").read_text()
    approval = yaml.safe_load(paths.approval_file("P2026-001").read_text())
    with duckdb.connect(str(paths.extract_file("P2026-001")), read_only=True) as con:
        manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
        lineage = con.execute("SELECT source, transformations FROM _lineage").fetchall()
    for text in (html, md):
        for table in P1_TABLES:
            assert f"{len(extract_frame(paths, 'P2026-001', table)):,}" in text
        for justification in approval["justifications"].values():
            assert justification in text
        for month in json.loads(manifest["table_months"])["individuals"]:
            assert month in text
        assert manifest["period"] in text and "Capellen" in text and "Female" in text
        assert all(source in text for source, _ in lineage)
        assert f"{sha256(paths.extract_file('P2026-001'))}" in text
        for path in folder.iterdir():
            if not path.name.startswith("codebook"):
                assert sha256(path) in text and f"{path.stat().st_size:,}" in text, path.name
    assert "<code>" in html and "&lt;" not in md


def test_the_html_codebook_shows_markup_in_labels_as_text(exported):
    from lmdp_pipeline.exports.codebook import render_codebook
    from lmdp_pipeline.projects.approval import parse_approval

    paths, _ = exported
    approval = parse_approval(paths.approval_file("P2026-002"))
    hostile = approval.model_copy(update={"title": "<script>alert(1)</script> & co"})
    with duckdb.connect(str(paths.extract_file("P2026-002")), read_only=True) as con:
        manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
    pages = render_codebook(hostile, manifest, [], [])
    assert "<script>" not in pages["html"] and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in pages["html"]
    assert "<script>alert(1)</script> & co" in pages["md"]


def test_the_package_opens_with_the_recipients_identity_and_matches_the_files(exported, tmp_path):
    paths, results = exported
    identity = tmp_path / "identity.txt"
    identity.write_text(f"# created: test\n{SECOND}\n")
    folder = open_package(paths.package_file("P2026-001"), identity, tmp_path / "opened")
    assert (folder / "P2026-001.duckdb").read_bytes() == paths.extract_file("P2026-001").read_bytes()
    exports = paths.exports_dir("P2026-001")
    assert sorted(p.name for p in (folder / "exports").iterdir()) == sorted(p.name for p in exports.iterdir())
    for path in exports.iterdir():
        assert (folder / "exports" / path.name).read_bytes() == path.read_bytes()
    listed = dict(reversed(line.split("  ")) for line in (folder / PACKAGE_MANIFEST).read_text().splitlines())
    assert listed == {str(p.relative_to(folder)): sha256(p) for p in folder.rglob("*") if p.is_file() and p.name != PACKAGE_MANIFEST}


def test_a_wrong_identity_fails_clearly(exported, tmp_path):
    paths, _ = exported
    identity = tmp_path / "other.txt"
    identity.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    with pytest.raises(PackageError, match="not encrypted to this identity"):
        open_package(paths.package_file("P2026-001"), identity, tmp_path / "opened")
    assert not any(p.is_file() for p in (tmp_path / "opened").rglob("*")), "nothing unpacked"


def test_a_file_that_changes_while_it_is_packaged_stops_the_package(tmp_path):
    source = tmp_path / "individuals.dta"
    source.write_bytes(b"the file as it is now")
    member = Member("exports/individuals.dta", source, hashlib.sha256(b"the file as it was hashed").hexdigest())
    target, partial = tmp_path / "P.tar.age", tmp_path / ".P.x.tar.age.partial"
    with pytest.raises(PackageError, match="changed while it was packaged"):
        write_package(target, partial, "P", [member], [IDENTITY.to_public()], 0)
    assert not target.exists() and not partial.exists()


def test_no_plaintext_is_left_beside_the_package(exported):
    paths, _ = exported
    assert [p.name for p in paths.packages.iterdir()] == ["P2026-001.tar.age"]
    sealed = paths.package_file("P2026-001").read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert b"SHA256SUMS" not in sealed and b"ustar" not in sealed and b"Return to work" not in sealed
    assert not list(paths.home.rglob("*.tar")) and not paths.export_leftovers("P2026-001")
    assert oct(paths.package_file("P2026-001").stat().st_mode & 0o777) == "0o600"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in paths.exports_dir("P2026-001").iterdir())


def test_a_project_without_recipients_gets_no_package_and_loses_an_old_one(exported, contracts):
    paths, results = exported
    assert results["P2026-002"].package is None and "no recipients" in results["P2026-002"].notes[0]
    stale = paths.package_file("P2026-002")
    stale.write_bytes(b"an earlier package")
    again = export_project(paths, contracts, "P2026-002", AuditLog(paths.audit))
    assert not stale.exists() and "deleted" in again.notes[1]
    assert [e for e in AuditLog(paths.audit).entries() if e["event"] == "package_deleted"][-1]["project"] == "P2026-002"


def test_exports_are_the_same_bytes_for_the_same_extract(exported, contracts):
    paths, _ = exported
    folder = paths.exports_dir("P2026-002")
    before = {p.name: sha256(p) for p in folder.iterdir()}
    export_project(paths, contracts, "P2026-002", AuditLog(paths.audit))
    assert {p.name: sha256(p) for p in folder.iterdir()} == before


def test_the_extract_is_written_for_duckdb_1_4(exported):
    paths, _ = exported
    with duckdb.connect(str(paths.extract_file("P2026-001")), read_only=True) as con:
        [(tags,)] = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
        manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
    assert tags["storage_version"] == "v1.4.0+" == manifest["storage_version"]


# --- refusals and failures: the previous exports stay ------------------------------------------


@pytest.fixture
def own(small_home, tmp_path, contracts, store_key):
    """A fresh home with P2026-002 built and exported, for tests that change things."""
    paths = make_home(small_home, tmp_path / "home", {"P2026-002": [str(IDENTITY.to_public())]})
    build(paths, contracts, Keystore(paths.keys, store_key), "P2026-002")
    export_project(paths, contracts, "P2026-002", AuditLog(paths.audit))
    return paths


def snapshot(paths, project):
    folder = paths.exports_dir(project)
    files = {p.name: sha256(p) for p in folder.iterdir()}
    return files, sha256(paths.package_file(project))


def test_a_failed_export_keeps_the_previous_exports_and_package(own, contracts, monkeypatch):
    from lmdp_pipeline.exports import publish

    before = snapshot(own, "P2026-002")
    real, calls = publish.export_table, []

    def fails_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ExportError("planted failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(publish, "export_table", fails_on_the_second)
    with pytest.raises(ExportError, match="planted failure"):
        export_project(own, contracts, "P2026-002", AuditLog(own.audit))
    assert snapshot(own, "P2026-002") == before and not own.export_leftovers("P2026-002")
    assert [e for e in AuditLog(own.audit).entries()][-1]["event"] == "exports_refused"


def test_a_bad_recipient_is_refused_naming_the_field(own, contracts):
    before = snapshot(own, "P2026-002")
    path = own.approval_file("P2026-002")
    spec = yaml.safe_load(path.read_text())
    spec["recipients"] = ["age1" + "q" * 58]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(PackageError, match=r"field recipients\[0\].*not an age X25519 public key"):
        export_project(own, contracts, "P2026-002", AuditLog(own.audit))
    assert snapshot(own, "P2026-002") == before


def test_an_approval_changed_since_the_build_is_refused(own, contracts):
    path = own.approval_file("P2026-002")
    path.write_text(path.read_text().replace("cb_amount: default", "cb_amount: band_500"))
    with pytest.raises(ExportError, match="changed after its extract was built"):
        export_project(own, contracts, "P2026-002", AuditLog(own.audit))


def test_leftovers_of_a_killed_export_are_removed(own, contracts):
    (own.exports_candidate("P2026-002", "dead")).mkdir()
    (own.exports_candidate("P2026-002", "dead") / "individuals.dta").write_bytes(b"half")
    own.package_candidate("P2026-002", "dead").write_bytes(b"half")
    assert len(own.export_leftovers("P2026-002")) == 2
    export_project(own, contracts, "P2026-002", AuditLog(own.audit))
    assert not own.export_leftovers("P2026-002")


def test_retirement_deletes_the_exports_and_the_package(own, contracts):
    own.exports_candidate("P2026-002", "dead").mkdir()
    retire_project(own, "P2026-002", "revoked", True, AuditLog(own.audit))
    assert not own.exports_dir("P2026-002").exists() and not own.package_file("P2026-002").exists()
    assert not own.export_leftovers("P2026-002") and not own.extract_file("P2026-002").exists()
    with pytest.raises(ExportError, match="is retired"):
        export_project(own, contracts, "P2026-002", AuditLog(own.audit))


def test_an_export_waits_for_a_build_or_retirement_holding_the_project(own, contracts):
    import threading

    from lmdp_pipeline.locks import held

    waiting, done = threading.Event(), []
    before = snapshot(own, "P2026-002")
    with held(own.project_lock("P2026-002"), "a build"):
        worker = threading.Thread(target=lambda: done.append(
            export_project(own, contracts, "P2026-002", AuditLog(own.audit), on_wait=waiting.set)))
        worker.start()
        assert waiting.wait(10), "the export saw the lock taken"
        assert snapshot(own, "P2026-002") == before and not done
    worker.join(60)
    assert done and done[0].package == own.package_file("P2026-002")


def test_an_expired_approval_exports_nothing(own, contracts):
    """The day after ``expires_on`` (the approval is valid through it), before the expiry sensor has retired the project:
    the extract and the approval are unchanged, yet nothing may be exported."""
    before = snapshot(own, "P2026-002")
    expires = yaml.safe_load(own.approval_file("P2026-002").read_text())["expires_on"]
    with pytest.raises(ExportError, match="revoked or expired"):
        export_project(own, contracts, "P2026-002", AuditLog(own.audit), today=expires + dt.timedelta(days=1))
    assert snapshot(own, "P2026-002") == before
    assert AuditLog(own.audit).entries()[-1]["event"] == "exports_refused"

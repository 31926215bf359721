"""Ingestion: good deliveries reach the warehouse, bad ones are refused, quarantined and lose nothing."""

from __future__ import annotations

import csv
import io
import shutil
import stat

import duckdb
import pytest

from stdnum import luhn

from lmdp_pipeline.ingest import DeliveryRefused, ingest_delivery
from lmdp_pipeline.paths import PlatformPaths

from .conftest import WAREHOUSE_MONTHS
from .ingest_helpers import snapshot

MONTHS = WAREHOUSE_MONTHS[:2]


@pytest.fixture
def paths(small_home, tmp_path) -> PlatformPaths:
    """A private copy of the shared ingested home (tests here break its deliveries)."""
    home = tmp_path / "home"
    shutil.copytree(small_home.home, home)
    return PlatformPaths(home)


def rows_of(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def write_rows(path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def set_value(path, column: str, row: int, value: str) -> None:
    """Change one cell: ``row`` counts data rows from 1."""
    rows = rows_of(path)
    rows[row][rows[0].index(column)] = value
    write_rows(path, rows)


def other_employer_number() -> str:
    """A well-formed employer number (valid Luhn digit) that no enterprise has."""
    payload = "1999299999"
    return payload + luhn.calc_check_digit(payload)


def break_check_digit(path, row: int) -> None:
    rows = rows_of(path)
    value = rows[row][0]
    rows[row][0] = value[:12] + str((int(value[12]) + 1) % 10)
    write_rows(path, rows)


def text_edit(old: str, new: str, count: int = -1):
    def edit(path):
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, count), encoding="utf-8")
    return edit


def bytes_edit(transform):
    def edit(path):
        path.write_bytes(transform(path.read_bytes()))
    return edit


def rows_edit(transform):
    def edit(path):
        write_rows(path, transform(rows_of(path)))
    return edit


def cell(column: str, row: int, value: str):
    return lambda path: set_value(path, column, row, value)


def headerless_but(path, known: str) -> None:
    """The header line replaced by the first data row, one field of which happens to be a column name."""
    rows = rows_of(path)
    first = rows[1][:]
    first[rows[0].index(known)] = known
    write_rows(path, [first] + rows[2:])


def other_register(path):
    shutil.copyfile(path.parent.parent / "affiliation" / path.name.replace("individuals", "affiliation"), path)


MALFORMED = [
    # (id, register, edit, column or None, words the message must contain)
    ("missing-column", "individuals", rows_edit(lambda r: [row[:3] + row[4:] for row in r]), "i_sex", "missing column"),
    ("extra-column", "individuals", rows_edit(lambda r: [row + (["i_shoe_size"] if i == 0 else ["42"]) for i, row in enumerate(r)]), "#11", "unexpected column"),
    ("renamed-column", "individuals", text_edit("i_sex", "i_gender", 1), "i_sex", "missing column"),
    ("wrong-delimiter", "jobs", text_edit(",", ";"), None, "wrong delimiter"),
    ("latin-1", "individuals", bytes_edit(lambda b: b.decode("utf-8").encode("latin-1", errors="replace")), None, "not valid UTF-8"),
    ("byte-order-mark", "jobs", bytes_edit(lambda b: b"\xef\xbb\xbf" + b), None, "byte-order mark"),
    ("crlf", "jobs", bytes_edit(lambda b: b.replace(b"\n", b"\r\n")), None, "CR LF"),
    ("empty-file", "jobs", bytes_edit(lambda b: b""), None, "empty file"),
    ("header-only", "jobs", bytes_edit(lambda b: b.split(b"\n", 1)[0] + b"\n"), None, "at least 1 data row"),
    ("truncated-last-line", "jobs", bytes_edit(lambda b: b[: b.rstrip(b"\n").rfind(b",") - 3]), None, "fewer columns"),
    ("text-in-number", "jobs", cell("j_hours", 3, "forty"), "j_hours", "type decimal"),
    ("impossible-date", "individuals", cell("i_birth_date", 2, "1980-02-30"), "i_birth_date", "type date"),
    ("another-month", "individuals", cell("i_month", 5, "2024-01"), "i_month", "month is 2024-02"),
    ("bad-check-digit", "individuals", lambda p: break_check_digit(p, 4), "i_matricule", "check digits"),
    ("matricule-format", "jobs", cell("j_matricule", 2, "189312010573"), "j_matricule", "matricule format"),
    ("duplicate-key", "jobs", rows_edit(lambda r: r + [r[1]]), None, "unique key"),
    ("code-outside-list", "individuals", cell("i_citizenship", 7, "ZZ"), "i_citizenship", "code list countries"),
    ("broken-reference", "jobs", cell("j_employer", 2, other_employer_number()), "j_employer", "exists in enterprises"),
    ("another-registers-file", "individuals", other_register, None, "its columns start with a_, not 'i_': is this another register's file?"),
    ("headerless", "individuals", bytes_edit(lambda b: b.split(b"\n", 1)[1]), None, "does the file lack its header line?"),
    ("headerless-with-one-known-column", "jobs", lambda p: headerless_but(p, "j_month"), "j_matricule", "missing column"),
    ("stray-carriage-return", "jobs", bytes_edit(lambda b: b.replace(b",permanent,", b",perma\rnent,", 1)), None, "carriage return inside the file"),
    ("huge-field", "individuals", cell("i_street", 3, "x" * 100_000), None, "line longer than"),
    ("out-of-range", "jobs", cell("j_hours", 4, "99.00"), "j_hours", "between 1 and 60"),
    ("required-missing", "individuals", cell("i_sex", 6, ""), "i_sex", "required"),
    ("bad-quoting", "jobs", text_edit(",permanent,", ',"perm"anent,', 1), None, "badly quoted"),
    ("duplicate-header", "jobs", text_edit("j_contract", "j_hours", 1), "j_hours", "duplicate column"),
]


@pytest.mark.parametrize(("register", "edit", "column", "words"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_delivery_is_refused_and_loses_nothing(paths, contracts, register, edit, column, words):
    month = MONTHS[1]
    delivery = paths.delivery_file(register, month)
    identifiers = {row[0] for row in rows_of(delivery)[1:] if row}
    warehouse_before = snapshot(paths.warehouse)
    edit(delivery)
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(paths, contracts, register, month)
    message = str(refused.value)
    assert delivery.name in message
    assert words in message
    if column:
        assert f"column {column}" in message
    assert snapshot(paths.warehouse) == warehouse_before, "the last good state stays intact"
    report = refused.value.quarantine_report
    assert report and report.endswith("report.md")
    text = open(report, encoding="utf-8").read() + open(report.replace("report.md", "report.json"), encoding="utf-8").read()
    for identifier in identifiers:  # no matricule in the message or the reports
        assert identifier not in message and identifier not in text


def test_row_numbers_point_at_the_broken_rows(paths, contracts):
    delivery = paths.delivery_file("individuals", MONTHS[1])
    break_check_digit(delivery, 4)
    break_check_digit(delivery, 9)
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(paths, contracts, "individuals", MONTHS[1])
    finding = next(f for f in refused.value.report.errors if f.rule == "matricule check digits")
    assert finding.rows == 2 and finding.first_rows == (4, 9)


def test_a_line_with_two_extra_fields_counts_once_and_rows_read_are_the_file_rows(paths, contracts):
    delivery = paths.delivery_file("jobs", MONTHS[1])
    rows = rows_of(delivery)
    data = [r for r in rows[1:] if r]
    rows[10] = rows[10] + ["x", "y"]  # data row 10: DuckDB records one error per extra field
    rows[20] = rows[20] + ["z"]
    write_rows(delivery, rows)
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(paths, contracts, "jobs", MONTHS[1])
    [finding] = [f for f in refused.value.report.errors if "more columns" in f.rule]
    assert (finding.rows, finding.first_rows) == (2, (10, 20))
    assert refused.value.report.rows_read == len(data)


def test_a_refused_header_says_the_rows_were_not_read(paths, contracts):
    delivery = paths.delivery_file("jobs", MONTHS[1])
    text_edit("j_wage", "j_salary", 1)(delivery)
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(paths, contracts, "jobs", MONTHS[1])
    report = open(refused.value.quarantine_report, encoding="utf-8").read()
    assert "data rows: not read (the file's structure was refused first)" in report and "data rows read: 0" not in report
    assert "| error | structure | j_wage | missing column | — |" in report


def test_quarantine_keeps_the_file_and_a_readable_report(paths, contracts):
    delivery = paths.delivery_file("jobs", MONTHS[1])
    set_value(delivery, "j_hours", 3, "forty")
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(paths, contracts, "jobs", MONTHS[1])
    folder = paths.quarantine / "jobs"
    [kept] = list(folder.iterdir())
    assert (kept / delivery.name).read_bytes() == delivery.read_bytes()
    assert stat.S_IMODE((kept / delivery.name).stat().st_mode) == 0o600
    report = (kept / "report.md").read_text(encoding="utf-8")
    assert "REFUSED" in report and "| error | values | j_hours | type decimal | 1 | 3 |" in report
    assert refused.value.report.sha256[:12] in kept.name


def test_good_redelivery_replaces_only_its_month(paths, contracts):
    other_month = snapshot(paths.warehouse / "jobs")
    delivery = paths.delivery_file("jobs", MONTHS[1])
    rows = rows_of(delivery)
    write_rows(delivery, rows[:-1])  # the source withdrew one spell
    result = ingest_delivery(paths, contracts, "jobs", MONTHS[1])
    assert result.rows_stored == len(rows) - 2
    after = snapshot(paths.warehouse / "jobs")
    assert after[f"jobs_{MONTHS[0]}.parquet"] == other_month[f"jobs_{MONTHS[0]}.parquet"]
    assert after[f"jobs_{MONTHS[1]}.parquet"] != other_month[f"jobs_{MONTHS[1]}.parquet"]
    assert not [p for p in (paths.warehouse / "jobs").iterdir() if p.name.startswith(".")], "no partial file left"


def test_warehouse_is_typed_and_holds_no_direct_identifier(paths, contracts):
    con = duckdb.connect()
    for contract in contracts:
        path = paths.warehouse / contract.register / f"{contract.register}_{MONTHS[0]}.parquet"
        columns = dict(con.execute(f"SELECT name, type FROM parquet_schema('{path}') WHERE name <> 'duckdb_schema'").fetchall())
        assert list(columns) == [v.name for v in contract.variables]
        for dropped in contract.direct_identifiers:
            assert dropped.name not in columns
    types = dict(con.execute(
        f"DESCRIBE SELECT * FROM '{paths.warehouse}/jobs/jobs_{MONTHS[0]}.parquet'"
    ).fetchall()[i][:2] for i in range(9))
    assert types["j_start"] == "DATE" and types["j_wage"] == "DECIMAL(18,2)" and types["j_matricule"] == "VARCHAR"
    leading = con.execute(f"SELECT count(*) FROM '{paths.warehouse}/jobs/jobs_{MONTHS[0]}.parquet' WHERE length(j_matricule) <> 13").fetchone()[0]
    assert leading == 0, "identifiers keep every digit"


def test_volume_drift_is_a_warning_not_a_refusal(paths, contracts):
    delivery = paths.delivery_file("individuals", MONTHS[1])
    rows = rows_of(delivery)
    write_rows(delivery, rows[: int(len(rows) * 0.8)])
    result = ingest_delivery(paths, contracts, "individuals", MONTHS[1])
    [warning] = result.report.findings
    assert warning.check == "volume" and warning.severity == "warn"


def test_an_empty_month_is_judged_by_its_volume_rule(paths, contracts):
    """Reclassifications may have a month without a decision (no minimum, a change of 100% allowed): the sample's
    empty February after a January with a decision passes. Individuals, whose rule allows 5%, get the volume
    warning beside the refusal of a month with no row."""
    with duckdb.connect() as con:
        january = con.execute(f"SELECT count(*) FROM '{paths.warehouse}/reclassifications/reclassifications_{MONTHS[0]}.parquet'").fetchone()[0]
    assert january > 0 and len(rows_of(paths.delivery_file("reclassifications", MONTHS[1]))) == 1
    accepted = ingest_delivery(paths, contracts, "reclassifications", MONTHS[1])
    assert accepted.rows_stored == 0 and accepted.report.findings == []

    delivery = paths.delivery_file("individuals", MONTHS[1])
    write_rows(delivery, rows_of(delivery)[:1])
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(paths, contracts, "individuals", MONTHS[1])
    assert sorted(f.check for f in refused.value.report.findings) == ["structure", "volume"]


def test_the_volume_rule_counts_the_whole_delivery_when_it_is_validated_in_chunks(paths, contracts, monkeypatch):
    """The rule runs inside the chunked validation: it must judge the month's rows, never one chunk's."""
    from lmdp_pipeline.ingest import validate

    monkeypatch.setattr(validate, "CHUNK_ROWS", 50)
    delivery = paths.delivery_file("individuals", MONTHS[1])
    rows = rows_of(delivery)
    assert len(rows) > 4 * 50, "the delivery must span several chunks"
    unchanged = ingest_delivery(paths, contracts, "individuals", MONTHS[1])
    assert [f for f in unchanged.report.findings if f.check == "volume"] == []
    write_rows(delivery, rows[: int(len(rows) * 0.8)])
    dropped = ingest_delivery(paths, contracts, "individuals", MONTHS[1])
    assert [f.check for f in dropped.report.findings] == ["volume"]


def test_a_reference_to_a_month_not_ingested_is_refused(paths, contracts):
    shutil.rmtree(paths.warehouse / "enterprises")
    with pytest.raises(DeliveryRefused, match="enterprises 2024-02 is not in the warehouse yet: ingest it first"):
        ingest_delivery(paths, contracts, "jobs", MONTHS[1])


def test_a_missing_delivery_says_where_it_was_expected(paths, contracts):
    with pytest.raises(FileNotFoundError, match=r"no delivery for jobs 2024-09: expected .*jobs_2024-09\.csv"):
        ingest_delivery(paths, contracts, "jobs", "2024-09")


def test_a_killed_ingestions_leftovers_are_removed_by_the_next_one_of_the_month(paths, contracts):
    """A refresh killed with SIGKILL leaves identified data behind: the next ingestion of that month removes it."""
    from lmdp_pipeline.ingest import ingest_label
    from lmdp_pipeline.paths import spill_dir, warehouse_candidate

    month, other = MONTHS[1], MONTHS[0]
    candidate = warehouse_candidate(paths.warehouse, "jobs", month, "dead")
    candidate.write_bytes(b"half a Parquet file of matricules")
    spill = spill_dir(paths.warehouse, ingest_label("jobs", month), "dead")
    spill.mkdir(parents=True)
    kept = [warehouse_candidate(paths.warehouse, "jobs", other, "running"), spill_dir(paths.warehouse, ingest_label("jobs", other), "running")]
    kept[0].write_bytes(b"another month's ingestion, running")
    kept[1].mkdir(parents=True)
    ingest_delivery(paths, contracts, "jobs", month)
    assert not candidate.exists() and not spill.exists()
    assert all(p.exists() for p in kept), "another month's files are not this ingestion's to remove"

"""The Stata, SPSS and Parquet writers on a hand-made table, read back by other implementations.

Every expected value here is written out by hand (or computed with the standard
library), and the files are read by pandas (its own Stata reader), pyreadstat (the
ReadStat C library) and pyarrow: none of them shares code with the writers.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from lmdp_pipeline.exports import ExportError
from lmdp_pipeline.exports.columns import ExportColumn, Kind, code_numbers
from lmdp_pipeline.exports.names import SPSS_NAMES, STATA_NAMES, fit, spss_short_names
from lmdp_pipeline.exports.tables import BATCH_ROWS, export_table

LONG_A = "survey_question_about_working_time_in_the_first_job_a"
LONG_B = "survey_question_about_working_time_in_the_first_job_b"
COLUMNS = [
    ExportColumn("person_id", "Person (pseudonym)", Kind.text, "pseudonym", "who"),
    ExportColumn("city", "Städte & <Orte>", Kind.text, "as declared", "free text"),
    ExportColumn("status", "Status", Kind.code, "status", "a code",
                 {"employee": "Employee", "self": "Self-employed (indépendant)", "none": "Not affiliated"},
                 {"employee": 1, "self": 2, "none": 3}),
    ExportColumn("canton", "Canton", Kind.code, "canton", "a numeric code", {"01": "Capellen", "12": "Wiltz"}, {"01": 1, "12": 12}),
    ExportColumn("day", "Day", Kind.date, "day", "a date"),
    ExportColumn("month", "Month", Kind.month, "month", "a month"),
    ExportColumn("small", "Small integer", Kind.number, "exact", "fits a byte"),
    ExportColumn("big", "Big integer", Kind.number, "exact", "needs a long"),
    ExportColumn("huge", "Huge integer", Kind.number, "exact", "needs a double"),
    ExportColumn("amount", "Amount", Kind.number, "exact", "a decimal"),
    ExportColumn(LONG_A, "First long name", Kind.number, "exact", "cut to 32 for Stata"),
    ExportColumn(LONG_B, "Second long name", Kind.number, "exact", "cut to 32 for Stata, without a clash"),
    ExportColumn("if", "A Stata word", Kind.number, "exact", "renamed for Stata"),
    ExportColumn("BY", "An SPSS word", Kind.number, "exact", "renamed for SPSS"),
]
ROWS = [
    ("00000000000000aa", "Zürich", "self", "01", dt.date(2024, 2, 29), "2024-01", 1, 2_000_000, 5_000_000_000, 12.5, 1, 2, 3, 4),
    ("00000000000000bb", None, "none", "12", dt.date(1959, 12, 31), "1960-01", -127, -40_000, -1, 0.25, 5, 6, 7, 8),
    ("00000000000000cc", "日本", None, None, None, None, None, None, None, None, None, None, None, None),
]


def make_table(con, rows=ROWS, table="t"):
    con.execute(f"""CREATE TABLE {table} (person_id VARCHAR, city VARCHAR, status VARCHAR, canton VARCHAR, day DATE, month VARCHAR,
        small BIGINT, big BIGINT, huge BIGINT, amount DECIMAL(18, 2), "{LONG_A}" BIGINT, "{LONG_B}" BIGINT, "if" BIGINT, "BY" BIGINT)""")
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join(['?'] * 14)})", rows)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    with duckdb.connect() as con:
        make_table(con)
        result = export_table(con, "t", COLUMNS, folder, "P-1 t: test", dt.datetime(2026, 11, 30, 7, 5), {"project": "P-1"})
    return result


def test_names_fit_each_format_without_collisions(written):
    stata = [v.name for v in written.stata]
    assert stata[10:] == [LONG_A[:32], LONG_A[:30] + "_2", "if_", "BY"]
    spss = [v.name for v in written.spss]
    assert spss[10:] == [LONG_A, LONG_B, "if", "BY_"]
    assert len({s.upper() for s in spss_short_names(spss)}) == len(spss)
    assert all(len(s) <= 8 for s in spss_short_names(spss))
    assert STATA_NAMES.names(["x", "x_2", "X"]) == {"x": "x", "x_2": "x_2", "X": "X"}, "Stata tells case apart"
    assert SPSS_NAMES.names(["q_Health", "q_health"]) == {"q_Health": "q_Health", "q_health": "q_health_2"}, "SPSS does not"


def test_code_numbers():
    assert code_numbers(["1", "2"]) == {"1": 1, "2": 2}
    assert code_numbers(["01", "12"]) == {"01": 1, "12": 12}
    assert code_numbers(["1", "01"]) == {"1": 1, "01": 2}, "two codes sharing a number are numbered instead"
    assert code_numbers(["b", "a"]) == {"b": 1, "a": 2}
    assert code_numbers(["9999999999"]) == {"9999999999": 1}, "too large for a Stata long"


def test_fit_never_cuts_inside_a_character():
    assert fit("é" * 100, 11) == "éééé…" and len(fit("é" * 100, 11).encode()) <= 11
    assert fit("short", 80) == "short"


def test_stata_file_read_by_pandas(written):
    path = written.files["dta"]
    frame = pd.read_stata(path, convert_categoricals=False)
    assert list(frame["person_id"]) == ["00000000000000aa", "00000000000000bb", "00000000000000cc"]
    assert list(frame["city"]) == ["Zürich", "", "日本"]
    assert frame["status"].tolist()[:2] == [2, 3] and pd.isna(frame["status"][2])
    assert frame["canton"].tolist()[:2] == [1, 12]
    assert frame["day"].tolist()[:2] == [pd.Timestamp("2024-02-29"), pd.Timestamp("1959-12-31")] and pd.isna(frame["day"][2])
    assert frame["month"].tolist()[:2] == [pd.Timestamp("2024-01-01"), pd.Timestamp("1960-01-01")]
    assert frame["small"].tolist()[:2] == [1, -127] and frame["small"].dtype.name in ("int8", "float64")
    assert frame["big"].tolist()[:2] == [2_000_000, -40_000]
    assert frame["huge"].tolist()[:2] == [5_000_000_000, -1]
    assert frame["amount"].tolist()[:2] == [12.5, 0.25]
    assert frame[LONG_A[:30] + "_2"].tolist()[:2] == [2, 6]
    with pd.io.stata.StataReader(path) as reader:
        labels = reader.variable_labels()
        value_labels = reader.value_labels()
        assert reader.data_label == "P-1 t: test"
    assert labels["city"] == "Städte & <Orte>" and labels[LONG_A[:32]] == "First long name"
    assert value_labels["status"] == {1: "Employee", 2: "Self-employed (indépendant)", 3: "Not affiliated"}
    assert value_labels["canton"] == {1: "Capellen", 12: "Wiltz"}
    assert path.read_bytes()[:60] == b"<stata_dta><header><release>118</release><byteorder>LSF</byteorder>"[:60]


def test_stata_file_read_by_readstat(written):
    frame, meta = pyreadstat.read_dta(written.files["dta"])
    assert meta.number_rows == 3 and meta.column_names[12] == "if_"
    assert meta.original_variable_types["person_id"] == "%-16s"
    assert meta.original_variable_types["day"] == "%td" and meta.original_variable_types["month"] == "%tm"
    assert meta.readstat_variable_types["small"] == "int8" and meta.readstat_variable_types["big"] == "int32"
    assert meta.readstat_variable_types["huge"] == "double"
    assert meta.variable_value_labels["status"] == {1: "Employee", 2: "Self-employed (indépendant)", 3: "Not affiliated"}
    assert frame["day"].tolist()[0] == dt.date(2024, 2, 29)


def test_spss_file_read_by_readstat(written):
    frame, meta = pyreadstat.read_sav(written.files["sav"], extra_date_formats=["MOYR"])
    assert meta.number_rows == 3 and meta.file_encoding == "UTF-8"
    assert meta.column_names[10:] == [LONG_A, LONG_B, "if", "BY_"]
    assert list(frame["person_id"]) == ["00000000000000aa", "00000000000000bb", "00000000000000cc"]
    assert list(frame["city"]) == ["Zürich", "", "日本"]
    assert frame["status"].tolist()[:2] == [2.0, 3.0] and pd.isna(frame["status"][2])
    assert frame["day"].tolist()[:2] == [dt.date(2024, 2, 29), dt.date(1959, 12, 31)] and pd.isna(frame["day"][2])
    assert frame["month"].tolist()[:2] == [dt.date(2024, 1, 1), dt.date(1960, 1, 1)]
    assert frame["huge"].tolist()[:2] == [5_000_000_000, -1] and frame["amount"].tolist()[:2] == [12.5, 0.25]
    assert meta.column_names_to_labels["city"] == "Städte & <Orte>"
    assert meta.variable_value_labels["status"] == {1: "Employee", 2: "Self-employed (indépendant)", 3: "Not affiliated"}
    assert meta.variable_value_labels["canton"] == {1: "Capellen", 12: "Wiltz"}
    assert meta.original_variable_types["day"] == "SDATE10" and meta.original_variable_types["month"] == "MOYR8"
    assert meta.original_variable_types["city"] == "A7", "the widest value, 'Zürich', is 6 characters but 7 bytes"
    assert meta.variable_measure["status"] == "nominal" and meta.variable_measure["amount"] == "scale"


def test_parquet_keeps_codes_as_dictionaries_with_labels(written):
    table = pq.read_table(written.files["parquet"])
    status = table.schema.field("status")
    assert str(status.type) == "dictionary<values=string, indices=int32, ordered=0>"
    assert json.loads(status.metadata[b"labels"]) == {"employee": "Employee", "self": "Self-employed (indépendant)", "none": "Not affiliated"}
    assert status.metadata[b"title"].decode() == "Status"
    assert table.column("status").to_pylist() == ["self", "none", None]
    frame = table.to_pandas()
    assert list(frame["status"].cat.categories) == ["employee", "self", "none"], "every code is a level, in code-list order"
    assert table.column("month").to_pylist() == ["2024-01", "1960-01", None]
    assert table.column("day").to_pylist() == [dt.date(2024, 2, 29), dt.date(1959, 12, 31), None]
    assert table.schema.metadata[b"project"] == b"P-1"


def test_a_table_of_many_batches_is_written_whole_and_in_order(tmp_path):
    """A table larger than a batch is written in pieces: every row arrives once, in the table's order."""
    rows = BATCH_ROWS + 1000
    with duckdb.connect() as con:
        make_table(con, rows=[])
        con.execute(f"""INSERT INTO t SELECT printf('%016x', i), repeat('x', i % 5), ['employee', 'self', NULL][i % 3 + 1], '01',
            DATE '2000-01-01' + i::INTEGER, '2024-0' || (1 + i % 9), i % 100, i, i, i / 4, i, i, i, i FROM range({rows}) r(i)""")
        export = export_table(con, "t", COLUMNS, tmp_path, "label", dt.datetime(2026, 1, 1), {})
    frame = pd.read_stata(export.files["dta"], convert_categoricals=False)
    sav, _ = pyreadstat.read_sav(export.files["sav"], usecols=["person_id", "status"])
    assert export.rows == len(frame) == len(sav) == rows
    assert frame["big"].tolist() == list(range(rows))
    assert frame["city"].tolist() == ["x" * (i % 5) for i in range(rows)]
    assert sav["person_id"].tolist() == [f"{i:016x}" for i in range(rows)]
    assert sav["status"].fillna(0).tolist() == [[1.0, 2.0, 0][i % 3] for i in range(rows)]


def test_an_unknown_code_is_refused_with_its_table_and_column(tmp_path):
    rows = [ROWS[0][:2] + ("retired",) + ROWS[0][3:]]
    with duckdb.connect() as con:
        make_table(con, rows)
        with pytest.raises(ExportError, match="table t, column status: 1 value.* not codes of its code list"):
            export_table(con, "t", COLUMNS, tmp_path, "label", dt.datetime(2026, 1, 1), {})


def test_text_too_long_for_spss_is_refused(tmp_path):
    rows = [ROWS[0][:1] + ("x" * 300,) + ROWS[0][2:]]
    with duckdb.connect() as con:
        make_table(con, rows)
        with pytest.raises(ExportError, match="table t, column city: values of up to 300 bytes.*SPSS"):
            export_table(con, "t", COLUMNS, tmp_path, "label", dt.datetime(2026, 1, 1), {})

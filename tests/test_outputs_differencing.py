"""Differencing: every new cell against every cell already released for the project with the same grouping.

Populations are built by hand: which persons each filter keeps is known, so the
symmetric difference of every pair of cells is too.
"""

from __future__ import annotations

import json

import pytest

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.outputs.examination import examine
from lmdp_pipeline.outputs.release import release_request
from lmdp_pipeline.outputs.rules import DIFFERENCING
from lmdp_pipeline.paths import PlatformPaths

from .outputs_helpers import PERSON, PROJECT, column, make_extract, pid, read_csv, write_request

GROUPS = column("grp", "VARCHAR", "group", {"A": "a", "B": "b"})
KINDS = column("kind", "VARCHAR", "kind", {"x": "x", "y": "y"})
REGION = column("region", "VARCHAR", "region", {"n": "north", "s": "south"})
TABLE = {"from": "people", "rows": "grp", "columns": "kind", "statistic": "count"}


def people(home: PlatformPaths, cells: dict[tuple[str, str, str], int]) -> None:
    """cells: (grp, kind, region) -> persons, each person one row."""
    rows, number = [], 0
    for (grp, kind, region), persons in cells.items():
        for _ in range(persons):
            rows.append((pid(number), grp, kind, region))
            number += 1
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS, REGION], rows)})


BASE = {("A", "x", "n"): 27, ("A", "x", "s"): 3, ("A", "y", "n"): 25, ("B", "x", "n"): 40, ("B", "y", "n"): 35}


@pytest.fixture
def home(tmp_path) -> PlatformPaths:
    paths = PlatformPaths(tmp_path)
    people(paths, BASE)
    return paths


def release(home, contracts, name, tables):
    return release_request(home, contracts, write_request(home, name, tables), AuditLog(home.audit), requested_by="test")


def flagged(examination, table="t") -> set:
    cells = next(t for t in examination.tables if t.name == table).cells.cells
    return {key for key, cell in cells.items() if DIFFERENCING in cell.reasons}


def test_the_same_table_with_a_filter_that_removes_3_persons(home, contracts):
    first = release(home, contracts, "r1", {"t": TABLE})
    assert first.examination.status == "released" and first.examination.tables[0].suppressed() == []
    second = release(home, contracts, "r2", {"t": {**TABLE, "filter": {"region": {"eq": "n"}}}})
    examination = second.examination
    assert flagged(examination) == {("A", "x"), ("A", None), (None, "x"), (None, None)}, "the cells holding the 3 persons"
    assert read_csv(home.output_released_dir(PROJECT, "r2") / "t.csv") == [
        ["grp / kind", "x", "y", "Total"], ["A", "[c]", "25", "[c]"], ["B", "40", "35", "75"], ["Total", "[c]", "60", "[c]"],
    ]
    evidence = json.loads((home.output_checking_dir(PROJECT, "r2") / "results.json").read_text())
    assert evidence["results"]["t"]["outcome"]["x"]["A"] == "DifferencingCheck; "
    assert any("differencing with the same cell of table t of request r1" in c and "between 1 and 9" in c
               for c in evidence["results"]["t"]["comments"])
    released = (home.output_released_dir(PROJECT, "r2") / "results.json").read_text()
    assert "r1" not in released and "Differencing" not in released, "the released evidence gives no reason"
    assert examination.releases == 1 and examination.compared == 9


def test_ten_persons_apart_is_not_differencing(home, contracts):
    people(home, {**BASE, ("A", "x", "n"): 20, ("A", "x", "s"): 10})
    release(home, contracts, "r1", {"t": TABLE})
    examination = examine(home, contracts, write_request(home, "r2", {"t": {**TABLE, "filter": {"region": {"eq": "n"}}}}))
    assert flagged(examination) == set() and examination.tables[0].suppressed() == []


def test_disjoint_populations_of_nearly_the_same_size_are_counted_exactly(home, contracts):
    """North and south have 20 and 18 persons in (A, x): 38 apart although the counts differ by 2."""
    people(home, {("A", "x", "n"): 20, ("A", "x", "s"): 18, ("A", "y", "n"): 25, ("A", "y", "s"): 24,
                  ("B", "x", "n"): 40, ("B", "x", "s"): 41, ("B", "y", "n"): 35, ("B", "y", "s"): 33})
    release(home, contracts, "r1", {"t": {**TABLE, "filter": {"region": {"eq": "n"}}}})
    examination = examine(home, contracts, write_request(home, "r2", {"t": {**TABLE, "filter": {"region": {"eq": "s"}}}}))
    assert flagged(examination) == set()


def test_two_tables_of_one_request_are_compared_with_each_other(home, contracts):
    examination = examine(home, contracts, write_request(home, "r1", {
        "all": TABLE, "north": {**TABLE, "filter": {"region": {"eq": "n"}}}}))
    assert flagged(examination, "all") == set()
    assert flagged(examination, "north") == {("A", "x"), ("A", None), (None, "x"), (None, None)}


def test_a_one_way_table_is_compared_with_the_margins_of_a_two_way_one(home, contracts):
    release(home, contracts, "r1", {"t": TABLE})
    one_way = {"from": "people", "rows": "grp", "statistic": "count", "filter": {"region": {"eq": "n"}}}
    examination = examine(home, contracts, write_request(home, "r2", {"t": one_way}))
    assert flagged(examination) == {("A", None), (None, None)}


def test_a_rebuilt_extract_falls_back_to_the_fingerprints_and_still_catches_the_difference(home, contracts):
    release(home, contracts, "r1", {"t": TABLE})
    people(home, {**BASE, ("B", "y", "n"): 37})  # rebuilt: two more persons in (B, y)
    examination = examine(home, contracts, write_request(home, "r2", {"t": TABLE}))
    assert flagged(examination) == {("B", "y"), ("B", None), (None, "y"), (None, None)}
    assert all("the exact difference is not computed" in n for n in examination.tables[0].cells.cells[("B", "y")].notes)


def test_the_ledger_keeps_fingerprints_never_pseudonyms(home, contracts):
    release(home, contracts, "r1", {"t": TABLE})
    [record] = home.output_ledger_records(PROJECT)
    text = record.read_text()
    assert all(pid(n) not in text for n in range(sum(BASE.values())))
    cells = json.loads(text)["tables"][0]["cells"]
    assert dict(zip(zip(cells["row"], cells["col"]), cells["persons"]))[("A", "x")] == 30


def test_more_earlier_tables_than_one_mask_holds(home, contracts):
    """70 tables in one request: the last is compared with 69 earlier ones, in two 64-bit masks."""
    tables = {f"t{n:02d}": {**TABLE} for n in range(69)} | {"t69": {**TABLE, "filter": {"region": {"eq": "n"}}}}
    examination = examine(home, contracts, write_request(home, "r1", tables))
    assert all(flagged(examination, f"t{n:02d}") == set() for n in range(69))
    assert flagged(examination, "t69") == {("A", "x"), ("A", None), (None, "x"), (None, None)}
    assert all("request r1 (released earlier in this request)" in note
               for note in next(t for t in examination.tables if t.name == "t69").cells.cells[("A", "x")].notes)


def test_sums_over_joined_individuals_compare_only_persons_with_a_value(home, contracts):
    """The filter is on individuals; persons without an amount are in neither table, whatever their region."""
    amount = column("amount", "DOUBLE", "default")
    month = column("i_month", "VARCHAR", "month")
    region = column("i_region", "VARCHAR", "region", {"n": "north", "s": "south"})
    people_, payments, number = [], [], 0
    for grp, reg, persons, value in [("A", "n", 27, 10.0), ("A", "s", 3, 10.0), ("A", "s", 5, None),
                                     ("B", "n", 40, 10.0), ("B", "s", 5, None)]:
        for _ in range(persons):
            people_.append((pid(number), "2024-01", reg))
            payments.append((pid(number), grp, value))
            number += 1
    make_extract(home, {"payments": ([PERSON, GROUPS, amount], payments), "individuals": ([PERSON, month, region], people_)})
    table = {"from": "payments", "with_individuals": True, "rows": "grp", "statistic": "sum", "value": "amount"}
    release(home, contracts, "r1", {"t": table})
    examination = examine(home, contracts, write_request(home, "r2", {"t": {**table, "filter": {"i_region": {"eq": "n"}}}}))
    assert flagged(examination) == {("A", None), (None, None)}
    assert examination.tables[0].cells.cells[("B", None)].persons == 40
    assert all("differ from that cell's by between 1 and 9" in note  # counted exactly, not by the fallback
               for note in examination.tables[0].cells.cells[("A", None)].notes)


def test_nine_persons_apart_is_differencing(home, contracts):
    """The filter removes 9 persons from (A, x): one short of the threshold, so still disclosive."""
    people(home, {**BASE, ("A", "x", "n"): 21, ("A", "x", "s"): 9})
    release(home, contracts, "r1", {"t": TABLE})
    examination = examine(home, contracts, write_request(home, "r2", {"t": {**TABLE, "filter": {"region": {"eq": "n"}}}}))
    assert flagged(examination) == {("A", "x"), ("A", None), (None, "x"), (None, None)}
    assert all("between 1 and 9" in note for note in examination.tables[0].cells.cells[("A", "x")].notes)


def test_a_rebuilt_extract_with_the_same_counts_but_another_person_is_differencing(home, contracts):
    """The rebuild swaps one person of (B, y) for another: every count is the same, but the two releases of (B, y)
    differ by two persons (one out, one in), which the fingerprints show."""
    release(home, contracts, "r1", {"t": TABLE})
    rows, number = [], 0
    for (grp, kind, region), persons in BASE.items():
        for _ in range(persons):
            rows.append((pid(number), grp, kind, region))
            number += 1
    assert rows[-1][1:] == ("B", "y", "n")
    rows[-1] = (pid(999), "B", "y", "n")
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS, REGION], rows)})
    examination = examine(home, contracts, write_request(home, "r2", {"t": TABLE}))
    assert examination.tables[0].cells.cells[("B", "y")].persons == 35
    assert flagged(examination) == {("B", "y"), ("B", None), (None, "y"), (None, None)}


def test_a_new_table_is_compared_with_every_earlier_release_not_only_the_latest(home, contracts):
    """r1 publishes the table whole, r2 something else; r3 (the north only, 3 persons fewer in (A, x)) meets r1."""
    release(home, contracts, "r1", {"t": TABLE})
    release(home, contracts, "r2", {"t": {"from": "people", "rows": "region", "statistic": "count"}})
    examination = examine(home, contracts, write_request(home, "r3", {"t": {**TABLE, "filter": {"region": {"eq": "n"}}}}))
    assert examination.releases == 2
    assert flagged(examination) == {("A", "x"), ("A", None), (None, "x"), (None, None)}
    assert any("request r1" in note for note in examination.tables[0].cells.cells[("A", "x")].notes)


def test_sums_whose_filters_keep_the_same_persons_but_not_the_same_rows_are_differencing(home, contracts):
    """The attack of the third review: a person with two jobs, one started in a month no one else's job was. Summing the
    hours with and without that month keeps the same persons in every cell, so counting persons saw no difference;
    the two sums are 120 hours apart, that one job's (computed here from the rows)."""
    start, hours = column("start", "VARCHAR", "month"), column("hours", "DOUBLE", "default")
    rows = [(pid(n), "A" if n < 30 else "B", "2020-01", 10.0) for n in range(60)] + [(pid(0), "A", "1994-06", 120.0)]
    make_extract(home, {"spells": ([PERSON, GROUPS, start, hours], rows)})
    table = {"from": "spells", "rows": "grp", "statistic": "sum", "value": "hours"}
    assert release(home, contracts, "r1", {"t": table}).examination.status == "released"
    kept = [r for r in rows if r[2] != "1994-06"]
    assert {r[0] for r in kept if r[1] == "A"} == {r[0] for r in rows if r[1] == "A"}, "the same persons in the cell"
    assert sum(r[3] for r in rows if r[1] == "A") - sum(r[3] for r in kept if r[1] == "A") == 120.0
    examination = examine(home, contracts, write_request(home, "r2", {"t": {**table, "filter": {"start": {"not_in": ["1994-06"]}}}}))
    assert flagged(examination) == {("A", None), (None, None)}
    assert all("differ from that cell's by between 1 and 9" in note for note in examination.tables[0].cells.cells[("A", None)].notes)
    counts = examine(home, contracts, write_request(home, "r3", {"t": {"from": "spells", "rows": "grp", "statistic": "count",
                                                                         "filter": {"start": {"not_in": ["1994-06"]}}}}))
    assert flagged(counts) == set(), "a count of the same persons tells nothing new"


def test_sums_compared_with_more_earlier_tables_than_one_mask_holds(home, contracts):
    """70 sums in one request: the last (region n) is 3 persons from the five unfiltered ones, which sit in the second
    64-bit mask behind 64 tables of region s (disjoint from it: far apart); those five alone show the difference."""
    amount = column("amount", "DOUBLE", "default")
    rows, number = [], 0
    for (grp, kind, region), persons in BASE.items():
        for _ in range(persons):
            rows.append((pid(number), grp, kind, region, 10.0))
            number += 1
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS, REGION, amount], rows)})
    table = {**TABLE, "statistic": "sum", "value": "amount"}
    tables = {f"t{n:02d}": {**table, "filter": {"region": {"eq": "s"}}} for n in range(64)}
    tables |= {f"t{n:02d}": {**table} for n in range(64, 69)} | {"t69": {**table, "filter": {"region": {"eq": "n"}}}}
    examination = examine(home, contracts, write_request(home, "r1", tables))
    assert ("A", "x") in flagged(examination, "t69")
    notes = next(t for t in examination.tables if t.name == "t69").cells.cells[("A", "x")].notes
    assert {note.split("table ")[1].split(" of")[0] for note in notes} == {f"t{n}" for n in range(64, 69)}

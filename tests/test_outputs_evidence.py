"""The evidence as the tools that read ACRO's evidence read it, and nothing identifying in what is released.

``ACRO_RESULTS`` is ACRO 1.0.2's results.json written out as a JSON schema from its
source (``acro/record.py``: ``Records.finalise_json`` writes it, ``load_records`` reads it
back) and SACRO Viewer's (``sacro/models.py``: ``find_acro_metadata``, ``ACROOutputs``:
one valid JSON per folder, a non-empty ``files`` list of ``name``s, ``checksums/<file>.txt``,
``sdc.cells`` as ``[row, column]`` pairs it highlights in the CSV at body line ``row``,
field ``column + 1``). The tests read the files as those tools do, with pandas and
``sha256sum``, not with the code that wrote them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

import jsonschema
import pandas as pd
import pytest
from openpyxl import load_workbook

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.outputs.release import release_request
from lmdp_pipeline.paths import PlatformPaths

from .outputs_helpers import PERSON, PROJECT, column, grid_rows, make_extract, pid, read_csv, write_request

CELLS = {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2}}
ACRO_RESULTS = {
    "type": "object",
    "required": ["version", "results"],
    "properties": {
        "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
        "tool": {"type": "object", "required": ["@type", "name", "version"]},
        "results": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object",
            "required": ["uid", "status", "type", "properties", "files", "outcome", "command", "summary", "timestamp",
                         "comments", "exception"],
            "properties": {
                "uid": {"type": "string"},
                "status": {"enum": ["pass", "fail", "review", "approved"]},
                "type": {"enum": ["table", "regression", "custom", "histogram", "survival plot", "pie chart"]},
                "properties": {"type": "object"},
                "files": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["name", "sdc"],
                    "properties": {"name": {"type": "string"}, "sdc": {"type": "object", "properties": {
                        "summary": {"type": "object"}, "cells": {"type": "object", "additionalProperties": CELLS}}}}}},
                "outcome": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}}},
                "command": {"type": "string"},
                "summary": {"type": "string"},
                "timestamp": {"type": "string"},
                "comments": {"type": "array", "items": {"type": "string"}},
                "exception": {"type": "string"},
                "fair": {"type": "object"},
            },
        }},
    },
}

GROUPS = column("grp", "VARCHAR", "group", {"A": "a", "B": "b", "C": "c"})
KINDS = column("kind", "VARCHAR", "kind", {"x": "x", "y": "y"})
AMOUNT = column("amount", "DOUBLE", "default")
CELL_COUNTS = {("A", "x"): 9, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40, ("C", "x"): 12, ("C", "y"): 0}
PERSONS = sum(CELL_COUNTS.values())


@pytest.fixture(scope="module")
def released(tmp_path_factory, contracts):
    home = PlatformPaths(tmp_path_factory.mktemp("evidence"))
    rows, _ = grid_rows(CELL_COUNTS)
    payments = [(p, g, 1000.07 + n * n) for n, (p, g, _) in enumerate(rows)]
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], rows), "payments": ([PERSON, GROUPS, AMOUNT], payments)})
    path = write_request(home, "evidence", {
        "counts": {"from": "people", "rows": "grp", "columns": "kind", "statistic": "count"},
        "amounts": {"from": "payments", "rows": "grp", "statistic": "mean", "value": "amount"},
    })
    result = release_request(home, contracts, path, AuditLog(home.audit), requested_by="test")
    assert result.examination.status == "released"
    return home


def folders(home):
    return [home.output_released_dir(PROJECT, "evidence"), home.output_checking_dir(PROJECT, "evidence")]


@pytest.mark.parametrize("which", [0, 1], ids=["released", "checking"])
def test_results_json_follows_acros_schema_and_loads_as_acro_loads_it(released, which):
    folder = folders(released)[which]
    assert [p.name for p in folder.glob("*.json")] == ["results.json"], "SACRO Viewer wants one JSON in the folder"
    document = json.loads((folder / "results.json").read_text())
    jsonschema.validate(document, ACRO_RESULTS)
    assert document["version"] == "1.0.2"
    for uid, output in document["results"].items():
        csv_file = output["files"][0]["name"]
        table = pd.read_csv(folder / csv_file)  # ACRO's load_output
        outcome = pd.DataFrame.from_dict(output["outcome"])  # ACRO's load_outcome
        assert outcome.shape == (table.shape[0], table.shape[1] - 1), uid
        assert [str(c) for c in outcome.columns] == [str(c) for c in table.columns[1:]]
        assert [str(i) for i in outcome.index] == [str(i) for i in table.iloc[:, 0]]


@pytest.mark.parametrize("which", [0, 1], ids=["released", "checking"])
def test_checksums_hold_as_sacro_and_sha256sum_check_them(released, which):
    folder = folders(released)[which]
    assert subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=folder, capture_output=True).returncode == 0
    listed = {line.split()[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.name for p in folder.iterdir() if p.is_file() and p.name != "SHA256SUMS"}
    document = json.loads((folder / "results.json").read_text())
    for output in document["results"].values():
        for file in output["files"]:
            recorded = (folder / "checksums" / f"{file['name']}.txt").read_text()
            assert recorded == hashlib.sha256((folder / file["name"]).read_bytes()).hexdigest()


def test_the_cells_sacro_highlights_are_exactly_the_suppressed_ones(released):
    folder = folders(released)[0]
    document = json.loads((folder / "results.json").read_text())
    for uid, output in document["results"].items():
        body = [line[1:] for line in read_csv(folder / f"{uid}.csv")[1:]]
        marked = {(x, y) for x, row in enumerate(body) for y, value in enumerate(row) if value == "[c]"}
        cells = output["files"][0]["sdc"]["cells"]
        assert set(cells) <= {"suppressed"} and {tuple(c) for c in cells.get("suppressed", [])} == marked
        assert output["files"][0]["sdc"]["summary"]["suppressed"] == len(marked)
    assert document["results"]["counts"]["outcome"]["x"]["A"] == "suppressed; "


def test_the_checkers_evidence_gives_every_reason_the_released_one_none(released):
    full = json.loads((folders(released)[1] / "results.json").read_text())["results"]["counts"]
    assert full["outcome"]["x"]["A"] == "MinimumThresholdCheck; " and full["outcome"]["y"]["C"] == "PresenceOfZeroCheck; "
    assert set(full["files"][0]["sdc"]["cells"]) >= {"MinimumThresholdCheck", "PresenceOfZeroCheck", "SecondarySuppression"}
    released_text = (folders(released)[0] / "results.json").read_text()
    for reason in ("MinimumThreshold", "PresenceOfZero", "Secondary", "NKCheck", "primary"):
        assert reason not in released_text


def test_the_xlsx_holds_the_csv_with_suppressed_cells_shaded(released):
    folder = folders(released)[0]
    sheet = load_workbook(folder / "counts.xlsx")["counts"]
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    expected = read_csv(folder / "counts.csv")
    assert [[str(v) for v in row] for row in values] == expected
    shaded = {(c.row, c.column) for row in sheet.iter_rows() for c in row if c.fill.fgColor.rgb.endswith("D9D9D9")}
    assert shaded == {(c.row, c.column) for row in sheet.iter_rows() for c in row if c.value == "[c]"} != set()


def test_nothing_released_holds_a_pseudonym_a_matricule_or_a_single_persons_value(released):
    pseudonyms = {pid(n) for n in range(PERSONS)}
    amounts = {f"{1000.07 + n * n:.2f}" for n in range(PERSONS)}
    for folder in folders(released):
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix == ".xlsx":
                workbook = load_workbook(path)
                text = "\n".join(str(c.value) for sheet in workbook for row in sheet.iter_rows() for c in row)
            else:
                text = path.read_text(encoding="utf-8")
            assert not any(p in text for p in pseudonyms), path
            assert not re.search(r"(?<![0-9A-Za-z.])[0-9]{11,13}(?![0-9A-Za-z])", text), path  # not inside a sha256
            published = set(re.findall(r"\b[0-9]+\.[0-9]{2}\b", text))
            assert not published & amounts, f"{path}: a person's own amount"


def test_the_released_request_block_is_only_what_identifies_the_request(released):
    """The docs' list: the checkers' block adds the extract's key id and build, the notes, the threshold applied and
    the earlier releases compared; none of that leaves the platform."""
    public = {"project", "request", "requester", "title", "status", "decided", "request_sha256", "policy_version", "reviewer"}
    outside = json.loads((folders(released)[0] / "results.json").read_text())["request"]
    inside = json.loads((folders(released)[1] / "results.json").read_text())["request"]
    assert set(outside) == public
    assert set(inside) >= public | {"notes", "extract", "threshold", "earlier_releases_compared"}
    assert "key-test" not in (folders(released)[0] / "results.json").read_text()

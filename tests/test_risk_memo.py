"""The lattice search's kept answer: read by a rebuild of the same data, never by a build of other data or levels.

Each test tries to make a build trust a kept answer it should not: a planted answer
for the same extract (read, but every node measured again before it is shown), an
answer kept before the data or the levels changed, a damaged file. The reference is the
preview (``lmdp approvals check``), which measures from the warehouse with row numbers in
place of pseudonyms, so it never finds a build's kept answer: it always searches.
"""

from __future__ import annotations

import json
import secrets
import shutil

import duckdb
import pytest
import yaml

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.projects.approval import parse_approval
from lmdp_pipeline.projects.lifecycle import build_project
from lmdp_pipeline.risk.assess import estimate_risk
from lmdp_pipeline.risk.model import RiskModel

from .conftest import plan_for

PROJECT = "P2026-002"  # birth year, sex, country of citizenship: beyond the policy, risk accepted


@pytest.fixture
def home(small_home, tmp_path):
    """A home with a warehouse and approvals of its own (kept answers and edited approvals stay here)."""
    folder = tmp_path / "home"
    folder.mkdir()
    shutil.copytree(small_home.warehouse, folder / "warehouse", ignore=shutil.ignore_patterns(".risk-searches"))
    (folder / "external").symlink_to(small_home.external, target_is_directory=True)
    shutil.copytree(small_home.approvals, folder / "approvals")
    return PlatformPaths(folder)


def build(home, contracts, keystore):
    return build_project(home, contracts, lambda: keystore, PROJECT, AuditLog(home.audit))[1].risk


def kept(home) -> list:
    return home.risk_search_files(PROJECT)


def plant(path, nodes) -> None:
    path.write_text(json.dumps({"minimal_nodes": nodes}))


def changes(assessment) -> list[dict]:
    return [s.changes for s in assessment.suggestions]


def preview(home, contracts, months="2024-01:2024-03"):
    return estimate_risk(home, plan_for(PROJECT, contracts, months))


def node_of(suggestion, contracts) -> list[int]:
    """The suggestion's levels as lattice coordinates, as the kept answer writes them."""
    return [qi.levels.index(suggestion.levels[qi.name]) for qi in RiskModel.of(plan_for(PROJECT, contracts)).dimensions]


@pytest.fixture
def keystore(home):
    return Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test"))


def test_a_rebuild_of_the_same_data_reads_the_kept_answer(home, contracts, keystore):
    first = build(home, contracts, keystore)
    assert first.accepted and first.suggestions
    [path] = kept(home)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    nodes = json.loads(path.read_text())["minimal_nodes"]
    assert nodes and all(isinstance(i, int) for node in nodes for i in node)
    best = node_of(first.suggestions[0], contracts)
    assert best in nodes
    plant(path, [node for node in nodes if node != best])  # a rebuild that reads the file cannot show the best one
    again = build(home, contracts, keystore)
    assert changes(again)[:len(first.suggestions) - 1] == changes(first)[1:]
    assert changes(first)[0] not in changes(again)
    assert kept(home) == [path]


def test_a_planted_answer_never_makes_an_unsafe_suggestion(home, contracts, keystore):
    """The approved levels themselves (node 0...0), which break the policy, planted as the only answer."""
    first = build(home, contracts, keystore)
    [path] = kept(home)
    width = len(json.loads(path.read_text())["minimal_nodes"][0])
    plant(path, [[0] * width])
    again = build(home, contracts, keystore)
    assert again.accepted and again.suggestions == []
    assert first.suggestions  # there were safe ones: only the planted file hid them


def test_a_new_period_searches_again(home, contracts, keystore):
    build(home, contracts, keystore)
    [path] = kept(home)
    plant(path, [])  # were it read, the build would show no suggestion
    approval = home.approval_file(PROJECT)
    data = yaml.safe_load(approval.read_text())
    data["period"]["to"] = "2024-02"  # one month fewer: another extract
    approval.write_text(yaml.safe_dump(data, sort_keys=False))
    shorter = build(home, contracts, keystore)
    assert shorter.suggestions and changes(shorter) == changes(preview(home, contracts, "2024-01:2024-02"))
    [new] = kept(home)
    assert new != path and not path.exists()


def test_new_data_in_the_warehouse_searches_again(home, contracts, keystore):
    build(home, contracts, keystore)
    [path] = kept(home)
    plant(path, [])
    month = home.warehouse_file("individuals", "2024-03")
    with duckdb.connect() as con:  # one person's row of March left out, as a corrected re-delivery would
        metadata = dict(con.execute(f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{month}')").fetchall())
        kv = ", ".join(f"{k}: '{v}'" for k, v in metadata.items())
        con.execute(f"""COPY (SELECT * FROM read_parquet('{month}') WHERE i_matricule <> (SELECT min(i_matricule) FROM read_parquet('{month}')))
                        TO '{month}.new' (FORMAT parquet, KV_METADATA {{{kv}}})""")
    (month.parent / f"{month.name}.new").replace(month)
    again = build(home, contracts, keystore)
    assert again.suggestions and changes(again) == changes(preview(home, contracts))
    assert not path.exists() and len(kept(home)) == 1


def test_another_population_of_the_same_register_searches_again(home, contracts, keystore):
    """Pensioners and the self-employed instead of pensioners: the register's counts, the period and the levels stay;
    only who is in the extract changes, which the kept answer must not outlive."""
    build_of_pensioners = build(home, contracts, keystore)
    [path] = kept(home)
    plant(path, [])
    approval = home.approval_file(PROJECT)
    data = yaml.safe_load(approval.read_text())
    data["population"] = [{"register": "affiliation", "where": {"a_status": {"in": ["pensioner", "self_employed"]}}}]
    approval.write_text(yaml.safe_dump(data, sort_keys=False))
    wider = build(home, contracts, keystore)
    expected = estimate_risk(home, plan_for(PROJECT, contracts, "2024-01:2024-03", population=parse_approval(approval).population))
    assert wider.suggestions and changes(wider) == changes(expected)
    assert wider.figures.persons > build_of_pensioners.figures.persons
    assert not path.exists() and len(kept(home)) == 1


def test_a_damaged_answer_is_searched_again_and_replaced(home, contracts, keystore):
    first = build(home, contracts, keystore)
    [path] = kept(home)
    good = path.read_text()
    for damage in ("not json", '{"minimal_nodes": [[99, 0, 0]]}', '{"minimal_nodes": [[0, 0]]}', '{"nodes": []}', '{"minimal_nodes": [["0", 1, 1]]}'):
        path.write_text(damage)
        assert changes(build(home, contracts, keystore)) == changes(first), damage
        assert path.read_text() == good

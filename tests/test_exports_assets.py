"""The exports, codebook and package as Dagster assets: built in the same run as the extract, after it, with sizes.

Real runs on a temporary instance over a copy of the small warehouse, with a real
master key and a real age identity.
"""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pyrage
import pytest
import yaml

from assets.exports import CODEBOOK_KEY, EXPORT_KEYS, EXPORTS_KEY, PACKAGE_KEY
from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.paths import PlatformPaths
from sensors.projects import project_approvals

from .test_project_assets import build, resources, tick

IDENTITY = pyrage.x25519.Identity.generate()


@pytest.fixture
def home(small_home, tmp_path):
    target = tmp_path / "home"
    shutil.copytree(small_home.home, target)
    path = target / "approvals" / "P2026-001.yaml"
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec, "recipients": [str(IDENTITY.to_public())]}, sort_keys=False))
    return PlatformPaths(target)


@pytest.fixture(scope="module")
def project_assets(contracts):
    from assets.projects import build_project_assets

    return build_project_assets(contracts)


def materialized(result) -> dict:
    found = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    return {m.asset_key: m for m in found}


def test_a_build_run_makes_the_exports_codebook_and_package_after_the_extract(project_assets, home):
    with dg.instance_for_test() as instance:
        result = build(project_assets, home, instance, "P2026-001")
        assert result.success
        done = materialized(result)
        assert set(EXPORT_KEYS) <= set(done)
        with duckdb.connect(str(home.extract_file("P2026-001")), read_only=True) as con:
            rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]
                    for t in ("individuals", "jobs", "absences", "external_survey_2025")}
        exports = done[EXPORTS_KEY].metadata
        assert exports["dagster/row_count"].value == sum(rows.values())
        tables = exports["tables"].value
        assert {t: v["rows"] for t, v in tables.items()} == rows
        folder = home.exports_dir("P2026-001")
        for table, sizes in tables.items():
            for format_ in ("dta", "sav", "parquet"):
                assert sizes[f"{format_}_bytes"] == (folder / f"{table}.{format_}").stat().st_size
        assert done[CODEBOOK_KEY].metadata["bytes"].value == (folder / "codebook.html").stat().st_size
        package = done[PACKAGE_KEY].metadata
        assert package["bytes"].value == home.package_file("P2026-001").stat().st_size and package["recipients"].value == 1
        steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
        assert steps.index("project_exports") > steps.index("project_extract")
        events = [e for e in AuditLog(home.audit).entries() if e.get("run_id") == result.run_id]
        assert [e["event"] for e in events][-2:] == ["exports_published", "package_published"]


def test_the_exports_alone_can_be_rebuilt_from_the_published_extract(project_assets, home):
    with dg.instance_for_test() as instance:
        assert build(project_assets, home, instance, "P2026-002").success
        before = {p.name: p.read_bytes() for p in home.exports_dir("P2026-002").iterdir()}
        again = dg.materialize(project_assets, selection=EXPORT_KEYS, partition_key="P2026-002", instance=instance,
                               resources=resources(home), raise_on_error=False)
        assert again.success and set(materialized(again)) == {EXPORTS_KEY, CODEBOOK_KEY}
        assert {p.name: p.read_bytes() for p in home.exports_dir("P2026-002").iterdir()} == before, "same extract, same files"
        assert [e["event"] for e in AuditLog(home.audit).entries() if e.get("run_id") == again.run_id] == ["exports_published"]


def test_without_recipients_no_package_is_materialized(project_assets, home):
    with dg.instance_for_test() as instance:
        result = build(project_assets, home, instance, "P2026-002")
        assert result.success
        done = materialized(result)
        assert EXPORTS_KEY in done and CODEBOOK_KEY in done and PACKAGE_KEY not in done
        assert not home.package_file("P2026-002").exists() and home.exports_dir("P2026-002").is_dir()
        assert done[EXPORTS_KEY].metadata["package"].value.startswith("no package: the approval lists no recipients")


def test_the_approval_sensor_rebuilds_the_exports_with_the_extract(home):
    with dg.instance_for_test() as instance:
        for request in tick(project_approvals, instance, home).run_requests:
            assert set(EXPORT_KEYS) <= set(request.asset_selection)


def test_a_refused_extract_makes_no_exports(project_assets, home, one_check_fails):
    with dg.instance_for_test() as instance:
        result = build(project_assets, home, instance, "P2026-001")
        assert not result.success
        assert not set(EXPORT_KEYS) & set(materialized(result))
        assert not home.exports_dir("P2026-001").exists() and not home.package_file("P2026-001").exists()

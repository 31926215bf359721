"""Projects as Dagster runs them: the approval sensor, the build, the expiry, and no secret anywhere."""

from __future__ import annotations

import base64
import json
import secrets
import shutil

import dagster as dg
import pytest

from assets import PlatformResource
from assets.projects import EXTERNAL_KEY, EXTRACT_KEY, PROJECTS, build_project_assets, build_selection, project_key
from lmdp_pipeline import audit
from lmdp_pipeline.keys import KeyDestroyed, MASTER_KEY_ENV
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.projects import keystore
from sensors.projects import project_approvals, project_expiry

MASTER = base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def home(small_home, tmp_path, monkeypatch):
    target = tmp_path / "home"
    shutil.copytree(small_home.home, target)
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER)
    return PlatformPaths(target)


@pytest.fixture(scope="module")
def project_assets(contracts):
    return build_project_assets(contracts)


def resources(paths):
    return {"platform": PlatformResource(home=str(paths.home))}


def tick(sensor, instance, paths, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources(paths))
    return sensor(context)


def build(project_assets, paths, instance, project):
    from lmdp_pipeline.approvals import parse_approval

    if not instance.has_dynamic_partition(PROJECTS.name, project):
        instance.add_dynamic_partitions(PROJECTS.name, [project])
    selection = build_selection(parse_approval(paths.approvals / f"{project}.yaml"))
    return dg.materialize(
        project_assets, selection=selection, partition_key=project, instance=instance, resources=resources(paths), raise_on_error=False
    )


def test_approval_sensor_adds_partitions_creates_keys_and_requests_builds(home):
    with dg.instance_for_test() as instance:
        result = tick(project_approvals, instance, home)
        assert sorted(r.partition_key for r in result.run_requests) == ["P2026-001", "P2026-002"]
        first = next(r for r in result.run_requests if r.partition_key == "P2026-001")
        assert set(first.asset_selection) == {project_key("individuals"), project_key("jobs"), project_key("absences"), EXTERNAL_KEY, EXTRACT_KEY}
        second = next(r for r in result.run_requests if r.partition_key == "P2026-002")
        assert EXTERNAL_KEY not in second.asset_selection, "no external data, no projects/external"
        assert first.run_key.startswith("P2026-001:")
        assert sorted(result.dynamic_partitions_requests[0].partition_keys) == ["P2026-001", "P2026-002"]
        assert keystore(home).projects() == ["P2026-001", "P2026-002"]
        assert [e["event"] for e in audit.entries(home.audit)].count("key_created") == 2
        again = tick(project_approvals, instance, home, result.cursor)
        assert again.run_requests == []


def test_an_invalid_approval_is_reported_and_builds_nothing(home):
    (home.approvals / "P2026-003.yaml").write_text(
        (home.approvals / "P2026-001.yaml").read_text().replace("P2026-001", "P2026-003").replace("j_isco: 2digit", "j_isco: 3digit")
    )
    with dg.instance_for_test() as instance:
        result = tick(project_approvals, instance, home)
        assert "P2026-003" not in {r.partition_key for r in result.run_requests}
        refused = [e for e in audit.entries(home.audit) if e["event"] == "approval_refused"]
        assert refused and "'3digit' is not a level" in refused[0]["problems"][0]
        assert not keystore(home).key_file("P2026-003").exists()


def test_a_changed_approval_rebuilds(home):
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        path = home.approvals / "P2026-002.yaml"
        path.write_text(path.read_text().replace("cb_amount: default", "cb_amount: band_500"))
        second = tick(project_approvals, instance, home, first.cursor)
        assert [r.partition_key for r in second.run_requests] == ["P2026-002"]
        assert second.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_a_build_writes_the_extract_with_lineage_and_no_secret_anywhere(project_assets, home):
    with dg.instance_for_test() as instance:
        tick(project_approvals, instance, home)
        result = build(project_assets, home, instance, "P2026-001")
        assert result.success
        assert (home.extracts / "P2026-001.duckdb").is_file()
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == dict.fromkeys(
            ["no_direct_identifiers", "scope_and_period", "levels_not_finer", "approved_items_only", "pseudonyms_unique"], True
        )
        materialized = {m.asset_key: m for m in result.asset_materializations_for_node("project_extract")}
        assert set(materialized) == {project_key("individuals"), project_key("jobs"), project_key("absences"), EXTERNAL_KEY, EXTRACT_KEY}
        linkage = materialized[EXTERNAL_KEY].metadata["datasets"].value["external_survey_2025"]
        assert linkage["invalid_ids"] == 2 and linkage["linked"] == materialized[EXTERNAL_KEY].metadata["dagster/row_count"].value > 0
        jobs = materialized[project_key("jobs")]
        assert jobs.metadata["dagster/row_count"].value > 0 and jobs.metadata["persons"].value > 0
        lineage = jobs.metadata["dagster/column_lineage"].value.deps_by_column
        assert lineage["employer_id"][0].asset_key == dg.AssetKey(["registers", "jobs"])
        assert lineage["employer_id"][0].column_name == "j_employer"
        key = keystore(home).load("P2026-001")
        secrets_ = [key.material.hex(), base64.b64encode(key.material).decode(), MASTER]
        records = instance.get_records_for_run(result.run_id).records
        event_log = "\n".join(dg.serialize_value(r.event_log_entry) for r in records)
        assert key.key_id in event_log, "the event log was read (it carries the key id, never the key)"
        run_config = json.dumps(instance.get_run_by_id(result.run_id).run_config)
        for secret in secrets_:
            assert secret not in event_log and secret not in run_config
            assert secret.encode() not in (home.extracts / "P2026-001.duckdb").read_bytes()


def test_expiry_deletes_the_extract_destroys_the_key_and_refuses_later_builds(project_assets, home):
    with dg.instance_for_test() as instance:
        tick(project_approvals, instance, home)
        assert build(project_assets, home, instance, "P2026-002").success
        path = home.approvals / "P2026-002.yaml"
        path.write_text(path.read_text().replace("status: approved", "status: revoked"))
        tick(project_expiry, instance, home)
        assert not (home.extracts / "P2026-002.duckdb").exists()
        with pytest.raises(KeyDestroyed):
            keystore(home).load("P2026-002")
        assert any(e["event"] == "project_retired" and e["project"] == "P2026-002" for e in audit.entries(home.audit))
        path.write_text(path.read_text().replace("status: revoked", "status: approved"))
        again = tick(project_approvals, instance, home)
        assert "P2026-002" not in {r.partition_key for r in again.run_requests}, "a destroyed key is never remade"
        refused = [e for e in audit.entries(home.audit) if e["event"] == "approval_refused"]
        assert any("project P2026-002 is retired: the key of project P2026-002 was destroyed on" in p for p in refused[-1]["problems"])
        failed = build(project_assets, home, instance, "P2026-002")
        assert not failed.success


def test_a_selection_without_the_extract_builds_nothing_and_says_what_to_select(project_assets, home):
    with dg.instance_for_test() as instance:
        tick(project_approvals, instance, home)
        instance.add_dynamic_partitions(PROJECTS.name, ["P2026-001"])
        result = dg.materialize(
            project_assets, selection=[project_key("jobs")], partition_key="P2026-001", instance=instance,
            resources=resources(home), raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "select projects/absences, projects/external, projects/extract, projects/individuals too" in failure.step_failure_data.error.message
        assert not (home.extracts / "P2026-001.duckdb").exists()


def test_a_redelivered_external_file_rebuilds_and_a_missing_one_is_reported(home):
    survey = home.external / "P2026-001" / "survey_2025.csv"
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        survey.write_text(survey.read_text() + survey.read_text().splitlines()[1].replace(",3,", ",2,") + "\n")
        second = tick(project_approvals, instance, home, first.cursor)
        assert [r.partition_key for r in second.run_requests] == ["P2026-001"]
        assert second.run_requests[0].run_key not in {r.run_key for r in first.run_requests}
        survey.unlink()
        third = tick(project_approvals, instance, home, second.cursor)
        assert third.run_requests == []
        reason = third.skip_reason.skip_message
        assert "field external.survey_2025.file" in reason and "does not exist" in reason


def test_a_refused_external_file_fails_the_build_and_keeps_the_extract(project_assets, home):
    survey = home.external / "P2026-001" / "survey_2025.csv"
    with dg.instance_for_test() as instance:
        tick(project_approvals, instance, home)
        assert build(project_assets, home, instance, "P2026-001").success
        before = (home.extracts / "P2026-001.duckdb").read_bytes()
        survey.write_text(survey.read_text().replace("matricule,q_health,q_hours", "matricule,q_health,q_hours_per_week"))
        result = build(project_assets, home, instance, "P2026-001")
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "column 'q_hours_per_week' is not declared" in failure.step_failure_data.error.message
        assert (home.extracts / "P2026-001.duckdb").read_bytes() == before


def test_an_approval_refused_for_missing_months_builds_once_they_are_ingested(home):
    path = home.approvals / "P2026-002.yaml"
    path.write_text(path.read_text().replace("to: 2024-03", "to: 2024-04"))
    revoked = home.approvals / "P2026-001.yaml"
    revoked.write_text(revoked.read_text().replace("status: approved", "status: revoked"))
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        assert first.run_requests == []
        refused = {e["file"]: e for e in audit.entries(home.audit) if e["event"] == "approval_refused"}
        assert "outside the months available" in refused["P2026-002.yaml"]["problems"][0]
        assert "revoked" in refused["P2026-001.yaml"]["problems"][0]
        again = tick(project_approvals, instance, home, first.cursor)
        assert again.run_requests == [], "nothing changed: not looked at again"
        assert sum(e["event"] == "approval_refused" for e in audit.entries(home.audit)) == 2
        for register in ("affiliation", "individuals", "cash_benefits", "benefits_in_kind"):
            march = home.warehouse / register / f"{register}_2024-03.parquet"
            shutil.copy(march, march.with_name(f"{register}_2024-04.parquet"))
        later = tick(project_approvals, instance, home, again.cursor)
        assert [r.partition_key for r in later.run_requests] == ["P2026-002"]
        revoked_refusals = [e for e in audit.entries(home.audit) if e["event"] == "approval_refused" and e["file"] == "P2026-001.yaml"]
        assert len(revoked_refusals) == 1, "a revoked project is not re-examined when months arrive"

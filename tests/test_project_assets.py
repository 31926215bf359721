"""Projects as Dagster runs them: sensors decide, runs act and audit, whoever started them.

Every test drives real sensors and real runs on a temporary Dagster instance over a
copy of the small warehouse, with a real master key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil

import dagster as dg
import duckdb
import pytest

from assets import KeysResource, PlatformResource
from assets.audit_log import AUDIT_LOG_KEY, recorded_head
from assets.exports import EXPORT_KEYS
from assets.projects import EXTERNAL_KEY, EXTRACT_KEY, PROJECTS, build_project_assets, build_run_config, build_selection, project_key
from lmdp_pipeline.audit import AuditLog, verify
from lmdp_pipeline.keys import KeyDestroyed, Keystore, MasterKey
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.projects.approval import parse_approval
from lmdp_pipeline.projects.lifecycle import fingerprint
from sensors.lifecycle import reissue_project_key, retire_project
from sensors.projects import project_approvals, project_expiry

MASTER = base64.b64encode(secrets.token_bytes(32)).decode()
CHECK_NAMES = ["no_direct_identifiers", "scope_and_period", "levels_not_finer", "approved_items_only", "pseudonyms_unique",
               "row_order", "period_complete", "disclosure_risk"]
EXAMPLES = ["P2026-001", "P2026-002", "P2026-003"]


@pytest.fixture
def home(small_home, tmp_path):
    target = tmp_path / "home"
    shutil.copytree(small_home.home, target)
    return PlatformPaths(target)


@pytest.fixture(scope="module")
def project_assets(contracts):
    return build_project_assets(contracts)


def keystore(paths) -> Keystore:
    return Keystore(paths.keys, MasterKey.from_text(MASTER, "test"))


def resources(paths, master: str | None = MASTER):
    keys = KeysResource(master_key=master, origin="LMDP_MASTER_KEY") if master else KeysResource()
    return {"platform": PlatformResource(home=str(paths.home)), "keys": keys}


def tick(sensor, instance, paths, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources(paths, None))
    return sensor(context)


def build(project_assets, paths, instance, project, fingerprint_: str | None = None, requested_by="test"):
    if not instance.has_dynamic_partition(PROJECTS.name, project):
        instance.add_dynamic_partitions(PROJECTS.name, [project])
    approval_path = paths.approvals / f"{project}.yaml"
    selection = build_selection(parse_approval(approval_path))
    config = build_run_config(fingerprint(paths, approval_path) if fingerprint_ is None else fingerprint_, requested_by)
    return dg.materialize(
        project_assets, selection=selection, partition_key=project, instance=instance, resources=resources(paths),
        run_config=config, raise_on_error=False,
    )


def run_request(project_assets, paths, instance, request: dg.RunRequest):
    """Execute a sensor's run request as the daemon would launch it."""
    if request.job_name == retire_project.name:
        return retire_project.execute_in_process(run_config=request.run_config, instance=instance, resources=resources(paths, None),
                                                 tags=request.tags, raise_on_error=False)
    return dg.materialize(project_assets, selection=request.asset_selection, partition_key=request.partition_key, instance=instance,
                          resources=resources(paths), run_config=request.run_config, raise_on_error=False, tags=request.tags)


def events(paths, event=None, project=None) -> list[dict]:
    return [e for e in AuditLog(paths.audit).entries()
            if (event is None or e["event"] == event) and (project is None or e.get("project") == project)]


def failure_text(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.step_failure_data.user_failure_data.description if failure.step_failure_data.user_failure_data else failure.step_failure_data.error.message


def test_the_approval_sensor_only_decides(home):
    """It requests builds with the fingerprint in typed config; it creates no key and writes no audit line."""
    with dg.instance_for_test() as instance:
        result = tick(project_approvals, instance, home)
        assert sorted(r.partition_key for r in result.run_requests) == EXAMPLES
        first = next(r for r in result.run_requests if r.partition_key == "P2026-001")
        assert set(first.asset_selection) == {project_key("individuals"), project_key("jobs"), project_key("absences"), EXTERNAL_KEY, EXTRACT_KEY,
                                              *EXPORT_KEYS}
        assert first.run_config == build_run_config(fingerprint(home, home.approvals / "P2026-001.yaml"), "sensor project_approvals")
        assert first.tags["lmdp/project"] == "P2026-001"
        assert sorted(result.dynamic_partitions_requests[0].partition_keys) == EXAMPLES
        assert keystore(home).projects() == [] and events(home) == []
        assert tick(project_approvals, instance, home, result.cursor).run_requests == []


def test_a_sensor_requested_build_creates_the_key_publishes_and_audits_in_its_run(project_assets, home):
    with dg.instance_for_test() as instance:
        [request] = [r for r in tick(project_approvals, instance, home).run_requests if r.partition_key == "P2026-001"]
        instance.add_dynamic_partitions(PROJECTS.name, ["P2026-001"])
        result = run_request(project_assets, home, instance, request)
        assert result.success
        assert [e["event"] for e in events(home, project="P2026-001")] == [
            "build_requested", "key_created", "build_started", "risk_accepted", "build_published", "exports_published"]
        assert events(home, "build_requested")[0]["requested_by"] == "sensor project_approvals"
        assert {e["run_id"] for e in events(home) if "run_id" in e} == {result.run_id}
        observed = [r.asset_observation.metadata["sequence"].value for r in instance.fetch_observations(AUDIT_LOG_KEY, limit=20).records]
        assert sorted(observed) == [1, 2, 3, 4, 5, 6], "each line's chain head is in the run's event log"
        assert verify(AuditLog(home.audit).path, recorded_head(instance)).ok
        access = json.loads(home.access_file("P2026-001").read_text())
        assert access["researchers"] == ["a.schmit", "j.ferreira"] and access["extract"] == "P2026-001.duckdb"


def test_a_build_writes_the_extract_with_lineage_and_no_secret_anywhere(project_assets, home):
    with dg.instance_for_test() as instance:
        result = build(project_assets, home, instance, "P2026-001")
        assert result.success
        checks = {e.check_name: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}
        accepted = (False, dg.AssetCheckSeverity.WARN)  # on 600 persons the example exceeds the policy; its approval accepts it
        assert checks == dict.fromkeys(CHECK_NAMES, (True, dg.AssetCheckSeverity.ERROR)) | {"disclosure_risk": accepted}
        materialized = {m.asset_key: m for m in result.asset_materializations_for_node("project_extract")}
        assert set(materialized) == {project_key("individuals"), project_key("jobs"), project_key("absences"), EXTERNAL_KEY, EXTRACT_KEY}
        linkage = materialized[EXTERNAL_KEY].metadata["datasets"].value["external_survey_2025"]
        assert linkage["invalid_ids"] == 2 and linkage["linked"] == materialized[EXTERNAL_KEY].metadata["dagster/row_count"].value > 0
        jobs = materialized[project_key("jobs")]
        assert jobs.metadata["dagster/row_count"].value > 0 and jobs.metadata["persons"].value > 0
        lineage = jobs.metadata["dagster/column_lineage"].value.deps_by_column
        assert lineage["employer_id"][0].asset_key == dg.AssetKey(["registers", "jobs"])
        key = keystore(home).load("P2026-001")
        secrets_ = [key.material.hex(), base64.b64encode(key.material).decode(), MASTER]
        records = instance.get_records_for_run(result.run_id).records
        event_log = "\n".join(dg.serialize_value(r.event_log_entry) for r in records)
        assert key.key_id in event_log, "the event log was read (it carries the key id, never the key)"
        run_config = json.dumps(instance.get_run_by_id(result.run_id).run_config)
        for secret in secrets_:
            assert secret not in event_log and secret not in run_config
            assert secret.encode() not in home.extract_file("P2026-001").read_bytes()
            assert secret not in home.audit.joinpath("audit.jsonl").read_text()


def test_a_build_of_an_approval_that_changed_since_the_request_is_refused(project_assets, home):
    with dg.instance_for_test() as instance:
        stale = fingerprint(home, home.approvals / "P2026-002.yaml")
        path = home.approvals / "P2026-002.yaml"
        path.write_text(path.read_text().replace("cb_amount: default", "cb_amount: band_500"))
        result = build(project_assets, home, instance, "P2026-002", fingerprint_=stale)
        assert not result.success and "changed after this build was requested" in failure_text(result)
        assert not home.extract_file("P2026-002").exists()
        assert events(home, "build_refused", "P2026-002")


def test_a_lost_key_is_never_silently_remade(project_assets, home):
    """The key file vanishes (no tombstone): refused, extract kept; only an audited reissue makes a new key."""
    with dg.instance_for_test() as instance:
        assert build(project_assets, home, instance, "P2026-002").success
        before = home.extract_file("P2026-002").read_bytes()
        old_key = keystore(home).load("P2026-002")
        keystore(home).key_file("P2026-002").unlink()
        result = build(project_assets, home, instance, "P2026-002")
        assert not result.success
        message = failure_text(result)
        assert "the key of project P2026-002 is lost" in message and "lmdp keys reissue P2026-002" in message
        assert home.extract_file("P2026-002").read_bytes() == before and not keystore(home).key_file("P2026-002").exists()
        home.extract_file("P2026-002").unlink()
        assert not build(project_assets, home, instance, "P2026-002").success, "the audit log and Dagster remember the key"
        reissued = reissue_project_key.execute_in_process(
            run_config={"ops": {"reissue_project_key_op": {"config": {"project": "P2026-002", "reason": "key file lost in a disk failure"}}}},
            instance=instance, resources=resources(home))
        assert reissued.success
        new_key = keystore(home).load("P2026-002")
        assert new_key.material != old_key.material
        assert events(home, "key_reissued", "P2026-002")[0]["consequence"].startswith("every pseudonym")
        assert build(project_assets, home, instance, "P2026-002").success


def test_expiry_requests_a_retire_run_which_deletes_destroys_and_removes_the_partition(project_assets, home):
    with dg.instance_for_test() as instance:
        assert build(project_assets, home, instance, "P2026-002").success
        path = home.approvals / "P2026-002.yaml"
        path.write_text(path.read_text().replace("status: approved", "status: revoked"))
        [request] = tick(project_expiry, instance, home)
        assert home.extract_file("P2026-002").exists() and keystore(home).key_file("P2026-002").exists(), "the tick acts on nothing"
        assert request.run_config["ops"]["retire_project_op"]["config"] == {"project": "P2026-002", "reason": "revoked", "destroy_key": True}
        assert run_request(None, home, instance, request).success
        assert not home.extract_file("P2026-002").exists() and not home.access_file("P2026-002").exists()
        with pytest.raises(KeyDestroyed):
            keystore(home).load("P2026-002")
        assert not instance.has_dynamic_partition(PROJECTS.name, "P2026-002")
        assert [e["event"] for e in events(home, project="P2026-002")][-3:] == ["key_destroyed", "extract_deleted", "project_retired"]
        assert tick(project_expiry, instance, home).skip_message == "no project to retire"
        path.write_text(path.read_text().replace("status: revoked", "status: approved"))
        failed = build(project_assets, home, instance, "P2026-002")
        assert not failed.success and "is retired" in failure_text(failed)


def test_expiry_needs_no_master_key_and_fails_closed(project_assets, home, monkeypatch):
    """A deleted approval, a misspelt status, a renamed file and an unreadable key file: every project is still handled."""
    with dg.instance_for_test() as instance:
        assert build(project_assets, home, instance, "P2026-001").success
        assert build(project_assets, home, instance, "P2026-002").success
        keystore(home).key_file("P2026-001").write_text("{damaged")
        (home.approvals / "P2026-001.yaml").rename(home.approvals / "P2026-001.yaml.old")
        second = home.approvals / "P2026-002.yaml"
        second.write_text(second.read_text().replace("status: approved", "status: approvd"))
        for name in ("LMDP_MASTER_KEY", "LMDP_MASTER_KEY_FILE", "LMDP_DEVELOPMENT_KEY"):
            monkeypatch.delenv(name, raising=False)
        requests = tick(project_expiry, instance, home)
        decided = {r.run_config["ops"]["retire_project_op"]["config"]["project"]: r.run_config["ops"]["retire_project_op"]["config"]
                   for r in requests}
        assert decided["P2026-001"]["reason"] == "approval withdrawn" and not decided["P2026-001"]["destroy_key"]
        assert decided["P2026-002"]["reason"] == "approval withdrawn (unreadable)"
        for request in requests:
            assert run_request(None, home, instance, request).success
        assert not home.extract_file("P2026-001").exists() and not home.extract_file("P2026-002").exists()
        assert keystore(home).key_file("P2026-002").exists(), "a withdrawn approval keeps its key"


def test_a_withdrawn_approval_restored_rebuilds_the_same_pseudonyms(project_assets, home):
    import duckdb

    with dg.instance_for_test() as instance:
        assert build(project_assets, home, instance, "P2026-002").success
        with duckdb.connect(str(home.extract_file("P2026-002")), read_only=True) as con:
            before = sorted(p for (p,) in con.execute("SELECT DISTINCT person_id FROM individuals").fetchall())
        saved = (home.approvals / "P2026-002.yaml").read_text()
        (home.approvals / "P2026-002.yaml").unlink()
        for request in tick(project_expiry, instance, home):
            assert run_request(None, home, instance, request).success
        assert not home.extract_file("P2026-002").exists()
        (home.approvals / "P2026-002.yaml").write_text(saved)
        assert build(project_assets, home, instance, "P2026-002").success
        with duckdb.connect(str(home.extract_file("P2026-002")), read_only=True) as con:
            assert sorted(p for (p,) in con.execute("SELECT DISTINCT person_id FROM individuals").fetchall()) == before


def test_revoking_a_project_never_built_leaves_a_tombstone(project_assets, home):
    with dg.instance_for_test() as instance:
        config = {"ops": {"retire_project_op": {"config": {"project": "P2026-002", "reason": "revoked by the committee"}}}}
        assert retire_project.execute_in_process(run_config=config, instance=instance, resources=resources(home, None)).success
        assert keystore(home).tombstone("P2026-002").exists() and not keystore(home).key_file("P2026-002").exists()
        result = build(project_assets, home, instance, "P2026-002")
        assert not result.success and "is retired" in failure_text(result)
        assert not home.extract_file("P2026-002").exists() and keystore(home).projects() == []


def test_a_selection_without_the_extract_builds_nothing_and_says_what_to_select(project_assets, home):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PROJECTS.name, ["P2026-001"])
        result = dg.materialize(
            project_assets, selection=[project_key("jobs")], partition_key="P2026-001", instance=instance,
            resources=resources(home), raise_on_error=False,
        )
        assert not result.success
        assert "select projects/absences, projects/external, projects/extract, projects/individuals too" in failure_text(result)
        assert not home.extract_file("P2026-001").exists()


def test_a_redelivered_external_file_rebuilds(home):
    survey = home.external / "P2026-001" / "survey_2025.csv"
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        survey.write_text(survey.read_text() + survey.read_text().splitlines()[1].replace(",3,", ",2,") + "\n")
        second = tick(project_approvals, instance, home, first.cursor)
        assert [r.partition_key for r in second.run_requests] == ["P2026-001"]
        assert second.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_external_files_are_hashed_once_while_unchanged(home, monkeypatch):
    from lmdp_pipeline import files

    hashed = []
    real = files.sha256_of
    monkeypatch.setattr(files, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        count = len(hashed)
        tick(project_approvals, instance, home, first.cursor)
    assert "survey_2025.csv" in hashed[:count] and len(hashed) == count, "the second tick re-hashed nothing"


def test_a_refused_external_file_fails_the_build_and_keeps_the_extract(project_assets, home):
    survey = home.external / "P2026-001" / "survey_2025.csv"
    with dg.instance_for_test() as instance:
        assert build(project_assets, home, instance, "P2026-001").success
        before = home.extract_file("P2026-001").read_bytes()
        approved = hashlib.sha256(survey.read_bytes()).hexdigest()
        survey.write_text(survey.read_text().replace("matricule,q_health,q_hours", "matricule,q_health,q_hours_per_week"))
        unapproved = build(project_assets, home, instance, "P2026-001")
        assert not unapproved.success and "field external.survey_2025.sha256: the file is not the one" in failure_text(unapproved)
        approval = home.approvals / "P2026-001.yaml"  # the reviewers approve the new file: its content is checked
        approval.write_text(approval.read_text().replace(approved, hashlib.sha256(survey.read_bytes()).hexdigest()))
        result = build(project_assets, home, instance, "P2026-001")
        assert not result.success and "column 3 of the header is not declared" in failure_text(result)
        assert home.extract_file("P2026-001").read_bytes() == before
        assert events(home, "build_refused", "P2026-001")


def test_an_approval_refused_for_missing_months_is_requested_again_when_they_arrive(project_assets, home, contracts):
    path = home.approvals / "P2026-002.yaml"
    path.write_text(path.read_text().replace("to: 2024-03", "to: 2024-04"))
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        [request] = [r for r in first.run_requests if r.partition_key == "P2026-002"]
        instance.add_dynamic_partitions(PROJECTS.name, ["P2026-002"])
        refused = run_request(project_assets, home, instance, request)
        assert not refused.success and "lacks 1 month(s) of 2024-01:2024-04: 2024-04" in failure_text(refused)
        assert events(home, "approval_refused", "P2026-002")
        assert tick(project_approvals, instance, home, first.cursor).run_requests == [], "nothing changed: not asked again"
        for register in ("affiliation", "individuals", "cash_benefits", "benefits_in_kind"):  # April arrives: March relabelled
            month = contracts[register].delivery.month_column
            duckdb.execute(f"COPY (SELECT * REPLACE ('2024-04' AS {month})"
                           f" FROM '{home.warehouse_file(register, '2024-03')}') TO '{home.warehouse_file(register, '2024-04')}'")
        later = tick(project_approvals, instance, home, first.cursor)
        assert [r.partition_key for r in later.run_requests] == ["P2026-002"]


def test_a_rolling_period_is_rebuilt_when_a_month_arrives(project_assets, home, contracts):
    path = home.approvals / "P2026-002.yaml"
    path.write_text(path.read_text().replace("to: 2024-03", "to: latest"))
    with dg.instance_for_test() as instance:
        first = tick(project_approvals, instance, home)
        [request] = [r for r in first.run_requests if r.partition_key == "P2026-002"]
        instance.add_dynamic_partitions(PROJECTS.name, ["P2026-002"])
        assert run_request(project_assets, home, instance, request).success
        assert tick(project_approvals, instance, home, first.cursor).run_requests == []
        for register in ("affiliation", "individuals", "cash_benefits", "benefits_in_kind"):  # April arrives: March relabelled
            month = contracts[register].delivery.month_column
            duckdb.execute(f"COPY (SELECT * REPLACE ('2024-04' AS {month})"
                           f" FROM '{home.warehouse_file(register, '2024-03')}') TO '{home.warehouse_file(register, '2024-04')}'")
        [again] = tick(project_approvals, instance, home, first.cursor).run_requests
        assert again.partition_key == "P2026-002"
        result = run_request(project_assets, home, instance, again)
        assert result.success
        extract = next(m for m in result.asset_materializations_for_node("project_extract") if m.asset_key == EXTRACT_KEY)
        assert extract.metadata["period"].value == "2024-01:2024-04"

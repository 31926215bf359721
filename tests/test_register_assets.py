"""registers/<register> as Dagster runs them: real runs on a temporary instance."""

from __future__ import annotations

import datetime as dt
import shutil
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import pytest

from assets import PlatformResource
from assets.registers import build_register_assets, register_key
from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.ingest import ingest_delivery
from lmdp_pipeline.paths import PlatformPaths
from lmdp_pipeline.synthetic import generate
from sensors.deliveries import register_deliveries
from sensors.schedules import monthly_register_refresh

from .ingest_helpers import ORDER, snapshot

MONTHS = ("2024-01", "2024-02")


@pytest.fixture(scope="module")
def landing_home(tmp_path_factory, contracts):
    home = tmp_path_factory.mktemp("landing")
    generate(home, persons=250, period=f"{MONTHS[0]}:{MONTHS[1]}", seed=5, contracts=contracts)
    return home


@pytest.fixture
def home(landing_home, tmp_path):
    target = tmp_path / "home"
    shutil.copytree(landing_home, target)
    return target


@pytest.fixture(scope="module")
def register_assets(contracts):
    return build_register_assets(contracts)


def run_month(register_assets, home, month, instance):
    return dg.materialize(
        register_assets, partition_key=month, instance=instance,
        resources={"platform": PlatformResource(home=str(home))}, raise_on_error=False,
    )


def test_a_month_materialises_with_metadata_and_passing_checks(register_assets, home):
    with dg.instance_for_test() as instance:
        result = run_month(register_assets, home, MONTHS[0], instance)
        assert result.success
        [jobs] = result.asset_materializations_for_node("registers__jobs")
        metadata = jobs.metadata
        assert len(metadata["sha256"].value) == 64
        assert metadata["rows_read"].value == metadata["rows_stored"].value == metadata["dagster/row_count"].value > 0
        assert metadata["rows_rejected"].value == 0
        assert [c.name for c in metadata["dagster/column_schema"].schema.columns][:3] == ["j_matricule", "j_employer", "j_month"]
        assert metadata["contract_version"].value == "1.1.0"
        assert metadata["data_dictionary"].value.endswith("dictionary/html/jobs.html")
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == 9 * 5
        assert all(e.passed for e in evaluations)
        assert {e.check_name for e in evaluations if e.asset_key == register_key("jobs")} == {"structure", "values", "identifiers", "integrity", "volume"}


def test_a_refused_delivery_fails_its_check_and_stops_downstream(register_assets, home):
    paths = PlatformPaths(home)
    with dg.instance_for_test() as instance:
        assert run_month(register_assets, home, MONTHS[0], instance).success
        before = snapshot(paths.warehouse)
        delivery = paths.delivery_file("enterprises", MONTHS[0])
        delivery.write_text(delivery.read_text().replace(",sarl,", ",gmbh,", 1))
        result = run_month(register_assets, home, MONTHS[0], instance)
        assert not result.success
        failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
        assert [(e.asset_key, e.check_name, e.severity) for e in failed] == [
            (register_key("enterprises"), "values", dg.AssetCheckSeverity.ERROR)
        ]
        materialised = {e.asset_key for e in result.get_asset_materialization_events()}
        assert register_key("enterprises") not in materialised
        for downstream in ("jobs", "affiliation", "absences"):
            assert register_key(downstream) not in materialised, f"{downstream} ran after a refused upstream"
        assert snapshot(paths.warehouse) == before
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert "enterprises_2024-01.csv refused" in failure.step_failure_data.error.message


def _ingest_all(home: str, month: str) -> int:
    contracts = load_contracts()
    paths = PlatformPaths(__import__("pathlib").Path(home))
    return sum(ingest_delivery(paths, contracts, register, month).rows_stored for register in ORDER)


def test_parallel_months_do_not_collide(home):
    with ProcessPoolExecutor(max_workers=2) as pool:
        stored = list(pool.map(_ingest_all, [str(home)] * 2, MONTHS))
    assert all(stored)
    for register in ORDER:
        files = sorted(p.name for p in (home / "warehouse" / register).iterdir())
        assert files == [f"{register}_{m}.parquet" for m in MONTHS]


def sensor_context(instance, home, cursor=None):
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={"platform": PlatformResource(home=str(home))})


def evaluate(instance, home, cursor=None):
    context = sensor_context(instance, home, cursor)
    requests = list(register_deliveries(context) or [])
    return requests, context.cursor


def test_sensor_runs_each_new_or_changed_file_once(register_assets, home):
    with dg.instance_for_test() as instance:
        requests, cursor = evaluate(instance, home)
        assert sorted(r.partition_key for r in requests) == list(MONTHS), "one run per month"
        assert all(len(r.asset_selection) == 9 for r in requests)
        again, cursor = evaluate(instance, home, cursor)
        assert again == [], "the same files never run twice"
        delivery = PlatformPaths(home).delivery_file("jobs", MONTHS[1])
        delivery.write_text(delivery.read_text().rsplit("\n", 2)[0] + "\n")
        changed, cursor = evaluate(instance, home, cursor)
        assert [(r.partition_key, r.asset_selection) for r in changed] == [(MONTHS[1], [register_key("jobs")])]
        assert changed[0].run_key.startswith(f"{MONTHS[1]}:")
        assert changed[0].run_key not in {r.run_key for r in requests}


def test_a_redelivered_register_revalidates_the_registers_that_reference_it(register_assets, home):
    with dg.instance_for_test() as instance:
        _, cursor = evaluate(instance, home)
        delivery = PlatformPaths(home).delivery_file("enterprises", MONTHS[0])
        rows = delivery.read_text().splitlines()
        delivery.write_text("\n".join(rows[:1] + rows[1:][::-1]) + "\n")  # same rows, new bytes
        [request], _ = evaluate(instance, home, cursor)
        assert request.partition_key == MONTHS[0]
        assert {k.path[-1] for k in request.asset_selection} == {"enterprises", "affiliation", "jobs", "absences", "cash_benefits", "reclassifications", "benefits_in_kind"}


def test_sensor_skips_files_already_materialised(register_assets, home):
    with dg.instance_for_test() as instance:
        assert run_month(register_assets, home, MONTHS[0], instance).success
        requests, _ = evaluate(instance, home)
        assert {r.partition_key for r in requests} == {MONTHS[1]}


def test_schedule_refreshes_the_previous_month_in_luxembourg_time():
    from definitions import defs

    schedule = defs.resolve_schedule_def(monthly_register_refresh.name)
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 12, 5, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    )
    [request] = list(schedule.evaluate_tick(context).run_requests)
    assert request.partition_key == "2026-11"
    assert schedule.execution_timezone == "Europe/Luxembourg"
    assert schedule.job_name == "register_refresh"


def test_a_headerless_delivery_leaves_no_identifier_in_dagster_storage_or_reports(register_assets, home, tmp_path):
    """The first data row read as a header would echo a matricule into the failure, the reports and Dagster's databases."""
    paths = PlatformPaths(home)
    delivery = paths.delivery_file("individuals", MONTHS[0])
    lines = delivery.read_text().splitlines()
    identifiers = {line.split(",")[0] for line in lines[1:]}
    names = {line.split(",")[-4] for line in lines[1:]}  # the direct identifiers come last: a family name among them
    delivery.write_text("\n".join(lines[1:]) + "\n")
    storage = tmp_path / "dagster"
    storage.mkdir()
    with dg.instance_for_test(temp_dir=str(storage)) as instance:
        result = run_month(register_assets, home, MONTHS[0], instance)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert "does the file lack its header line?" in failure.step_failure_data.user_failure_data.description
    stored = b"".join(p.read_bytes() for p in storage.rglob("*") if p.is_file())
    stored += b"".join(p.read_bytes() for p in paths.quarantine.rglob("report.*"))
    stored += paths.audit.joinpath("audit.jsonl").read_bytes()
    assert stored and not [i for i in identifiers | names if i.encode() in stored]


def test_deliveries_are_audited_by_their_runs_with_the_chain_head_in_the_event_log(register_assets, home):
    from assets.audit_log import recorded_head
    from lmdp_pipeline.audit import AuditLog, verify

    paths = PlatformPaths(home)
    delivery = paths.delivery_file("enterprises", MONTHS[0])
    delivery.write_text(delivery.read_text().replace(",sarl,", ",gmbh,", 1))
    with dg.instance_for_test() as instance:
        result = run_month(register_assets, home, MONTHS[0], instance)
        entries = AuditLog(paths.audit).entries()
        refused = [e for e in entries if e["event"] == "delivery_refused"]
        accepted = [e for e in entries if e["event"] == "delivery_accepted"]
        assert [(e["register"], e["month"]) for e in refused] == [("enterprises", MONTHS[0])]
        assert refused[0]["sha256"] == __import__("hashlib").sha256(delivery.read_bytes()).hexdigest()
        assert {"individuals", "family_links"} == {e["register"] for e in accepted} and accepted[0]["rows"] > 0
        assert {e["run_id"] for e in entries} == {result.run_id}
        assert verify(AuditLog(paths.audit).path, recorded_head(instance)).ok


def test_warehouse_and_quarantine_files_are_private(register_assets, home, permissive_umask):
    import stat

    paths = PlatformPaths(home)
    delivery = paths.delivery_file("enterprises", MONTHS[1])
    delivery.write_text(delivery.read_text().replace(",sarl,", ",gmbh,", 1))
    with dg.instance_for_test() as instance:
        run_month(register_assets, home, MONTHS[0], instance)
        run_month(register_assets, home, MONTHS[1], instance)
    files = [p for zone in (paths.warehouse, paths.quarantine) for p in zone.rglob("*")]
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "report.md" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path

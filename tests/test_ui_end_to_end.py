"""The operator's path, end to end: Dagster webserver and daemon on a fresh instance, an approval dropped
into approvals/, the sensor's build, its checks read back through GraphQL, the asset graph in a real
headless Chromium (Debian's, driven by Playwright; no browser download), then the project revoked with
``lmdp revoke``: its retire_project run and the audit chain heads in the event log, read through GraphQL
and shown in the run's page.

Slow (about two minutes): it ingests two months through Dagster first, then waits for the daemon.
The screenshot is kept under ``LMDP_E2E_ARTIFACTS`` when set (CI keeps it), else in the test's tmp folder.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lmdp_pipeline.paths import PROJECT_ROOT

from .dagster_services import free_port, graphql, start_service, stop_service, wait_for

CHROMIUM = Path(os.environ.get("LMDP_CHROMIUM", "/usr/bin/chromium"))
PROJECT = "P2026-001"
CHECK_NAMES = ["no_direct_identifiers", "scope_and_period", "levels_not_finer", "approved_items_only", "pseudonyms_unique",
               "row_order", "period_complete"]  # blocking checks that pass
ACCEPTED_RISK = "disclosure_risk"  # on 300 persons the example exceeds the policy; its approval accepts it: a warning
STARTUP_SECONDS = 180
BUILD_SECONDS = 300

pytestmark = pytest.mark.slow


RUNS = """query ($job: String!) { runsOrError(filter: {pipelineName: $job}) {
  ... on Runs { results { runId status tags { key value } } } } }"""
OBSERVATIONS = """query { assetOrError(assetKey: {path: ["audit_log"]}) { ... on Asset {
  assetObservations(limit: 50) { runId metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }"""
CHECK = """query ($key: AssetKeyInput!, $name: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $name, partition: $partition, limit: 1) {
    runId status evaluation { success } } }"""
MATERIALIZATIONS = """query ($key: AssetKeyInput!, $partition: String!) {
  assetOrError(assetKey: $key) { ... on Asset { assetMaterializations(partitions: [$partition], limit: 1) {
    runId metadataEntries { label } } } } }"""


@pytest.fixture
def platform(tmp_path):
    """A platform home with two months ingested through Dagster, the approvals held back, and its environment."""
    home, held = tmp_path / "home", tmp_path / "held"
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    env = os.environ | {"LMDP_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "LMDP_MASTER_KEY": master}
    env.pop("LMDP_MASTER_KEY_FILE", None)
    lmdp = str(Path(sys.executable).parent / "lmdp")
    for args in (["sample-data", "--persons", "300", "--months", "2024-01:2024-02"], ["refresh"]):
        done = subprocess.run([lmdp, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    shutil.move(home / "approvals", held)
    (home / "approvals").mkdir()
    return home, held, env, master


@pytest.fixture
def dagster_dev(platform, tmp_path):
    """``dagster dev`` (webserver and daemon) on workspace.yaml, as ``make ui`` starts it; stopped after the test."""
    home, _, env, _ = platform
    port, log = free_port(), tmp_path / "dagster-dev.log"
    process = start_service([str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                             "-p", str(port)], env, log)
    try:
        wait_for("the webserver", STARTUP_SECONDS,
                 lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).status == 200, [log])
        yield port, log
    finally:
        stop_service(process)


def test_an_approval_dropped_in_is_built_by_the_sensor_and_shown_in_the_ui(platform, dagster_dev, tmp_path):
    home, held, _, master = platform
    port, log = dagster_dev
    incoming = home / "approvals" / f".{PROJECT}.yaml.part"
    shutil.copy(held / f"{PROJECT}.yaml", incoming)
    incoming.rename(home / "approvals" / f"{PROJECT}.yaml")  # dropped atomically, as docs/operations.md says

    def finished_run(job: str = "project_build"):
        runs = graphql(port, RUNS, {"job": job})["runsOrError"]["results"]
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done[0] if done else None

    run = wait_for("the sensor's project_build run", BUILD_SECONDS, finished_run, [log])
    assert run["status"] == "SUCCESS", f"run {run['runId']} ended {run['status']}"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == PROJECT and tags["dagster/sensor_name"] == "project_approvals"
    assert (home / "extracts" / f"{PROJECT}.duckdb").is_file()

    extract_key = {"path": ["projects", "extract"]}
    for name in CHECK_NAMES:
        [execution] = graphql(port, CHECK, {"key": extract_key, "name": name, "partition": PROJECT})["assetCheckExecutions"]
        assert (execution["runId"], execution["status"], execution["evaluation"]["success"]) == (run["runId"], "SUCCEEDED", True), name
    [warning] = graphql(port, CHECK, {"key": extract_key, "name": ACCEPTED_RISK, "partition": PROJECT})["assetCheckExecutions"]
    assert (warning["runId"], warning["status"], warning["evaluation"]["success"]) == (run["runId"], "FAILED", False)
    for path, label in [(["projects", "external"], "linkage"), (["projects", "jobs"], "dagster/column_lineage"), (["projects", "extract"], "path")]:
        asset = graphql(port, MATERIALIZATIONS, {"key": {"path": path}, "partition": PROJECT})["assetOrError"]
        [materialization] = asset["assetMaterializations"]
        assert materialization["runId"] == run["runId"] and label in {e["label"] for e in materialization["metadataEntries"]}, path

    artifacts = Path(os.environ.get("LMDP_E2E_ARTIFACTS", tmp_path))
    screenshot = _asset_graph_screenshot(port, artifacts)
    assert screenshot.stat().st_size > 20_000, "a rendered graph, not a blank page"

    revoked = subprocess.run([str(Path(sys.executable).parent / "lmdp"), "revoke", PROJECT, "--reason", "end-to-end test"],
                             env=platform[2], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    retire = wait_for("the retire_project run", 60, lambda: finished_run("retire_project"), [log])
    assert retire["status"] == "SUCCESS" and not (home / "extracts" / f"{PROJECT}.duckdb").exists()
    # the retirement's own line (a release the sensor asks for afterwards may be refused, and audited, after it)
    last = [line for line in map(json.loads, (home / "audit" / "audit.jsonl").read_text().splitlines())
            if line["event"] == "project_retired"][-1]
    heads = [{e["label"]: e.get("intValue", e.get("text")) for e in o["metadataEntries"]} | {"runId": o["runId"]}
             for o in graphql(port, OBSERVATIONS)["assetOrError"]["assetObservations"]]
    assert {"sequence": last["seq"], "hash": last["hash"], "event": "project_retired", "project": PROJECT, "runId": retire["runId"]} in heads
    assert {h["runId"] for h in heads} >= {run["runId"], retire["runId"]}, "each run recorded the heads of the lines it wrote"
    page = _run_page_screenshot(port, retire["runId"], artifacts)
    assert page.stat().st_size > 20_000
    assert master not in log.read_text(errors="replace"), "the master key never reaches the logs"


BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _run_page_screenshot(port: int, run_id: str, folder: Path) -> Path:
    """The retire_project run's page, once its event log shows the audit chain head it recorded."""
    from playwright.sync_api import sync_playwright

    target = folder / "retire-project-run.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/runs/{run_id}", wait_until="networkidle")
            skip = page.get_by_role("button", name="Skip")
            if skip.count():
                skip.click()
            page.get_by_text("retire_project_op").first.wait_for(timeout=60_000)
            page.get_by_text("audit_log").first.wait_for(timeout=60_000)
            page.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()
    return target


def _asset_graph_screenshot(port: int, folder: Path) -> Path:
    """The ``projects`` asset group's graph in headless Chromium, once its nodes are drawn."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "asset-graph-projects.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/locations/lmdp_pipeline/asset-groups/projects", wait_until="networkidle")
            skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog of dagster dev
            if skip.count():
                skip.click()
            page.get_by_text("extract", exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("external", exact=True).first.wait_for(timeout=60_000)
            page.get_by_text(f"{len(CHECK_NAMES)} / {len(CHECK_NAMES) + 1} Passed").first.wait_for(timeout=60_000)
            page.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()
    return target

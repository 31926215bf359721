"""A request's life: released, sent to review, reviewed, refused; retired projects; blocking checks; Dagster and the CLI.

Real DuckDB extracts (hand-made), real Dagster runs on a temporary instance, the real
audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest
import yaml

from assets import PlatformResource
from assets.audit_log import AUDIT_LOG_KEY, recorded_head
from assets.outputs import OUTPUT_REQUESTS, RELEASE_KEY, partition_key, release_request_op, release_run_config
from lmdp_pipeline.audit import AuditLog, verify
from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.files import sha256_of
from lmdp_pipeline.outputs import examination as examination_module
from lmdp_pipeline.outputs.ledger import read_decision
from lmdp_pipeline.outputs.examination import examine, request_fingerprint
from lmdp_pipeline.outputs.release import OutputChecksFailed, OutputRefused, release_request
from lmdp_pipeline.outputs.suppression import is_suppressed
from lmdp_pipeline.paths import PROJECT_ROOT, PlatformPaths
from lmdp_pipeline.projects.lifecycle import retire_project
from sensors.outputs import output_requests

from .outputs_helpers import PERSON, PROJECT, column, grid_rows, make_extract, pid, write_request

GROUPS = column("grp", "VARCHAR", "group", {"A": "a", "B": "b"})
GROUPS_ABC = column("grp", "VARCHAR", "group", {"A": "a", "B": "b", "C": "c"})
KINDS = column("kind", "VARCHAR", "kind", {"x": "x", "y": "y"})
TABLE = {"t": {"from": "people", "rows": "grp", "columns": "kind", "statistic": "count"}}
CELLS = {("A", "x"): 9, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40}
MODEL = {"kind": "model", "description": "A logistic model of returning to work.", "residual_dof": 120}


@pytest.fixture
def home(tmp_path) -> PlatformPaths:
    paths = PlatformPaths(tmp_path / "home")
    make_extract(paths, {"people": ([PERSON, GROUPS, KINDS], grid_rows(CELLS)[0])})
    return paths


def audit(home) -> AuditLog:
    return AuditLog(home.audit)


def events(home) -> list[str]:
    return [e["event"] for e in audit(home).entries()]


def attach(home, request: str, name: str, content: bytes) -> None:
    folder = home.output_attachments_dir(PROJECT, request)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)


def released_files(home) -> list[str]:
    return sorted(str(p.relative_to(home.outputs)) for p in home.outputs.rglob("released/*/*"))


def test_a_request_of_tables_is_released_with_its_evidence_and_audited(home, contracts):
    result = release_request(home, contracts, write_request(home, "r1", TABLE), audit(home), requested_by="test", run_id="run-1")
    folder = home.output_released_dir(PROJECT, "r1")
    assert result.folder == folder and sorted(p.name for p in folder.iterdir()) == [
        "SHA256SUMS", "checksums", "results.json", "t.csv", "t.xlsx"]
    assert result.files["t.csv"] == sha256_of(folder / "t.csv")
    assert events(home) == ["output_requested", "output_released"]
    line = audit(home).entries()[-1]
    assert line["tables"]["t"] == {"status": "pass", "cells": 9, "suppressed": 4, "secondary": 3, "review_cells": 0, "unprotectable": 0}
    assert line["checks"] == dict.fromkeys(["threshold", "dominance", "p_percent", "differencing", "suppression_complete"], True)
    assert read_decision(home, PROJECT, "r1")["status"] == "released"
    assert len(home.output_ledger_records(PROJECT)) == 1


def test_released_outputs_are_final(home, contracts):
    path = write_request(home, "r1", TABLE)
    release_request(home, contracts, path, audit(home))
    before = (home.output_released_dir(PROJECT, "r1") / "t.csv").read_bytes()
    write_request(home, "r1", {"t": {**TABLE["t"], "columns": None}})
    with pytest.raises(OutputRefused, match="released outputs are final"):
        release_request(home, contracts, path, audit(home))
    assert (home.output_released_dir(PROJECT, "r1") / "t.csv").read_bytes() == before
    assert read_decision(home, PROJECT, "r1")["status"] == "released" and events(home)[-1] == "output_refused"


def test_an_attached_model_goes_to_review_and_nothing_is_released(home, contracts):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", b"coef 0.42 (0.11)\nresidual df 120\n")
    result = release_request(home, contracts, path, audit(home))
    assert result.examination.status == "review" and released_files(home) == []
    checking = home.output_checking_dir(PROJECT, "m1")
    document = json.loads((checking / "results.json").read_text())
    assert document["results"]["model.txt"]["type"] == "custom" and document["results"]["model.txt"]["status"] == "review"
    assert (checking / "model.txt").read_bytes() == b"coef 0.42 (0.11)\nresidual df 120\n"
    assert events(home)[-1] == "output_review" and read_decision(home, PROJECT, "m1")["status"] == "review"


@pytest.mark.parametrize(("name", "content", "declared", "words"), [
    ("model.txt", b"ok", {**MODEL, "residual_dof": 5}, "the model has 5 residual degrees of freedom; the policy asks for at least 10"),
    ("figure.svg", b"<svg/>", {"kind": "figure", "description": "A bar chart of the table."}, ".svg files carry the data points"),
    ("figure.SVG", b"<svg/>", {"kind": "figure", "description": "A bar chart of the table."}, ".SVG files carry the data points"),
    ("model.txt", f"outlier: {pid(3)}\n".encode(), MODEL, "contains 1 pseudonym(s) of the project's extract"),
    ("model.txt", b"employer 19632001234 dropped\n", MODEL, "contains a run of 11 digits at byte 9"),
])
def test_an_attached_file_that_breaks_a_rule_refuses_the_request(home, contracts, name, content, declared, words):
    path = write_request(home, "m1", TABLE, attachments={name: declared})
    attach(home, "m1", name, content)
    with pytest.raises(OutputRefused) as refused:
        release_request(home, contracts, path, audit(home))
    assert words in str(refused.value) and f"field attachments.{name}" in str(refused.value)
    assert pid(3) not in str(refused.value) and "19632001234" not in str(refused.value)
    assert released_files(home) == [] and not home.output_checking_dir(PROJECT, "m1").exists()


def test_a_pseudonym_of_any_pseudonym_column_refuses_an_attached_file(home, contracts):
    """An employer's pseudonym, in a second table of the extract, is looked up as well as the persons'."""
    employer = "7e57000000000abc"
    rows = grid_rows(CELLS)[0]
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], rows),
                        "jobs": ([PERSON, column("employer_id", "VARCHAR", "pseudonym")], [(rows[0][0], employer)])})
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", f"fixed effect for employer {employer.upper()}: 0.3\n".encode())
    with pytest.raises(OutputRefused) as refused:
        release_request(home, contracts, path, audit(home))
    assert "contains 1 pseudonym(s) of the project's extract" in str(refused.value) and employer not in str(refused.value)


def test_a_link_is_not_an_attached_file(home, contracts):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    home.output_attachments_dir(PROJECT, "m1").mkdir(parents=True)
    (home.output_attachments_dir(PROJECT, "m1") / "model.txt").symlink_to(home.extract_file(PROJECT))
    assert any("is not a regular file" in r for r in examine(home, contracts, path).all_reasons)


def review(home, request: str, decision: str, reviewer: str = "m.checker", sha: str | None = None) -> None:
    path = home.output_review_file(PROJECT, request)
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = sha or sha256_of(home.output_request_file(PROJECT, request))
    path.write_text(f"request_sha256: '{sha}'\nreviewer: {reviewer}\ndecision: {decision}\n"
                    "reason: The model shows coefficients only, on 120 residual degrees of freedom.\n")


def test_a_checkers_review_releases_what_was_reviewed(home, contracts):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", b"coef 0.42\n")
    release_request(home, contracts, path, audit(home))
    review(home, "m1", "release")
    result = release_request(home, contracts, path, audit(home))
    assert result.examination.status == "released" and result.examination.review.reviewer == "m.checker"
    document = json.loads((home.output_released_dir(PROJECT, "m1") / "results.json").read_text())
    assert document["results"]["model.txt"]["status"] == "approved"
    assert "Output checker m.checker: The model shows coefficients only" in document["results"]["model.txt"]["comments"][-1]
    assert audit(home).entries()[-1]["reviewer"] == "m.checker"


@pytest.mark.parametrize(("reviewer", "sha", "note"), [
    ("a.researcher", None, "a.researcher is a researcher of the project and cannot check its outputs"),
    ("m.checker", "0" * 64, "reviews another version of the request"),
])
def test_a_review_that_does_not_apply_is_ignored(home, contracts, reviewer, sha, note):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", b"coef 0.42\n")
    review(home, "m1", "release", reviewer, sha)
    examination = examine(home, contracts, path)
    assert examination.status == "review" and any(note in n for n in examination.notes)


def test_a_checker_refuses(home, contracts):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", b"coef 0.42\n")
    review(home, "m1", "refuse")
    with pytest.raises(OutputRefused, match="refused by output checker m.checker"):
        release_request(home, contracts, path, audit(home))


def test_a_review_of_tables_that_changed_since_does_not_release(home, contracts):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", b"coef 0.42\n")
    release_request(home, contracts, path, audit(home))
    review(home, "m1", "release")
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], grid_rows({**CELLS, ("B", "y"): 45})[0])})  # rebuilt
    examination = examine(home, contracts, path)
    assert examination.status == "review" and any("changed since the review" in n for n in examination.notes)


def test_a_retired_project_refuses_requests_and_keeps_what_it_released(home, contracts):
    release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    retire_project(home, PROJECT, "revoked", True, audit(home))
    assert not home.extract_file(PROJECT).exists() and released_files(home) != []
    with pytest.raises(OutputRefused, match=f"project {PROJECT} is retired"):
        release_request(home, contracts, write_request(home, "r2", TABLE), audit(home))


def test_a_failing_blocking_check_publishes_nothing(home, contracts, monkeypatch):
    """A planted bug (no secondary suppression) is caught on the candidate files; nothing is published or recorded."""
    monkeypatch.setattr(examination_module, "protect", lambda cells: [])
    with pytest.raises(OutputChecksFailed) as failed:
        release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    checks = {c.name: c.problems for c in failed.value.checks}
    assert checks["suppression_complete"] == ["table t, cell (A, x): its value can be recomputed from the published cells and totals"]
    assert released_files(home) == [] and home.output_ledger_records(PROJECT) == []
    assert not home.output_checking_dir(PROJECT, "r1").exists() and home.output_candidate_leftovers(PROJECT) == []
    assert events(home)[-1] == "output_failed" and read_decision(home, PROJECT, "r1") is None


def test_a_planted_threshold_bug_is_caught(home, contracts, monkeypatch):
    monkeypatch.setattr(examination_module, "apply_rules", lambda cells, policy, zeros: None)
    with pytest.raises(OutputChecksFailed) as failed:
        release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    assert {c.name for c in failed.value.checks if not c.passed} == {"threshold"}


def test_the_blocking_check_catches_a_published_zero_alone(home, contracts, monkeypatch):
    """Every cell but one has 20 persons or more; (A, x) has none and is not declared structural. With the rules
    planted off, the zero would be published: the check, counting from the rows, refuses it."""
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], grid_rows({("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40})[0])})
    monkeypatch.setattr(examination_module, "apply_rules", lambda cells, policy, zeros: None)
    with pytest.raises(OutputChecksFailed) as failed:
        release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    checks = {c.name: c.problems for c in failed.value.checks if not c.passed}
    assert checks == {"threshold": ["table t, cell (A, x): a published zero that is not declared structural"]}
    assert released_files(home) == [] and home.output_ledger_records(PROJECT) == []


def test_the_blocking_check_knows_cells_cannot_be_negative(home, contracts, monkeypatch):
    """Four inner cells suppressed on one cycle, two of them zeros on either side of (A, x): the cycle cannot move
    (a zero cannot go lower), so the published totals give (A, x) = 5. A planted suppression leaves exactly that."""
    from lmdp_pipeline.outputs.rules import SECONDARY

    from .test_outputs_rules import lp_ranges

    kinds = column("kind", "VARCHAR", "kind", {"x": "x", "y": "y", "z": "z"})
    cells = {("A", "x"): 5, ("A", "z"): 10, ("B", "x"): 12, ("B", "z"): 10, ("C", "x"): 10, ("C", "y"): 15, ("C", "z"): 10}
    make_extract(home, {"people": ([PERSON, GROUPS_ABC, kinds], grid_rows(cells)[0])})

    def cycle_through_zeros(table):
        table.cells[("B", "x")].secondary = True
        table.cells[("B", "x")].reasons.append(SECONDARY)
        return []

    monkeypatch.setattr(examination_module, "protect", cycle_through_zeros)
    lines = [line.split(",") for line in examine(home, contracts, write_request(home, "r0", TABLE)).tables[0].csv.splitlines()]
    assert lines[1:3] == [["A", "[c]", "[c]", "10", "15"], ["B", "[c]", "[c]", "10", "22"]]
    assert lp_ranges(lines)[(0, 0)] == (5, 5), "cells at least zero pin it (computed here from the CSV alone)"
    with pytest.raises(OutputChecksFailed) as failed:
        release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    problems = {c.name: c.problems for c in failed.value.checks if not c.passed}
    assert set(problems) == {"suppression_complete"}
    assert "table t, cell (A, x): its value can be recomputed from the published cells and totals" in problems["suppression_complete"]
    assert released_files(home) == []


def test_a_project_s_own_higher_threshold_is_enforced_and_checked(home, contracts, monkeypatch):
    """The risk acceptance's output threshold (recorded in the extract) holds cells of 20 back; a lower one changes nothing."""
    safe_at_ten = {("A", "x"): 20, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40}
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], grid_rows(safe_at_ten)[0])}, manifest={"output_threshold": "25"})
    raised = examine(home, contracts, write_request(home, "r1", TABLE))
    assert raised.rules.threshold == 25 and any("at least 25 persons" in n for n in raised.notes)
    held_back = {key for key, cell in raised.tables[0].cells.cells.items() if is_suppressed(cell)}
    assert {("A", "x"), ("A", "y")} <= held_back, "20 persons: published at the policy's 10, held back at 25"
    monkeypatch.setattr(examination_module, "apply_rules", lambda cells, policy, zeros: None)
    with pytest.raises(OutputChecksFailed) as failed:
        release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    assert {c.name for c in failed.value.checks if not c.passed} == {"threshold"}, "the blocking check holds cells to 25 too"
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], grid_rows(safe_at_ten)[0])}, manifest={"output_threshold": "5"})
    lower = examine(home, contracts, write_request(home, "r2", TABLE))
    assert lower.rules.threshold == 10 and lower.status == "released"


def test_the_policy_applied_is_the_one_beside_the_contracts(home, contracts_copy):
    """A deployment that points the platform at its own contracts folder gets its own output threshold, in the
    examination and in the release's blocking check, never the repository's (which publishes cells of 20)."""
    policy_file = contracts_copy / "disclosure_policy.yaml"
    policy = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    policy["output"]["threshold"] = 25
    policy_file.write_text(yaml.safe_dump(policy), encoding="utf-8")
    deployment = load_contracts(contracts_copy)
    safe_at_ten = {("A", "x"): 20, ("A", "y"): 20, ("B", "x"): 30, ("B", "y"): 40}
    make_extract(home, {"people": ([PERSON, GROUPS, KINDS], grid_rows(safe_at_ten)[0])})
    examined = examine(home, deployment, write_request(home, "r1", TABLE))
    assert examined.rules.threshold == 25
    assert {key for key, cell in examined.tables[0].cells.cells.items() if is_suppressed(cell)} >= {("A", "x"), ("A", "y")}
    result = release_request(home, deployment, write_request(home, "r1", TABLE), audit(home))
    assert result.examination.rules.threshold == 25
    assert audit(home).entries()[-1]["tables"]["t"]["suppressed"] >= 2


def test_a_killed_releases_leftovers_are_removed(home, contracts):
    leftover = home.output_candidate_dir(home.output_released_dir(PROJECT, "r0"), "dead")
    leftover.mkdir(parents=True)
    (leftover / "t.csv").write_text("half")
    release_request(home, contracts, write_request(home, "r1", TABLE), audit(home))
    assert not leftover.exists()


# --- Dagster -----------------------------------------------------------------------------------------


def resources(home):
    return {"platform": PlatformResource(home=str(home.home))}


def tick(home, instance, cursor=None):
    return output_requests(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources(home)))


def run(home, instance, request: dg.RunRequest):
    if not instance.has_dynamic_partition(OUTPUT_REQUESTS.name, request.partition_key):
        instance.add_dynamic_partitions(OUTPUT_REQUESTS.name, [request.partition_key])
    return dg.materialize([release_request_op], partition_key=request.partition_key, instance=instance, resources=resources(home),
                          run_config=request.run_config, tags=request.tags, raise_on_error=False)


def test_the_sensor_decides_and_the_run_releases_with_blocking_checks(home, contracts):
    path = write_request(home, "r1", TABLE)
    with dg.instance_for_test() as instance:
        result = tick(home, instance)
        [request] = result.run_requests
        assert request.partition_key == partition_key(PROJECT, "r1") == f"{PROJECT}/r1"
        assert request.run_key == f"{PROJECT}/r1:{request_fingerprint(home, path)}"
        assert request.run_config == release_run_config(request_fingerprint(home, path), "sensor output_requests")
        assert result.dynamic_partitions_requests[0].partition_keys == [f"{PROJECT}/r1"]
        assert events(home) == [], "the sensor only decides"
        assert tick(home, instance, result.cursor).run_requests == []
        outcome = run(home, instance, request)
        assert outcome.success
        checks = {e.check_name: e.passed for e in outcome.get_asset_check_evaluations()}
        assert checks == dict.fromkeys(["threshold", "dominance", "p_percent", "differencing", "suppression_complete"], True)
        [materialization] = outcome.asset_materializations_for_node("release_request")
        assert materialization.asset_key == RELEASE_KEY and materialization.metadata["status"].value == "released"
        observed = sorted(r.asset_observation.metadata["sequence"].value for r in instance.fetch_observations(AUDIT_LOG_KEY, limit=10).records)
        assert observed == [1, 2] and verify(audit(home).path, recorded_head(instance)).ok
        assert {e["run_id"] for e in audit(home).entries()} == {outcome.run_id}
        fresh = tick(home, instance)  # a fresh cursor: the released request starts nothing
        assert fresh.run_requests == []


def test_a_changed_request_gets_a_new_run_and_a_stale_one_is_refused(home, contracts):
    path = write_request(home, "m1", TABLE, attachments={"model.txt": MODEL})
    attach(home, "m1", "model.txt", b"coef 0.42\n")
    with dg.instance_for_test() as instance:
        first = tick(home, instance)
        assert run(home, instance, first.run_requests[0]).success
        assert read_decision(home, PROJECT, "m1")["status"] == "review"
        review(home, "m1", "release")
        second = tick(home, instance, first.cursor)
        assert [r.run_key for r in second.run_requests] == [f"{PROJECT}/m1:{request_fingerprint(home, path)}"]
        stale = run(home, instance, first.run_requests[0])
        assert not stale.success and events(home)[-1] == "output_refused"
        assert "changed after this release was asked for" in audit(home).entries()[-1]["reasons"][0]
        assert run(home, instance, second.run_requests[0]).success
        assert read_decision(home, PROJECT, "m1")["status"] == "released"


def test_a_refused_request_fails_its_run_with_the_reasons(home, contracts):
    write_request(home, "bad", {"t": {**TABLE["t"], "rows": "colour"}})
    with dg.instance_for_test() as instance:
        outcome = run(home, instance, tick(home, instance).run_requests[0])
        assert not outcome.success
        failure = next(e for e in outcome.all_events if e.is_step_failure).step_failure_data.user_failure_data.description
        assert "field tables.t.rows: unknown variable colour" in failure
        assert events(home) == ["output_requested", "output_refused"]


# --- command line -------------------------------------------------------------------------------------


def lmdp(home, *args):
    env = {**os.environ, "LMDP_HOME": str(home.home)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([sys.executable, "-m", "lmdp_cli", "outputs", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_outputs_check_previews_the_decision_and_the_suppressed_cells(home):
    path = write_request(home, "r1", TABLE)
    result = lmdp(home, "check", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: would be released" in result.stdout
    assert "table t: 9 cells, 4 suppressed (3 to protect others)" in result.stdout
    assert "(A, x): MinimumThresholdCheck" in result.stdout and "(B, y): SecondarySuppression" in result.stdout
    assert not home.output_decision_file(PROJECT, "r1").exists() and not home.audit.exists(), "a preview writes nothing"
    bad = lmdp(home, "check", str(write_request(home, "r2", {"t": {**TABLE["t"], "rows": "colour"}})))
    assert bad.returncode == 1 and "would be refused (1 problem(s))" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_outputs_release_runs_through_dagster(home):
    path = write_request(home, "r1", TABLE)
    result = lmdp(home, "release", str(path))
    assert result.returncode == 0, result.stderr
    assert f"output_release [{PROJECT}/r1]: succeeded" in result.stdout and "r1 of P2026-090: released" in result.stdout
    again = lmdp(home, "release", str(path))
    assert again.returncode == 1 and "released outputs are final" in again.stderr


def test_negative_values_go_to_review_and_a_checker_can_release_them(tmp_path, contracts):
    home = PlatformPaths(tmp_path / "home")
    amount = column("amount", "DOUBLE", "default")
    rows = [(pid(i), "A", 100.0 + i) for i in range(12)] + [(pid(20 + i), "B", 50.0) for i in range(12)] + [(pid(40), "B", -30.0)]
    make_extract(home, {"payments": ([PERSON, GROUPS, amount], rows)})
    path = write_request(home, "n1", {"t": {"from": "payments", "rows": "grp", "statistic": "sum", "value": "amount"}})
    result = release_request(home, contracts, path, audit(home))
    assert result.examination.status == "review"
    assert result.examination.review_reasons == ["table t: 2 cell(s) with negative values, where dominance is not defined"]
    evidence = json.loads((home.output_checking_dir(PROJECT, "n1") / "results.json").read_text())["results"]["t"]
    assert evidence["status"] == "review" and evidence["outcome"]["sum of amount"]["B"] == "NegativeValues; "
    review(home, "n1", "release")
    assert release_request(home, contracts, path, audit(home)).examination.status == "released"
    assert (home.output_released_dir(PROJECT, "n1") / "t.csv").read_text().splitlines()[2] == "B,570.00"


@pytest.mark.slow
def test_the_example_requests_on_a_built_extract(small_home, contracts, tmp_path):
    """The demo's requests on a real build of P2026-001: the tables are released at the threshold its risk acceptance
    set (recorded in the extract by the build), the model goes to review."""
    import secrets

    from lmdp_pipeline.keys import Keystore, MasterKey
    from lmdp_pipeline.period import Period
    from lmdp_pipeline.projects.build import build_extract
    from lmdp_pipeline.synthetic.examples import MODEL_REQUEST, SURVEY_PROJECT, TABLES_REQUEST, write_requests

    from .conftest import approved_files, plan_for, project_home

    home = project_home(small_home, tmp_path / "home")
    key = Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test")).create(SURVEY_PROJECT)
    build_extract(approved_files(plan_for(SURVEY_PROJECT, contracts), home), home, key, {"approval_sha256": "0" * 64})
    write_requests(home, Period.parse("2024-02:2024-03"))
    tables = release_request(home, contracts, home.output_request_file(SURVEY_PROJECT, TABLES_REQUEST), audit(home))
    model = release_request(home, contracts, home.output_request_file(SURVEY_PROJECT, MODEL_REQUEST), audit(home))
    assert (tables.examination.status, model.examination.status) == ("released", "review")
    assert tables.examination.rules.threshold == 20, "the approval's accepted risk commits its outputs to 20 persons per cell"
    import duckdb

    with duckdb.connect(str(home.extract_file(SURVEY_PROJECT)), read_only=True) as con:
        pseudonyms = {p for (p,) in con.execute("SELECT person_id FROM individuals UNION SELECT employer_id FROM jobs").fetchall()}
    for path in home.outputs.rglob("*"):
        if path.is_file() and path.suffix != ".xlsx":
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not any(p in text for p in pseudonyms if p), path

"""`lmdp` as a user runs it: a subprocess with its own LMDP_HOME."""

import hashlib
import os
import re
import subprocess
import sys

import pytest

from lmdp_pipeline.paths import PROJECT_ROOT


def lmdp(home, *args, **extra_env):
    env = {**os.environ, "LMDP_HOME": str(home)}
    for name in ("DAGSTER_HOME", "LMDP_MASTER_KEY", "LMDP_MASTER_KEY_FILE"):
        env.pop(name, None)
    env |= extra_env
    return subprocess.run(
        [sys.executable, "-m", "lmdp_cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_sample_data_writes_into_lmdp_home(tmp_path):
    result = lmdp(tmp_path, "sample-data", "--persons", "200", "--months", "2024-01:2024-02", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "landing" / "jobs" / "jobs_2024-02.csv").is_file()
    assert (tmp_path / "approvals" / "P2026-001.yaml").is_file()
    assert "individuals" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--months", "2024-13"], "--months: '2024-13' is not a month in the form YYYY-MM"),
        (["--months", "2024-05:2024-01"], "ends before it starts"),
        (["--persons", "10"], "--persons must be at least 50"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_clear_message(tmp_path, args, message):
    result = lmdp(tmp_path, "sample-data", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "landing").exists()


@pytest.mark.slow
def test_demo_runs_through_dagster_on_the_persistent_instance(tmp_path):
    result = lmdp(tmp_path, "demo", "--persons", "300", "--months", "2024-01:2024-02")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING: using a DEVELOPMENT master key" in result.stderr
    assert "BetaWarning" not in result.stderr, "Dagster's warning about its own code is kept from operators"
    assert (tmp_path / "keys" / "development-master-key.b64").is_file()
    assert (tmp_path / "landing" / "individuals" / "individuals_2024-02.csv").is_file()
    assert (tmp_path / "warehouse" / "benefits_in_kind" / "benefits_in_kind_2024-02.parquet").is_file()
    assert (tmp_path / "dictionary" / "html" / "index.html").is_file()
    for project in ("P2026-001", "P2026-002", "P2026-003"):
        assert (tmp_path / "extracts" / f"{project}.duckdb").is_file()
        assert f"extracts/{project}.duckdb: " in result.stdout
    assert re.search(r"external_survey_2025: \d+ rows read, 2 invalid matricules \(rows \d+, \d+\), \d+ linked", result.stdout), result.stdout
    from dagster import DagsterInstance, DagsterRunStatus

    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        runs = instance.get_runs()
        assert sorted(r.job_name for r in runs) == [
            "output_release", "output_release", "project_build", "project_build", "project_build", "publish_dictionary",
            "register_refresh", "register_refresh",
        ]
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        assert {r.tags.get("dagster/partition") for r in runs if r.job_name == "register_refresh"} == {"2024-01", "2024-02"}
    check = lmdp(tmp_path, "approvals", "check", str(tmp_path / "approvals" / "P2026-001.yaml"))
    assert check.returncode == 0, check.stderr
    assert "valid. Project P2026-001" in check.stdout and "estimated population:" in check.stdout
    assert "i_residence      canton  <- override: Canton-level regional analysis" in check.stdout
    assert "table external_survey_2025: from external/P2026-001/survey_2025.csv" in check.stdout
    assert re.search(r"2 invalid matricules \(rows \d+, \d+\) left out", check.stdout), check.stdout
    survey, approval = tmp_path / "external" / "P2026-001" / "survey_2025.csv", tmp_path / "approvals" / "P2026-001.yaml"
    approved = hashlib.sha256(survey.read_bytes()).hexdigest()
    survey.write_text(survey.read_text().replace("q_hours", "q_email"))
    unapproved = lmdp(tmp_path, "approvals", "check", str(approval))
    assert unapproved.returncode == 1 and "field external.survey_2025.sha256: the file is not the one" in unapproved.stderr
    approval.write_text(approval.read_text().replace(approved, hashlib.sha256(survey.read_bytes()).hexdigest()))
    refused = lmdp(tmp_path, "approvals", "check", str(approval))
    assert refused.returncode == 1 and "column 3 of the header is not declared" in refused.stderr and "q_email" not in refused.stderr


def test_approvals_check_names_every_problem(tmp_path):
    spec = (PROJECT_ROOT / "sample_data" / "approvals" / "P2026-002.yaml").read_text()
    path = tmp_path / "P2026-002.yaml"
    path.write_text(spec.replace("bk_service: group", "bk_service: subgroup").replace("expires_on: 2028-06-30", "expires_on: 2026-10-20"))
    result = lmdp(tmp_path, "approvals", "check", str(path))
    assert result.returncode == 1
    assert "field variables.benefits_in_kind.bk_service: 'subgroup' is not a level" in result.stderr
    assert "field expires_on: the approval expired on 2026-10-20" in result.stderr
    assert "field period: benefits_in_kind lacks 6 month(s) of 2024-01:2024-06" in result.stderr


def test_refresh_exits_non_zero_naming_the_refused_delivery(tmp_path):
    assert lmdp(tmp_path, "sample-data", "--persons", "200", "--months", "2024-01:2024-01").returncode == 0
    delivery = tmp_path / "landing" / "jobs" / "jobs_2024-01.csv"
    lines = delivery.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("j_contract")] = "zero_hours"
    lines[3] = ",".join(row)
    delivery.write_text("\n".join(lines) + "\n")
    result = lmdp(tmp_path, "refresh", "--month", "2024-01")
    assert result.returncode == 1
    assert "jobs_2024-01.csv refused: column j_contract, rule 'code list contract_type': 1 row (first data rows 3)" in result.stderr
    assert row[0] not in result.stderr + result.stdout, "no matricule on the terminal"
    assert (tmp_path / "warehouse" / "individuals" / "individuals_2024-01.parquet").is_file(), "good registers still land"
    assert not (tmp_path / "warehouse" / "jobs").exists()


def test_refresh_without_deliveries_says_what_to_do(tmp_path):
    result = lmdp(tmp_path, "refresh")
    assert result.returncode == 1
    assert "no deliveries in" in result.stderr and "lmdp sample-data" in result.stderr


@pytest.mark.slow
def test_build_revoke_and_the_audit_chain(tmp_path):
    assert lmdp(tmp_path, "demo", "--persons", "200", "--months", "2024-01:2024-01").returncode == 0
    again = lmdp(tmp_path, "demo", "--persons", "200", "--months", "2024-01:2024-01")  # a user runs the demo twice
    assert again.returncode == 0, again.stderr
    assert re.search(r"request \S+ of P2026-001: released; files in \S+/released/\S+ \(on 20", again.stdout), again.stdout
    extract = tmp_path / "extracts" / "P2026-002.duckdb"
    revoked = lmdp(tmp_path, "revoke", "P2026-002", "--reason", "ethics approval withdrawn")
    assert revoked.returncode == 0 and "key destroyed" in revoked.stdout
    assert not extract.exists() and not (tmp_path / "extracts" / "P2026-002.access.json").exists()
    again = lmdp(tmp_path, "build", "P2026-002")
    assert again.returncode == 1
    assert "the key of project P2026-002 was destroyed" in again.stderr and "(ethics approval withdrawn)" in again.stderr
    assert not extract.exists()
    audit_log = (tmp_path / "audit" / "audit.jsonl").read_text()
    assert '"event":"project_retired"' in audit_log and "ethics approval withdrawn" in audit_log
    assert '"requested_by":"lmdp (account ' in audit_log, "the CLI's builds are audited by their runs"
    verified = lmdp(tmp_path, "audit", "verify")
    assert verified.returncode == 0 and "chain intact, reaches the head Dagster recorded" in verified.stdout, verified.stderr
    lines = audit_log.splitlines()
    (tmp_path / "audit" / "audit.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    cut = lmdp(tmp_path, "audit", "verify")
    assert cut.returncode == 1 and f"the log ends at seq {len(lines) - 2} but Dagster recorded seq {len(lines)}" in cut.stderr


@pytest.mark.parametrize("project", ["../../victim", "P2026-001/../../x", "p2026-001", "P2026-001\n"])
def test_revoke_refuses_anything_but_a_project_id_before_touching_a_file(tmp_path, project):
    victim = tmp_path / "victim.duckdb"
    victim.write_text("precious")
    home = tmp_path / "a" / "b"
    home.mkdir(parents=True)
    result = lmdp(home, "revoke", project)
    assert result.returncode == 1 and "is not a project id" in result.stderr
    assert victim.read_text() == "precious"
    assert not (home / "audit").exists() and not (home / "keys").exists()


def test_revoke_of_a_path_to_an_extract_is_refused(tmp_path):
    extract = tmp_path / "extracts" / "P2026-001.duckdb"
    extract.parent.mkdir()
    extract.write_text("an extract")
    result = lmdp(tmp_path, "revoke", str(tmp_path / "extracts" / "P2026-001"))
    assert result.returncode == 1 and "is not a project id" in result.stderr and extract.exists()


def test_approvals_check_into_a_closed_pipe_is_quiet(tmp_path):
    script = (f"{sys.executable} -m lmdp_cli approvals check {PROJECT_ROOT}/sample_data/approvals/P2026-002.yaml | head -c 1")
    env = {**os.environ, "LMDP_HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "BrokenPipeError" not in result.stderr and "Broken pipe" not in result.stderr


def test_commands_leave_lmdp_home_private(tmp_path):
    import stat

    home = tmp_path / "home"
    (home / "extracts").mkdir(parents=True)
    os.chmod(home / "extracts", 0o755)
    os.umask(0o022)  # the CLI inherits a permissive umask and must not keep it
    result = lmdp(home, "sample-data", "--persons", "100", "--months", "2024-01:2024-01")
    assert result.returncode == 0, result.stderr
    assert lmdp(home, "dictionary").returncode == 0, "a Dagster run: the instance's databases are created"
    assert stat.S_IMODE((home / "extracts").stat().st_mode) == 0o700, "an existing zone is tightened"
    created = [home / "landing", *(home / "landing").rglob("*"), *(home / "external").rglob("*"), *(home / "dagster").rglob("*")]
    assert any(p.suffix == ".db" for p in created), "Dagster's SQLite databases were looked at"
    for path in created:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_keys_rotate_rewraps_every_key_and_keeps_every_pseudonym(tmp_path):
    import base64
    import json
    import secrets

    from lmdp_pipeline.keys import Keystore, MasterKey, WrongMasterKey

    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    store = Keystore(tmp_path / "keys", MasterKey(old, "old"))
    before = {p: store.create(p).material for p in ("P2026-001", "P2026-002")}
    new_file = tmp_path / "new-master.b64"
    new_file.write_text(base64.b64encode(new).decode())
    same = lmdp(tmp_path, "keys", "rotate", "--new-key-file", str(new_file), LMDP_MASTER_KEY=base64.b64encode(new).decode())
    assert same.returncode == 1 and "holds the master key in use" in same.stderr
    other = tmp_path / "other-master.b64"
    other.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    wrong = lmdp(tmp_path, "keys", "rotate", "--new-key-file", str(new_file), LMDP_MASTER_KEY=other.read_text())
    assert wrong.returncode == 1 and "is not the one this keystore" in wrong.stderr, "the current master key must be the keystore's"
    assert Keystore(tmp_path / "keys", MasterKey(old, "old")).load("P2026-001").material == before["P2026-001"]
    done = lmdp(tmp_path, "keys", "rotate", "--new-key-file", str(new_file), LMDP_MASTER_KEY=base64.b64encode(old).decode())
    assert done.returncode == 0, done.stderr
    assert "every project key rewrapped" in done.stdout
    rotated = Keystore(tmp_path / "keys", MasterKey(new, "new"))
    assert {p: rotated.load(p).material for p in before} == before, "same keys, so the same pseudonyms"
    with pytest.raises(WrongMasterKey):
        Keystore(tmp_path / "keys", MasterKey(old, "old")).load("P2026-001")
    entry = json.loads((tmp_path / "audit" / "audit.jsonl").read_text().splitlines()[-1])
    assert entry["event"] == "master_key_rotated" and entry["projects"] == ["P2026-001", "P2026-002"]
    for secret in (base64.b64encode(old).decode(), base64.b64encode(new).decode(), old.hex(), new.hex()):
        assert secret not in done.stdout + done.stderr + json.dumps(entry)

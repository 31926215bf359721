"""A project's life cycle as the library enforces it, whoever runs it: keys, expiry, retirement during a build, locks, leftovers.

The clock is the one thing mocked: expiry is tried on both sides of ``expires_on``.
Concurrency is tried for real: another process holding the lock, an approval revoked
or a project retired while the build is between its checks and its rename.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time

import pytest

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.keys import KeyDestroyed, KeyFolder, Keystore, KeystoreError, MasterKey
from lmdp_pipeline.locks import LockTimeout, held
from lmdp_pipeline.paths import InvalidProjectId, PlatformPaths, project_id, spill_dir
from lmdp_pipeline.projects.build import build_label
from lmdp_pipeline.projects import lifecycle
from lmdp_pipeline.projects.approval import ApprovalError
from lmdp_pipeline.projects.lifecycle import (
    BuildRefused,
    KeyLost,
    build_project,
    decide_retirements,
    reissue_key,
    retire_project,
)

PROJECT = "P2026-002"
EXPIRES = dt.date(2028, 6, 30)  # the example approval's expires_on
TODAY = dt.date(2026, 11, 30)


@pytest.fixture
def home(small_home, tmp_path) -> PlatformPaths:
    target = tmp_path / "home"
    shutil.copytree(small_home.home, target)
    return PlatformPaths(target)


@pytest.fixture
def store(home) -> Keystore:
    return Keystore(home.keys, MasterKey(secrets.token_bytes(32), "test"))


def build(home, contracts, store, project=PROJECT, **options):
    options.setdefault("today", TODAY)
    return build_project(home, contracts, lambda: store, project, AuditLog(home.audit), requested_by="test", **options)


def events(home, project=PROJECT) -> list[str]:
    return [e["event"] for e in AuditLog(home.audit).entries() if e.get("project") == project]


@pytest.mark.parametrize("text", ["P2026-001\n", "../P2026-001", "P2026-001/..", "p2026-001", "P2", "P" * 33])
def test_a_project_id_is_a_whole_string_match(text):
    with pytest.raises(InvalidProjectId):
        project_id(text)


def test_expiry_is_checked_against_the_date_on_both_sides(home, contracts, store):
    build(home, contracts, store)
    assert decide_retirements(home, EXPIRES)[0] == [], "valid through its expiry date"
    [decision], _ = decide_retirements(home, EXPIRES + dt.timedelta(days=1))
    assert (decision.project, decision.reason, decision.destroy_key) == (PROJECT, f"expired on {EXPIRES}", True)
    with pytest.raises(ApprovalError, match="the approval expired on 2028-06-30"):
        build(home, contracts, store, today=EXPIRES + dt.timedelta(days=1))
    assert build(home, contracts, store, today=EXPIRES)[1].path.exists()


def test_a_fresh_project_gets_a_key_and_a_project_with_history_never_a_new_one(home, contracts, store):
    build(home, contracts, store)
    assert events(home)[:3] == ["build_requested", "key_created", "build_started"]
    store.key_file(PROJECT).unlink()
    home.extract_file(PROJECT).unlink()
    with pytest.raises(KeyLost, match="the audit log records its key"):
        build(home, contracts, store)
    assert not store.key_file(PROJECT).exists()


def test_an_unreadable_key_is_refused_not_replaced(home, contracts, store):
    build(home, contracts, store)
    store.key_file(PROJECT).write_text("{damaged")
    with pytest.raises(KeystoreError, match="is damaged"):
        build(home, contracts, store)
    assert store.key_file(PROJECT).read_text() == "{damaged"


def test_reissue_is_for_lost_keys_only_and_is_audited(home, contracts, store):
    build(home, contracts, store)
    with pytest.raises(KeystoreError, match="present and unwraps"):
        reissue_key(store, PROJECT, "no reason", AuditLog(home.audit))
    store.key_file(PROJECT).write_text("{damaged")
    key = reissue_key(store, PROJECT, "disk failure", AuditLog(home.audit))
    assert store.load(PROJECT) == key
    assert [p.name for p in home.keys.glob(f"{PROJECT}.key.json.unreadable-*")], "the damaged file is kept for the investigation"
    retire_project(home, PROJECT, "revoked", True, AuditLog(home.audit))
    with pytest.raises(KeystoreError, match="was destroyed"):
        reissue_key(store, PROJECT, "trying to come back", AuditLog(home.audit))


def test_retirement_leaves_a_tombstone_even_without_a_build(home, contracts, store):
    entry = retire_project(home, PROJECT, "revoked before any build", True, AuditLog(home.audit))
    assert entry["key_destroyed"] and KeyFolder(home.keys).tombstone(PROJECT).exists()
    with pytest.raises(ApprovalError, match="is retired"):
        build(home, contracts, store)
    with pytest.raises(KeyDestroyed):
        store.create(PROJECT)


def test_a_withdrawal_keeps_the_key_and_deletes_what_was_published(home, contracts, store):
    build(home, contracts, store)
    published = [p for p in home.published(PROJECT) if p.exists()]
    assert {p.name for p in published} == {f"{PROJECT}.duckdb", f"{PROJECT}.access.json"}
    entry = retire_project(home, PROJECT, "approval withdrawn", False, AuditLog(home.audit))
    assert sorted(entry["files_deleted"]) == sorted(p.name for p in published)
    assert not any(p.exists() for p in published) and store.key_file(PROJECT).exists()
    assert events(home)[-2:] == ["extract_deleted", "project_retired"]


def _revoke_during(home, mutate, monkeypatch):
    """Make ``mutate`` happen while the build runs: between the approval check and the publication."""
    real = lifecycle.build_extract

    def build_while_someone_acts(plan, paths, key, provenance, before_publish=None):
        mutate()
        return real(plan, paths, key, provenance, before_publish)

    monkeypatch.setattr(lifecycle, "build_extract", build_while_someone_acts)


@pytest.mark.parametrize("what", ["revoked", "tombstone", "withdrawn", "edited"])
def test_nothing_is_published_when_the_project_changes_during_its_build(home, contracts, store, monkeypatch, what):
    build(home, contracts, store)
    before = home.extract_file(PROJECT).read_bytes()
    path = home.approval_file(PROJECT)
    mutate = {
        "revoked": lambda: path.write_text(path.read_text().replace("status: approved", "status: revoked")),
        "tombstone": lambda: KeyFolder(home.keys).destroy(PROJECT, "revoked by an operator"),
        "withdrawn": lambda: path.unlink(),
        "edited": lambda: path.write_text(path.read_text().replace("cb_amount: default", "cb_amount: band_500")),
    }[what]
    _revoke_during(home, mutate, monkeypatch)
    with pytest.raises(BuildRefused, match="nothing published"):
        build(home, contracts, store)
    assert home.extract_file(PROJECT).read_bytes() == before, "the previous extract stays; retirement deletes it"
    assert events(home)[-1] == "build_refused"


def _hold_lock_in_another_process(path, seconds: float) -> subprocess.Popen:
    code = (f"import sys, time; sys.path.insert(0, {str(os.getcwd())!r}); from pathlib import Path; "
            f"from lmdp_pipeline.locks import held\n"
            f"with held(Path({str(path)!r}), 'holder'):\n    print('held', flush=True); time.sleep({seconds})")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_build_waits_for_the_first(home, contracts, store):
    holder = _hold_lock_in_another_process(home.project_lock(PROJECT), 2)
    waited = []
    started = time.monotonic()
    build(home, contracts, store, on_wait=lambda: waited.append(time.monotonic() - started))
    assert waited and time.monotonic() - started >= 1.5, "the build waited for the holder"
    holder.wait()


def test_a_retirement_waits_for_a_release_in_progress(home, contracts, store):
    """A release holds the outputs' lock while it reads the extract and publishes: the retirement waits for it, so
    nothing is released after the project is retired (the race a loaded end-to-end run showed)."""
    build(home, contracts, store)
    holder = _hold_lock_in_another_process(home.output_lock(PROJECT), 2)
    waited = []
    started = time.monotonic()
    retire_project(home, PROJECT, "revoked", False, AuditLog(home.audit), on_wait=lambda: waited.append(time.monotonic()))
    assert waited and time.monotonic() - started >= 1.5, "the retirement waited for the release"
    assert not home.extract_file(PROJECT).exists() and events(home)[-1] == "project_retired"
    holder.wait()


def test_a_lock_held_too_long_is_refused_clearly(home):
    holder = _hold_lock_in_another_process(home.project_lock(PROJECT), 5)
    try:
        with pytest.raises(LockTimeout, match="another run held P2026-002.lock for more than"):
            with held(home.project_lock(PROJECT), f"build of {PROJECT}", wait_seconds=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    with held(home.project_lock(PROJECT), "after", wait_seconds=5):
        pass  # a killed holder leaves no stale lock


def test_a_killed_builds_leftovers_are_removed_and_nothing_is_ever_group_readable(home, contracts, store, monkeypatch, permissive_umask):
    home.extracts.mkdir(parents=True, exist_ok=True)
    leftovers = [home.extract_candidate(PROJECT, "dead"), home.extracts / f".{PROJECT}.dead.partial.duckdb.wal"]
    for path in leftovers:
        path.write_bytes(b"left by a build killed with SIGKILL")
    spill = spill_dir(home.warehouse, build_label(PROJECT), "dead")
    spill.mkdir(parents=True)
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"matricules")
    other = home.extract_candidate("P2026-001", "running")
    other.write_bytes(b"another project's build, running")
    other_spill = spill_dir(home.warehouse, build_label(f"{PROJECT}-X"), "running")
    other_spill.mkdir(parents=True)
    modes = {}
    real = lifecycle.build_extract

    def look_inside(plan, paths, key, provenance, before_publish=None):
        def inspect(risk):
            modes.update({p.name: stat.S_IMODE(p.stat().st_mode) for p in paths.extracts.iterdir() if p.name.startswith(f".{PROJECT}")})
            before_publish(risk)
        return real(plan, paths, key, provenance, inspect)

    monkeypatch.setattr(lifecycle, "build_extract", look_inside)
    build(home, contracts, store)
    assert not any(p.exists() for p in leftovers) and not spill.exists()
    assert other.exists() and other_spill.exists(), "another project's files are not this build's to remove"
    assert modes and all(mode & 0o077 == 0 for mode in modes.values()), modes
    for path in [home.extract_file(PROJECT), home.access_file(PROJECT)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_retirement_waits_for_a_running_build(home, contracts, store):
    results = {}
    with held(home.project_lock(PROJECT), "a build"):
        thread = threading.Thread(target=lambda: results.update(
            entry=retire_project(home, PROJECT, "revoked", True, AuditLog(home.audit))))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the retirement waits for the lock"
    thread.join(timeout=30)
    assert results["entry"]["key_destroyed"]


def test_decisions_cover_every_project_that_has_anything(home, contracts, store):
    build(home, contracts, store)
    build(home, contracts, store, project="P2026-001")
    (home.approvals / "P2026-001.yaml").unlink()
    (home.approvals / "not a project.yaml").write_text("project: x\n")
    decisions, problems = decide_retirements(home, TODAY)
    assert [(d.project, d.reason, d.destroy_key) for d in decisions] == [("P2026-001", "approval withdrawn", False)]
    assert any("not named after a project id" in p for p in problems)
    retire_project(home, "P2026-001", "approval withdrawn", False, AuditLog(home.audit))
    assert decide_retirements(home, TODAY)[0] == [], "nothing left to cut"

"""The keystore, tried as an operator (and an attacker) would: wrong keys, damaged files, shredding."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import stat

import pytest

from lmdp_pipeline.keys import (
    DEVELOPMENT_MASTER_KEY,
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    CorruptKeyFile,
    KeyDestroyed,
    KeyExists,
    KeyNotFound,
    Keystore,
    MasterKey,
    MasterKeyMissing,
    WrongMasterKey,
)


def master() -> MasterKey:
    return MasterKey(secrets.token_bytes(32), "test")


@pytest.fixture
def store(tmp_path):
    return Keystore(tmp_path / "keys", master())


def test_create_then_load_gives_the_same_key(store):
    created = store.create("P2026-001")
    loaded = store.load("P2026-001")
    assert loaded == created and len(created.material) == 32
    path = store.key_file("P2026-001")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_text())
    assert record["key_id"] == created.key_id and created.material.hex() not in path.read_text()
    assert created.material.hex()[:16] not in created.key_id, "the key id reveals nothing of the key"


def test_each_project_gets_its_own_random_key(store):
    assert store.create("P2026-001").material != store.create("P2026-002").material


def test_a_project_never_gets_a_second_key(store):
    first = store.create("P2026-001")
    with pytest.raises(KeyExists, match="already has a key"):
        store.create("P2026-001")
    assert store.load("P2026-001") == first


def test_wrong_master_key_is_refused_clearly(store, tmp_path):
    store.create("P2026-001")
    other = Keystore(tmp_path / "keys", MasterKey(secrets.token_bytes(32), "the other one"))
    with pytest.raises(WrongMasterKey, match="does not unwrap: the master key from the other one"):
        other.load("P2026-001")
    with pytest.raises(KeyExists):
        other.create("P2026-001")


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "",  # emptied
        lambda text: text.replace('"wrapped_key": "', '"wrapped_key": "AAAA', 1),  # tampered ciphertext
        lambda text: text.replace('"project": "P2026-001"', '"project": "P2026-002"'),  # moved to another project
    ],
    ids=["truncated", "empty", "tampered", "relabelled"],
)
def test_a_damaged_key_file_is_refused_and_never_replaced(store, damage):
    store.create("P2026-001")
    path = store.key_file("P2026-001")
    path.write_text(damage(path.read_text()))
    before = path.read_bytes()
    with pytest.raises((CorruptKeyFile, WrongMasterKey)) as raised:
        store.load("P2026-001")
    assert "P2026-001" in str(raised.value)
    with pytest.raises(KeyExists):
        store.create("P2026-001")
    assert path.read_bytes() == before


def test_a_key_copied_to_another_project_does_not_unwrap(store):
    store.create("P2026-001")
    store.create("P2026-002")
    source = json.loads(store.key_file("P2026-001").read_text())
    target = json.loads(store.key_file("P2026-002").read_text())
    target["nonce"], target["wrapped_key"] = source["nonce"], source["wrapped_key"]
    store.key_file("P2026-002").write_text(json.dumps(target))
    with pytest.raises(WrongMasterKey):
        store.load("P2026-002")


def test_missing_key_is_not_silently_created(store):
    with pytest.raises(KeyNotFound, match="P2026-009 has no key"):
        store.load("P2026-009")
    assert not store.key_file("P2026-009").exists()


def test_destroyed_key_stays_destroyed(store):
    key = store.create("P2026-001")
    assert store.destroy("P2026-001", "project ended") == key.key_id
    assert not store.key_file("P2026-001").exists()
    with pytest.raises(KeyDestroyed, match="was destroyed on .* \\(project ended\\)"):
        store.load("P2026-001")
    with pytest.raises(KeyDestroyed, match="a new key is never made"):
        store.create("P2026-001")


def test_rotation_rewraps_every_key_without_changing_it(store, tmp_path):
    keys = {p: store.create(p) for p in ("P2026-001", "P2026-002")}
    new_master = master()
    assert store.rewrap(new_master) == sorted(keys)
    rotated = Keystore(tmp_path / "keys", new_master)
    assert {p: rotated.load(p) for p in keys} == keys
    with pytest.raises(WrongMasterKey):
        Keystore(tmp_path / "keys", master()).load("P2026-001")


def test_rotation_with_a_damaged_file_rewrites_nothing(store):
    store.create("P2026-001")
    store.create("P2026-002")
    store.key_file("P2026-002").write_text("{}")
    before = store.key_file("P2026-001").read_bytes()
    with pytest.raises(CorruptKeyFile):
        store.rewrap(master())
    assert store.key_file("P2026-001").read_bytes() == before


def test_master_key_from_environment(monkeypatch, tmp_path):
    material = secrets.token_bytes(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(material).decode())
    assert MasterKey.from_environment(tmp_path).material == material
    monkeypatch.delenv(MASTER_KEY_ENV)
    key_file = tmp_path / "master.b64"
    key_file.write_text(base64.b64encode(material).decode() + "\n")
    monkeypatch.setenv(MASTER_KEY_FILE_ENV, str(key_file))
    assert MasterKey.from_environment(tmp_path).material == material


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_is_refused_without_echoing_it(monkeypatch, tmp_path, value):
    monkeypatch.setenv(MASTER_KEY_ENV, value)
    with pytest.raises(MasterKeyMissing) as raised:
        MasterKey.from_environment(tmp_path)
    assert value not in str(raised.value)


def test_no_master_key_anywhere_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    with pytest.raises(MasterKeyMissing, match="set LMDP_MASTER_KEY"):
        MasterKey.from_environment(tmp_path)


def test_development_key_is_created_only_on_request_and_announced(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    with caplog.at_level(logging.WARNING):
        created = MasterKey.create_development(tmp_path)
        loaded = MasterKey.from_environment(tmp_path)
    assert created.material == loaded.material and loaded.development
    assert "DEVELOPMENT MASTER KEY" in caplog.text
    assert stat.S_IMODE((tmp_path / DEVELOPMENT_MASTER_KEY).stat().st_mode) == 0o600


def test_no_secret_in_reprs_messages_or_logs(store, caplog, tmp_path):
    with caplog.at_level(logging.DEBUG):
        key = store.create("P2026-001")
        store.destroy("P2026-001", "revoked")
        texts = [repr(key), repr(store), caplog.text]
        for action in (lambda: store.load("P2026-001"), lambda: Keystore(tmp_path / "keys", master()).create("P2026-001")):
            with pytest.raises(Exception) as raised:
                action()
            texts.append(str(raised.value))
    secrets_ = [key.material.hex(), base64.b64encode(key.material).decode(), store._master.material.hex()]
    for text in texts:
        for secret in secrets_:
            assert secret not in text

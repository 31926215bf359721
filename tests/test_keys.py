"""The keystore, tried as an operator (and an attacker) would: wrong keys, damaged files, shredding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import stat

import pytest

from lmdp_pipeline.keys import (
    DEVELOPMENT_KEY_ENV,
    DEVELOPMENT_MASTER_KEY,
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    CorruptKeyFile,
    KeyDestroyed,
    KeyExists,
    KeyFolder,
    KeyNotFound,
    Keystore,
    MasterKey,
    MasterKeyMissing,
    WrongMasterKey,
)
from lmdp_pipeline.paths import PlatformPaths


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
    with pytest.raises(WrongMasterKey, match="master key from the other one is not the one"):
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


def initialised(resource):
    """A resource as a run sees it: EnvVars resolved by Dagster."""
    return resource.process_config_and_initialize()


def test_master_key_reaches_runs_from_the_environment(monkeypatch, tmp_path):
    from assets.resources import keys_from_environment

    paths = PlatformPaths(tmp_path)
    material = secrets.token_bytes(32)
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(material).decode())
    assert initialised(keys_from_environment()).master(paths).material == material
    monkeypatch.delenv(MASTER_KEY_ENV)
    key_file = tmp_path / "master.b64"
    key_file.write_text(base64.b64encode(material).decode() + "\n")
    monkeypatch.setenv(MASTER_KEY_FILE_ENV, str(key_file))
    assert initialised(keys_from_environment()).master(paths).material == material


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_is_refused_without_echoing_it(value):
    with pytest.raises(MasterKeyMissing) as raised:
        MasterKey.from_text(value, MASTER_KEY_ENV)
    assert value not in str(raised.value)


def test_an_empty_master_key_is_an_error_not_the_development_key(monkeypatch, tmp_path):
    """LMDP_MASTER_KEY= used to fall back to the development key in keys/, whose plaintext sits beside the keys."""
    from assets.resources import keys_from_environment

    MasterKey.create_development(tmp_path / "keys")
    monkeypatch.delenv(MASTER_KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(MASTER_KEY_ENV, "")
    monkeypatch.setenv(DEVELOPMENT_KEY_ENV, "1")
    with pytest.raises(MasterKeyMissing, match="LMDP_MASTER_KEY is empty"):
        initialised(keys_from_environment()).master(PlatformPaths(tmp_path))


def test_the_development_key_needs_an_explicit_opt_in(monkeypatch, tmp_path, caplog):
    from assets.resources import keys_from_environment

    for name in (MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, DEVELOPMENT_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    paths = PlatformPaths(tmp_path)
    created = MasterKey.create_development(paths.keys)
    with pytest.raises(MasterKeyMissing, match="used only with LMDP_DEVELOPMENT_KEY=1"):
        initialised(keys_from_environment()).master(paths)
    monkeypatch.setenv(DEVELOPMENT_KEY_ENV, "1")
    with caplog.at_level(logging.WARNING):
        loaded = initialised(keys_from_environment()).master(paths)
    assert created.material == loaded.material and loaded.development
    assert "DEVELOPMENT MASTER KEY" in caplog.text
    assert stat.S_IMODE((paths.keys / DEVELOPMENT_MASTER_KEY).stat().st_mode) == 0o600


def test_no_master_key_anywhere_says_what_to_set(monkeypatch, tmp_path):
    from assets.resources import keys_from_environment

    for name in (MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, DEVELOPMENT_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MasterKeyMissing, match="set LMDP_MASTER_KEY"):
        initialised(keys_from_environment()).master(PlatformPaths(tmp_path))


def test_no_key_is_created_under_another_master_key(store, tmp_path):
    """The key-check value: a mistyped or swapped master key cannot start a second generation of keys."""
    store.create("P2026-001")
    other = Keystore(tmp_path / "keys", master())
    with pytest.raises(WrongMasterKey, match="is not the one this keystore"):
        other.create("P2026-002")
    assert not store.key_file("P2026-002").exists()
    assert "check" in json.loads(store.check_file.read_text()) and store._master.material.hex() not in store.check_file.read_text()


@pytest.mark.parametrize("field", ["key_id", "created", "format"])
def test_editing_what_a_key_is_bound_to_is_noticed(store, field):
    """Associated data binds format, project, key id and creation time: a relabelled record does not unwrap."""
    store.create("P2026-001")
    path = store.key_file("P2026-001")
    record = json.loads(path.read_text())
    record[field] = {"key_id": "key-0000000000000000", "created": "2020-01-01T00:00:00+00:00", "format": 2}[field]
    if field == "format":
        record["format"] = 3
    path.write_text(json.dumps(record))
    with pytest.raises((WrongMasterKey, CorruptKeyFile)):
        store.load("P2026-001")


def test_a_key_restored_after_destruction_is_never_used(store):
    """Tombstones win: a key file copied back from a backup is refused by load, create and rewrap."""
    store.create("P2026-001")
    backup = store.key_file("P2026-001").read_bytes()
    store.destroy("P2026-001", "revoked")
    store.key_file("P2026-001").write_bytes(backup)
    with pytest.raises(KeyDestroyed):
        store.load("P2026-001")
    with pytest.raises(KeyDestroyed):
        store.create("P2026-001")
    with pytest.raises(KeyDestroyed, match="restored after destruction"):
        store.rewrap(master())


def test_a_key_is_destroyed_without_the_master_key(store, tmp_path):
    key = store.create("P2026-001")
    folder = KeyFolder(tmp_path / "keys")
    assert folder.destroy("P2026-001", "expired") == key.key_id
    assert not folder.key_file("P2026-001").exists() and folder.destroyed_message("P2026-001")
    assert folder.destroy("P2026-099", "revoked before any build") is None, "a tombstone even without a key"
    with pytest.raises(KeyDestroyed):
        store.create("P2026-099")


# --- against independent computations ----------------------------------------------------------------


def unwrap_independently(store, project: str, master_key: MasterKey) -> bytes:
    """The project key, unwrapped with the cryptography primitives from the file's own fields."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    record = json.loads(store.key_file(project).read_text())
    aad = json.dumps({k: record[k] for k in ("created", "format", "key_id", "project")}, separators=(",", ":")).encode()
    return AESGCM(master_key.material).decrypt(base64.b64decode(record["nonce"]), base64.b64decode(record["wrapped_key"]), aad)


def test_project_keys_are_random_not_derived(tmp_path):
    """Two keystores under one master key give the same project different keys; two projects' keys are unrelated."""
    shared = master()
    first = Keystore(tmp_path / "a", shared).create("P2026-001")
    second = Keystore(tmp_path / "b", shared).create("P2026-001")
    other = Keystore(tmp_path / "a", shared).create("P2026-002")
    assert first.material != second.material
    assert len({first.material, second.material, other.material}) == 3
    for derived in (hashlib.sha256(shared.material + b"P2026-001").digest(),
                    hmac.new(shared.material, b"P2026-001", hashlib.sha256).digest()):
        assert first.material != derived


def test_every_wrap_has_its_own_nonce(store):
    store.create("P2026-001")
    store.create("P2026-002")
    new_master = master()
    nonces = [json.loads(store.key_file(p).read_text())["nonce"] for p in ("P2026-001", "P2026-002")]
    store.rewrap(new_master)
    nonces += [json.loads(store.key_file(p).read_text())["nonce"] for p in ("P2026-001", "P2026-002")]
    assert len(set(nonces)) == 4


def test_the_file_unwraps_to_the_key_the_keystore_returns(store):
    key = store.create("P2026-001")
    assert unwrap_independently(store, "P2026-001", store._master) == key.material == store.load("P2026-001").material


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

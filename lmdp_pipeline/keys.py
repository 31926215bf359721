"""The keystore: one random key per project, wrapped by the platform's master key.

Each project's pseudonyms come from its own 32 random bytes, so two projects' extracts
can never be linked. Keys live apart from the data, in ``keys/``, each wrapped with
AES-256-GCM under the master key (a fresh random nonce per wrap) with the key's whole
record as associated data: format, project, key id and creation time. A wrapped key
copied to another project's file, or relabelled with another key id or date, does not
unwrap.

The master key is given by the deployment (see ``MasterKey``): the library never reads
the environment. A key-check value stored beside the keys (an HMAC of a fixed text
under the master key, which reveals nothing of it) refuses to create project keys
under any other master key, so a mistyped or swapped master key cannot quietly start a
second generation of keys.

Destroying a project's key is crypto-shredding and needs no master key: the tombstone
is written first (why and when), then the key file goes. A tombstone wins over
everything: a key file restored from a backup after destruction is never loaded,
recreated or rewrapped. No message, repr or log line of this module ever contains key
material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .files import sync_directory, write_private
from .paths import PRIVATE_DIR, project_id

KEY_BYTES = 32
NONCE_BYTES = 12
FILE_FORMAT = 2
MASTER_KEY_ENV = "LMDP_MASTER_KEY"
MASTER_KEY_FILE_ENV = "LMDP_MASTER_KEY_FILE"
DEVELOPMENT_KEY_ENV = "LMDP_DEVELOPMENT_KEY"
"""Set to 1 to allow the development master key in keys/ (demos only); never set in production."""
DEVELOPMENT_MASTER_KEY = "development-master-key.b64"
CHECK_FILE = "master-key.check.json"
CHECK_TEXT = b"lmdp master key check"

log = logging.getLogger(__name__)


class KeystoreError(Exception):
    """A key cannot be used; the message says which and what to do, never the key."""


class MasterKeyMissing(KeystoreError):
    pass


class KeyNotFound(KeystoreError):
    pass


class KeyDestroyed(KeystoreError):
    pass


class KeyExists(KeystoreError):
    pass


class WrongMasterKey(KeystoreError):
    pass


class CorruptKeyFile(KeystoreError):
    pass


def _decode_master(text: str, origin: str) -> bytes:
    if not text.strip():
        raise MasterKeyMissing(f"{origin} is empty; it must hold {KEY_BYTES} random bytes in base64")
    try:
        material = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyMissing(f"{origin} is not base64; it must hold {KEY_BYTES} random bytes in base64") from None
    if len(material) != KEY_BYTES:
        raise MasterKeyMissing(f"{origin} decodes to {len(material)} bytes; a master key is {KEY_BYTES} random bytes")
    return material


@dataclass(frozen=True)
class MasterKey:
    """The key-encryption key. Its repr names where it came from, never its bytes."""

    material: bytes = field(repr=False)
    origin: str
    development: bool = False

    @classmethod
    def from_text(cls, text: str, origin: str) -> "MasterKey":
        """A master key given as base64 text (``LMDP_MASTER_KEY``); empty text is an error, never 'unset'."""
        return cls(_decode_master(text, origin), origin)

    @classmethod
    def from_file(cls, path: Path, label: str = "") -> "MasterKey":
        """A master key kept in a file (base64), as ``LMDP_MASTER_KEY_FILE`` or ``lmdp keys rotate`` name it."""
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise MasterKeyMissing(f"{label}{path} cannot be read: {error.__class__.__name__}") from None
        return cls(_decode_master(text, f"{label}{path}"), f"file {path}")

    @classmethod
    def development_key(cls, keys_dir: Path, opted_in: bool) -> "MasterKey":
        """The development master key in keys/, only when the deployment opted in (demos)."""
        path = Path(keys_dir) / DEVELOPMENT_MASTER_KEY
        if not opted_in:
            raise MasterKeyMissing(
                f"no master key: set {MASTER_KEY_ENV} (32 random bytes, base64) or {MASTER_KEY_FILE_ENV}"
                + (f"; a development key exists in {path}, used only with {DEVELOPMENT_KEY_ENV}=1 (demos, never real data)"
                   if path.exists() else "; `lmdp demo` creates a development key for trying the platform")
            )
        if not path.exists():
            raise MasterKeyMissing(f"{DEVELOPMENT_KEY_ENV}=1 but there is no development key in {path}: run `lmdp demo` first")
        log.warning("USING THE DEVELOPMENT MASTER KEY %s: never do this with real data", path)
        return cls(_decode_master(path.read_text(encoding="ascii"), str(path)), str(path), True)

    @classmethod
    def create_development(cls, keys_dir: Path) -> "MasterKey":
        """A development master key in keys/ (demo only): stored beside the keys it protects, so it protects nothing."""
        keys_dir = Path(keys_dir)
        keys_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        path = keys_dir / DEVELOPMENT_MASTER_KEY
        if not path.exists():
            write_private(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii") + "\n", exclusive=True)
            log.warning("CREATED A DEVELOPMENT MASTER KEY %s: for demos only, never with real data", path)
        return cls(_decode_master(path.read_text(encoding="ascii"), str(path)), str(path), True)


@dataclass(frozen=True)
class ProjectKey:
    """A project's key. ``key_id`` is random, so it tells nothing about the key itself."""

    project: str
    key_id: str
    created: str
    material: bytes = field(repr=False)


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _associated_data(record: dict) -> bytes:
    """What a wrapped key is bound to: its format, project, key id and creation time."""
    bound = {name: record[name] for name in ("format", "project", "key_id", "created")}
    return json.dumps(bound, sort_keys=True, separators=(",", ":")).encode("utf-8")


class KeyFolder:
    """The ``keys/`` folder as far as no master key is needed: file names, tombstones, destruction."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"KeyFolder({self.directory})"

    def key_file(self, project: str) -> Path:
        return self.directory / f"{project_id(project)}.key.json"

    def tombstone(self, project: str) -> Path:
        return self.directory / f"{project_id(project)}.destroyed.json"

    @property
    def check_file(self) -> Path:
        return self.directory / CHECK_FILE

    def projects(self) -> list[str]:
        """Projects with a key file (whatever its state)."""
        return sorted(p.name.removesuffix(".key.json") for p in self.directory.glob("*.key.json"))

    def retired(self) -> list[str]:
        """Projects with a tombstone."""
        return sorted(p.name.removesuffix(".destroyed.json") for p in self.directory.glob("*.destroyed.json"))

    def destroyed_message(self, project: str) -> str | None:
        """Why a project can never be built again, from its tombstone; None if its key was never destroyed."""
        tombstone = self.tombstone(project)
        if not tombstone.exists():
            return None
        try:
            record = json.loads(tombstone.read_text(encoding="utf-8"))
            when = f" on {record.get('destroyed')} ({record.get('reason')})"
        except (OSError, ValueError):
            when = ""
        return (
            f"the key of project {project} was destroyed{when}: its extracts can never be rebuilt, "
            "and a new key is never made for it; a continuation needs a new project id"
        )

    def key_id(self, project: str) -> str | None:
        """The key id written in a project's key file, read without unwrapping (None if absent or unreadable)."""
        try:
            return str(json.loads(self.key_file(project).read_text(encoding="utf-8"))["key_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def destroy(self, project: str, reason: str) -> str | None:
        """Crypto-shred a project's key: tombstone first, then the file; return its key id. No master key needed.

        Also for a project that never had a key: the tombstone alone stops any later key.
        """
        key_id = self.key_id(project)
        self.directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        if not self.tombstone(project).exists():
            record = {"project": project, "key_id": key_id, "destroyed": _utc_now(), "reason": reason}
            write_private(self.tombstone(project), json.dumps(record, indent=2) + "\n")
        if self.key_file(project).exists():
            self.key_file(project).unlink()
            sync_directory(self.directory)
        log.info("destroyed key %s of project %s: %s", key_id, project, reason)
        return key_id

    def set_aside(self, project: str) -> Path | None:
        """Move an unreadable key file out of the way (kept for the investigation); return where it went."""
        path = self.key_file(project)
        if not path.exists():
            return None
        target = path.with_name(f"{path.name}.unreadable-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}")
        os.replace(path, target)
        sync_directory(self.directory)
        return target


class Keystore(KeyFolder):
    """Project keys in one folder, wrapped by one master key."""

    def __init__(self, directory: Path, master: MasterKey):
        super().__init__(directory)
        self._master = master

    def __repr__(self) -> str:
        return f"Keystore({self.directory}, master from {self._master.origin})"

    def _check_value(self, master: MasterKey, salt: bytes) -> str:
        return hmac.new(master.material, CHECK_TEXT + salt, hashlib.sha256).hexdigest()

    def _write_check(self, master: MasterKey) -> None:
        salt = secrets.token_bytes(16)
        record = {"format": 1, "salt": base64.b64encode(salt).decode("ascii"), "check": self._check_value(master, salt)}
        write_private(self.check_file, json.dumps(record, indent=2) + "\n")

    def _verify_master(self) -> None:
        """Refuse a master key other than the one the keystore's keys were made under."""
        if not self.check_file.exists():
            return
        try:
            record = json.loads(self.check_file.read_text(encoding="utf-8"))
            salt, expected = base64.b64decode(record["salt"], validate=True), str(record["check"])
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            raise CorruptKeyFile(f"{self.check_file} is damaged; restore it from the keystore backup") from None
        if not hmac.compare_digest(self._check_value(self._master, salt), expected):
            raise WrongMasterKey(
                f"the master key from {self._master.origin} is not the one this keystore ({self.directory}) was made "
                "with; no key is created or read under it. Give the processes the platform's master key"
            )

    def _refuse_destroyed(self, project: str) -> None:
        message = self.destroyed_message(project)
        if message:
            raise KeyDestroyed(message)

    def _wrap(self, project: str, key_id: str, created: str, material: bytes, master: MasterKey) -> str:
        record = {"format": FILE_FORMAT, "project": project, "key_id": key_id, "created": created}
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = AESGCM(master.material).encrypt(nonce, material, _associated_data(record))
        return json.dumps({
            **record,
            "algorithm": "AES-256-GCM, associated data = format, project, key_id and created (canonical JSON)",
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
        }, indent=2) + "\n"

    def create(self, project: str) -> ProjectKey:
        """A new random key for a project that never had one; refuses if it has or had one."""
        path = self.key_file(project)
        self._refuse_destroyed(project)
        if path.exists():
            raise KeyExists(f"project {project} already has a key ({path}); its pseudonyms must stay stable")
        self.directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        self._verify_master()
        if not self.check_file.exists():
            self._write_check(self._master)
        key = ProjectKey(project, "key-" + secrets.token_hex(8), _utc_now(), secrets.token_bytes(KEY_BYTES))
        try:
            write_private(path, self._wrap(project, key.key_id, key.created, key.material, self._master), exclusive=True)
        except FileExistsError:
            raise KeyExists(f"project {project} got a key concurrently ({path}); use that one") from None
        log.info("created key %s for project %s", key.key_id, project)
        return key

    def load(self, project: str) -> ProjectKey:
        path = self.key_file(project)
        self._refuse_destroyed(project)
        if not path.exists():
            raise KeyNotFound(f"project {project} has no key in {self.directory}")
        return self._read(path, project, self._master)

    def _read(self, path: Path, project: str, master: MasterKey) -> ProjectKey:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("format") != FILE_FORMAT or record.get("project") != project:
                raise ValueError("not a key file of this project")
            nonce = base64.b64decode(record["nonce"], validate=True)
            wrapped = base64.b64decode(record["wrapped_key"], validate=True)
            aad = _associated_data(record)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            raise CorruptKeyFile(
                f"{path} is damaged, truncated or of another format; restore it from the keystore backup (no new key is made)"
            ) from None
        try:
            material = AESGCM(master.material).decrypt(nonce, wrapped, aad)
        except (InvalidTag, ValueError):
            raise WrongMasterKey(
                f"the key of project {project} ({record.get('key_id')}) does not unwrap: the master key from {master.origin} "
                f"is not the one it was wrapped with, or {path} was altered"
            ) from None
        if len(material) != KEY_BYTES:
            raise CorruptKeyFile(f"{path} holds a key of the wrong size; restore it from the keystore backup")
        return ProjectKey(project, str(record["key_id"]), str(record["created"]), material)

    def master_material_is(self, other: MasterKey) -> bool:
        """Whether ``other`` is the master key this keystore uses (compared in constant time)."""
        return hmac.compare_digest(self._master.material, other.material)

    def rewrap(self, new_master: MasterKey) -> list[str]:
        """Re-encrypt every project key under ``new_master``; the keys, and so every pseudonym, stay the same.

        Every key is unwrapped first: with one wrong or damaged file, or a key file of a
        destroyed project (restored from a backup), nothing is rewritten.
        """
        resurrected = [p for p in self.projects() if self.tombstone(p).exists()]
        if resurrected:
            raise KeyDestroyed(
                f"key files of destroyed projects are present ({', '.join(resurrected)}): they were restored after "
                "destruction; delete them (the tombstones stay), then rotate; nothing was rewrapped"
            )
        self._verify_master()
        keys = [self._read(self.key_file(p), p, self._master) for p in self.projects()]
        for key in keys:
            write_private(self.key_file(key.project), self._wrap(key.project, key.key_id, key.created, key.material, new_master))
        self._master = new_master
        self._write_check(new_master)
        log.info("rewrapped %d project keys under the master key from %s", len(keys), new_master.origin)
        return [key.project for key in keys]

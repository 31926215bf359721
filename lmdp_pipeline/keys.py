"""The keystore: one random key per project, wrapped by the platform's master key.

Each project's pseudonyms come from its own 32-byte key, so two projects' extracts can
never be linked. Keys live apart from the data, in ``keys/``, each wrapped with
AES-256-GCM under the master key with the project id as associated data (a wrapped key
copied to another project's file does not unwrap). The master key comes from
``LMDP_MASTER_KEY`` (base64) or the file named by ``LMDP_MASTER_KEY_FILE``; only the
demo creates a development master key, and says so loudly.

Destroying a project's key is crypto-shredding: the file goes, a tombstone records when
and why, and every later build of that project fails instead of silently creating a new
key under which the same persons would get other pseudonyms. No message, repr or log
line of this module ever contains key material.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
FILE_FORMAT = 1
MASTER_KEY_ENV = "LMDP_MASTER_KEY"
MASTER_KEY_FILE_ENV = "LMDP_MASTER_KEY_FILE"
DEVELOPMENT_MASTER_KEY = "development-master-key.b64"
PROJECT_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")

log = logging.getLogger(__name__)
_announced: set[str] = set()


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
    def from_environment(cls, keys_dir: Path) -> "MasterKey":
        """LMDP_MASTER_KEY, else LMDP_MASTER_KEY_FILE, else an existing development key (with a warning)."""
        if os.environ.get(MASTER_KEY_ENV):
            return cls(_decode_master(os.environ[MASTER_KEY_ENV], MASTER_KEY_ENV), MASTER_KEY_ENV)
        if os.environ.get(MASTER_KEY_FILE_ENV):
            return cls.from_file(Path(os.environ[MASTER_KEY_FILE_ENV]), f"{MASTER_KEY_FILE_ENV}=")
        development = keys_dir / DEVELOPMENT_MASTER_KEY
        if development.exists():
            if str(development) not in _announced:  # once per process, not on every key load
                _announced.add(str(development))
                log.warning("USING THE DEVELOPMENT MASTER KEY %s: never do this with real data", development)
            return cls(_decode_master(development.read_text(encoding="ascii"), str(development)), str(development), True)
        raise MasterKeyMissing(
            f"no master key: set {MASTER_KEY_ENV} (32 random bytes, base64) or {MASTER_KEY_FILE_ENV}; "
            "`lmdp demo` creates a development key for trying the platform"
        )

    @classmethod
    def from_file(cls, path: Path, label: str = "") -> "MasterKey":
        """A master key kept in a file (base64), as ``LMDP_MASTER_KEY_FILE`` or ``lmdp keys rotate`` name it."""
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise MasterKeyMissing(f"{label}{path} cannot be read: {error.__class__.__name__}") from None
        return cls(_decode_master(text, f"{label}{path}"), f"file {path}")

    @classmethod
    def create_development(cls, keys_dir: Path) -> "MasterKey":
        """A development master key in keys/ (demo only): stored beside the keys it protects, so it protects nothing."""
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = keys_dir / DEVELOPMENT_MASTER_KEY
        if not path.exists():
            _write_private(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii") + "\n", exclusive=True)
            log.warning("CREATED A DEVELOPMENT MASTER KEY %s: for demos only, never with real data", path)
        return cls(_decode_master(path.read_text(encoding="ascii"), str(path)), str(path), True)


@dataclass(frozen=True)
class ProjectKey:
    """A project's key. ``key_id`` is random, so it tells nothing about the key itself."""

    project: str
    key_id: str
    created: str
    material: bytes = field(repr=False)


def _write_private(path: Path, text: str, exclusive: bool = False) -> None:
    """Write a 0600 file atomically: readers see the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(partial, path)  # fails if the target exists: never replace a key
        else:
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def tombstone_file(keys_dir: Path, project: str) -> Path:
    return Path(keys_dir) / f"{project}.destroyed.json"


def destroyed_message(keys_dir: Path, project: str) -> str | None:
    """Why a project can never be built again, from its tombstone; None if its key was never destroyed.

    Needs no master key, so approval checks can say it before anything is unwrapped.
    """
    tombstone = tombstone_file(keys_dir, project)
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


class Keystore:
    """Project keys in one folder, wrapped by one master key."""

    def __init__(self, directory: Path, master: MasterKey):
        self.directory = Path(directory)
        self._master = master

    def __repr__(self) -> str:
        return f"Keystore({self.directory}, master from {self._master.origin})"

    def _check_project(self, project: str) -> None:
        if not PROJECT_ID.match(project):
            raise KeystoreError(f"{project!r} is not a project id ([A-Z0-9][A-Z0-9-]{{2,31}})")

    def key_file(self, project: str) -> Path:
        self._check_project(project)
        return self.directory / f"{project}.key.json"

    def tombstone(self, project: str) -> Path:
        self._check_project(project)
        return tombstone_file(self.directory, project)

    def projects(self) -> list[str]:
        return sorted(p.name.removesuffix(".key.json") for p in self.directory.glob("*.key.json"))

    def _wrap(self, project: str, key_id: str, created: str, material: bytes, master: MasterKey) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = AESGCM(master.material).encrypt(nonce, material, project.encode("ascii"))
        return json.dumps({
            "format": FILE_FORMAT,
            "project": project,
            "key_id": key_id,
            "created": created,
            "algorithm": "AES-256-GCM, associated data = project id",
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
        }, indent=2) + "\n"

    def create(self, project: str) -> ProjectKey:
        """A new key for a project that never had one; refuses if it has or had one."""
        path = self.key_file(project)
        if path.exists():
            raise KeyExists(f"project {project} already has a key ({path}); its pseudonyms must stay stable")
        if self.tombstone(project).exists():
            raise KeyDestroyed(self._destroyed_message(project))
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ProjectKey(project, "key-" + secrets.token_hex(8), _utc_now(), secrets.token_bytes(KEY_BYTES))
        try:
            _write_private(path, self._wrap(project, key.key_id, key.created, key.material, self._master), exclusive=True)
        except FileExistsError:
            raise KeyExists(f"project {project} got a key concurrently ({path}); use that one") from None
        log.info("created key %s for project %s", key.key_id, project)
        return key

    def _destroyed_message(self, project: str) -> str:
        return destroyed_message(self.directory, project) or f"the key of project {project} was destroyed"

    def load(self, project: str) -> ProjectKey:
        path = self.key_file(project)
        if not path.exists():
            if self.tombstone(project).exists():
                raise KeyDestroyed(self._destroyed_message(project))
            raise KeyNotFound(f"project {project} has no key in {self.directory}; it is created when the project is approved")
        return self._read(path, project, self._master)

    def _read(self, path: Path, project: str, master: MasterKey) -> ProjectKey:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("format") != FILE_FORMAT or record.get("project") != project:
                raise ValueError("not a key file of this project")
            nonce = base64.b64decode(record["nonce"], validate=True)
            wrapped = base64.b64decode(record["wrapped_key"], validate=True)
            key_id, created = record["key_id"], record["created"]
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            raise CorruptKeyFile(
                f"{path} is damaged or truncated; restore it from the keystore backup (no new key is made)"
            ) from None
        try:
            material = AESGCM(master.material).decrypt(nonce, wrapped, project.encode("ascii"))
        except (InvalidTag, ValueError):
            raise WrongMasterKey(
                f"the key of project {project} ({key_id}) does not unwrap: the master key from {master.origin} "
                f"is not the one it was wrapped with, or {path} was altered"
            ) from None
        if len(material) != KEY_BYTES:
            raise CorruptKeyFile(f"{path} holds a key of the wrong size; restore it from the keystore backup")
        return ProjectKey(project, key_id, created, material)

    def destroy(self, project: str, reason: str) -> str:
        """Crypto-shred a project's key; return its key id. Later loads and creates fail."""
        key = self.load(project)
        record = {"project": project, "key_id": key.key_id, "destroyed": _utc_now(), "reason": reason}
        _write_private(self.tombstone(project), json.dumps(record, indent=2) + "\n")
        self.key_file(project).unlink()
        log.info("destroyed key %s of project %s: %s", key.key_id, project, reason)
        return key.key_id

    def master_material_is(self, other: MasterKey) -> bool:
        """Whether ``other`` is the master key this keystore uses (compared in constant time)."""
        return hmac.compare_digest(self._master.material, other.material)

    def rewrap(self, new_master: MasterKey) -> list[str]:
        """Re-encrypt every project key under ``new_master``; the keys, and so every pseudonym, stay the same.

        Every key is unwrapped first: with one wrong or damaged file nothing is rewritten.
        """
        keys = [self._read(self.key_file(p), p, self._master) for p in self.projects()]
        for key in keys:
            _write_private(self.key_file(key.project), self._wrap(key.project, key.key_id, key.created, key.material, new_master))
        self._master = new_master
        log.info("rewrapped %d project keys under the master key from %s", len(keys), new_master.origin)
        return [key.project for key in keys]

"""The audit log: one JSON line per event that matters to the data protection officer, in a hash chain.

``audit/audit.jsonl`` is append-only: deliveries accepted and refused, builds requested,
started, published, refused and failed, approvals refused, keys created, reissued and
destroyed, extracts deleted, projects retired, the master key rotated. Lines carry key
ids, never keys, and project ids, never persons.

Every line carries a sequence number, the hash of the line before it and its own hash
(SHA-256 over the line's canonical JSON without the hash), so editing, deleting,
inserting or reordering a line breaks the chain at that line (``verify``). Cutting the
end of the file keeps a valid chain; that is why the run that writes an event also
records the new chain head (sequence and hash) in Dagster's event log (the
``on_append`` callback), and ``verify`` compares the file with the latest head Dagster
holds. Writers take an exclusive lock on the file, so concurrent runs never interleave
or fork the chain; each line is flushed and synced before the call returns.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .paths import PRIVATE_DIR, PRIVATE_FILE

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64
TAIL_BYTES = 64 * 1024


def canonical(entry: dict) -> str:
    """The one serialisation every hash is computed over."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def line_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"}).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Head:
    """The chain's last line: its sequence number and hash."""

    sequence: int
    hash: str


def _last_line(handle) -> dict | None:
    """The last complete line of an open file (read from the end, a block at a time)."""
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    if end == 0:
        return None
    size = min(end, TAIL_BYTES)
    while True:
        handle.seek(end - size)
        lines = handle.read(size).rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or size == end:
            return json.loads(lines[-1])
        size = min(end, size * 2)


class AuditLog:
    """The platform's audit log in ``directory``; ``on_append`` hears of every line written."""

    def __init__(self, directory: Path, on_append: Callable[[dict], None] | None = None):
        self.directory = Path(directory)
        self.on_append = on_append

    @property
    def path(self) -> Path:
        return self.directory / AUDIT_FILE

    def record(self, event: str, **fields) -> dict:
        """Append one event to the chain and return the line written (with its sequence and hash)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        with os.fdopen(descriptor, "r+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            last = _last_line(handle)
            entry = {
                "seq": (last["seq"] + 1) if last else 1,
                "prev": last["hash"] if last else GENESIS,
                "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "event": event,
                **fields,
            }
            entry["hash"] = line_hash(entry)
            handle.write((canonical(entry) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        if self.on_append is not None:
            self.on_append(entry)
        return entry

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def head(self) -> Head | None:
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            last = _last_line(handle)
        return Head(last["seq"], last["hash"]) if last else None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: int
    message: str
    bad_line: int | None = None


def verify(path: Path, recorded_head: Head | None = None) -> Verdict:
    """Check the whole chain, and that it reaches the head Dagster recorded; name the first bad line."""
    if not Path(path).exists():
        if recorded_head is not None:
            return Verdict(False, 0, f"{path} is missing, but Dagster recorded line {recorded_head.sequence} of it", 1)
        return Verdict(True, 0, f"{path} does not exist yet: nothing audited")
    previous, sequence, number, by_sequence = GENESIS, 0, 0, {}
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                entry = json.loads(raw)
                if not isinstance(entry, dict):
                    raise ValueError
            except ValueError:
                return Verdict(False, number, f"line {number} is not a JSON object: the file was edited", number)
            if entry.get("hash") != line_hash(entry):
                return Verdict(False, number, f"line {number} (seq {entry.get('seq')}) does not match its hash: it was edited", number)
            if entry.get("seq") != sequence + 1:
                return Verdict(False, number, f"line {number} has seq {entry.get('seq')} where {sequence + 1} was due: "
                               "a line was deleted, inserted or moved before it", number)
            if entry.get("prev") != previous:
                return Verdict(False, number, f"line {number} does not follow the line before it: a line was replaced or reordered", number)
            previous, sequence = entry["hash"], entry["seq"]
            by_sequence[sequence] = entry["hash"]
    if recorded_head is not None:
        if recorded_head.sequence > sequence:
            return Verdict(False, number, f"the log ends at seq {sequence} but Dagster recorded seq {recorded_head.sequence}: "
                           "lines were cut from its end", sequence + 1)
        if by_sequence[recorded_head.sequence] != recorded_head.hash:
            return Verdict(False, recorded_head.sequence, f"line {recorded_head.sequence} is not the line Dagster recorded: "
                           "the log was rewritten", recorded_head.sequence)
    return Verdict(True, number, f"{number} lines, chain intact" + (
        f", reaches the head Dagster recorded (seq {recorded_head.sequence})" if recorded_head else ""))

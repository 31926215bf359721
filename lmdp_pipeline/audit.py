"""The audit log: one JSON line per event that matters to the data protection officer.

``audit/audit.jsonl`` is append-only: builds, refused approvals, key creation and
destruction, revocations and expiries. Each line is flushed and synced before the
call returns. Lines carry key ids, never keys, and project ids, never persons.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

AUDIT_FILE = "audit.jsonl"


def record(audit_dir: Path, event: str, **fields) -> dict:
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "event": event, **fields}
    audit_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(audit_dir / AUDIT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def entries(audit_dir: Path) -> list[dict]:
    path = audit_dir / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

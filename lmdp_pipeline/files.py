"""Files: reading in blocks and hashing (deliveries, external files and approvals can be large), and private atomic writes."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from .paths import PRIVATE_DIR, PRIVATE_FILE

BLOCK_BYTES = 1 << 20


def read_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(BLOCK_BYTES), b"")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    for block in read_blocks(path):
        digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: Path, cache: dict[str, list]) -> str:
    """sha256 of a file, re-read only when its size or modification time changed since ``cache`` saw it.

    ``cache`` maps a path to ``[mtime_ns, size, sha256]``; it is updated in place, so a
    sensor can keep it in its cursor from one tick to the next.
    """
    stat = path.stat()
    seen = cache.get(str(path))
    if seen and seen[:2] == [stat.st_mtime_ns, stat.st_size]:
        return seen[2]
    digest = sha256_of(path)
    cache[str(path)] = [stat.st_mtime_ns, stat.st_size, digest]
    return digest


def sync_directory(directory: Path) -> None:
    """fsync a folder, so a rename or unlink in it survives a power cut."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_private(path: Path, text: str, exclusive: bool = False) -> None:
    """Write a 0600 file atomically and durably: readers see the old file or the new one, never half of one.

    ``exclusive``: fail with FileExistsError rather than replace an existing file.
    """
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(partial, path)  # fails if the target exists
        else:
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    sync_directory(path.parent)


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parent as 0700, whatever the process umask: zones hold identified data."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR)
    return path


def write_private_text(path: Path, text: str) -> None:
    """A new 0600 text file, whatever the process umask (the caller publishes its folder by rename)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)

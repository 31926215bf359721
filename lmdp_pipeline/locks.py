"""Locks: two runs never work on the same project, or on the same register month, at the same time.

An advisory ``flock`` on a file under ``locks/`` (``<project>.lock``, or
``deliveries/<register>_<month>.lock``): the kernel releases it when the holder exits,
however it exits (a run killed with SIGKILL leaves no stale lock), so whoever takes it
next may safely clean up what a killed holder left. It holds between processes of one
machine, or of machines sharing a file system that honours ``flock``
(docs/scaling-out.md); the run queue's per-project and per-partition concurrency limits
are the second line of defence across machines.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .paths import PRIVATE_DIR, PRIVATE_FILE

WAIT_SECONDS = 3600.0
POLL_SECONDS = 0.2


class LockTimeout(Exception):
    """Another run held the lock for longer than this one could wait."""


def is_held(path: Path) -> bool:
    """Whether another process holds the lock at ``path`` now (a hint for messages: it may change at once)."""
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing releases the probe's own lock
    return False


@contextmanager
def held(path: Path, what: str, wait_seconds: float = WAIT_SECONDS, on_wait=None) -> Iterator[None]:
    """Hold the lock at ``path`` for the block; wait for it up to ``wait_seconds`` (``on_wait`` is told once)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{what}: another run held {path.name} for more than {wait_seconds:.0f} s; nothing was done; "
                        "look for a stuck run in the Dagster UI, then retry"
                    ) from None
                if not told and on_wait is not None:
                    on_wait()
                    told = True
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock

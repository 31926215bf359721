"""Whether a process that took on some work is still there: host, pid and start time.

A run started by ``lmdp`` or by the daemon's run launcher belongs to one process. When
that process is killed (SIGKILL, OOM killer, a power cut of a worker), nothing tells
Dagster's instance, and the run would stay STARTED for ever. A pid alone is not an
identity: the kernel reuses pids, so a process counts as the same one only if it was
already running when the pid was recorded (its start time, from ``/proc``, is not
later). A zombie (killed, not yet reaped) counts as gone. Only processes of this host
can be looked at; for another host the answer is "cannot tell".
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

START_SLACK_SECONDS = 2.0
"""Clock ticks and recorded timestamps differ by rounding; a reused pid starts much later than this."""


def this_host() -> str:
    return socket.gethostname()


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("/proc/stat has no btime")


def started_at(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if there is no live process with it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):  # zombie or dead: killed, waiting for its parent
        return None
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def alive(host: str, pid: int, recorded_at: float) -> bool | None:
    """True if the process recorded as (host, pid) at ``recorded_at`` still runs, False if gone, None if another host."""
    if host != this_host():
        return None
    started = started_at(pid)
    return started is not None and started <= recorded_at + START_SLACK_SECONDS

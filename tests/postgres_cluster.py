"""A throwaway PostgreSQL cluster for the production-configuration test and benchmark.

Debian's postgresql package (``make postgres`` installs it) provides the tools. The
cluster lives in a temporary folder, listens on a free local port with a random
password, and runs as an unprivileged user when the caller is root (PostgreSQL refuses
root). It is stopped and deleted on exit, whatever happened inside.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

from .dagster_services import free_port

UNPRIVILEGED = "nobody"


class PostgresMissing(RuntimeError):
    """PostgreSQL's server tools are not installed."""


def pg_bin(tool: str) -> str:
    found = shutil.which(tool) or next(iter(sorted(glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None)
    if found is None:
        raise PostgresMissing(f"PostgreSQL's {tool} is missing: install Debian's postgresql package (`make postgres` does)")
    return found


def _as_unprivileged() -> dict:
    """Popen arguments that run a PostgreSQL tool as an unprivileged user when the caller is root."""
    return {"user": UNPRIVILEGED, "group": pwd.getpwnam(UNPRIVILEGED).pw_gid, "extra_groups": []} if os.geteuid() == 0 else {}


@contextmanager
def temporary_cluster(database: str = "dagster") -> Iterator[dict[str, str]]:
    """Yield the ``DAGSTER_PG_*`` variables deploy/dagster.yaml reads, for a fresh cluster holding ``database``."""
    tools = {tool: pg_bin(tool) for tool in ("initdb", "pg_ctl", "createdb")}
    folder = Path(tempfile.mkdtemp(prefix="lmdp-pg-"))
    os.chmod(folder, 0o755)
    password = secrets.token_urlsafe(18)
    (folder / "pwfile").write_text(password + "\n")
    os.chmod(folder / "pwfile", 0o600)  # read by initdb only, then removed
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED)
        for path in (folder, folder / "pwfile"):
            os.chown(path, user.pw_uid, user.pw_gid)
    port, data = free_port(), folder / "data"
    run = dict(check=True, capture_output=True, text=True, timeout=300, **_as_unprivileged())
    try:
        subprocess.run([tools["initdb"], "-D", str(data), "-U", "lmdp", "--pwfile", str(folder / "pwfile"),
                        "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], **run)
        (folder / "pwfile").unlink()
        subprocess.run([tools["pg_ctl"], "-D", str(data), "-l", str(folder / "postgres.log"), "-w", "-t", "120", "start",
                        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"], **run)
        subprocess.run([tools["createdb"], "-h", "127.0.0.1", "-p", str(port), "-U", "lmdp", database],
                       env=os.environ | {"PGPASSWORD": password}, check=True, capture_output=True, text=True, timeout=60)
        yield {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_DB": database,
               "DAGSTER_PG_USER": "lmdp", "DAGSTER_PG_PASSWORD": password}
    finally:
        subprocess.run([tools["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=120,
                       **_as_unprivileged())
        shutil.rmtree(folder, ignore_errors=True)

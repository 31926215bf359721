"""Where DuckDB may spill temporary data that holds identifiers: a private folder in the identified zone.

When memory runs short DuckDB writes temporary tables and large intermediate results to
disk, by default beside the database file (``<file>.tmp``) or in ``.tmp`` under the
working directory. Ingestion, extract builds, estimates and external-file checks hold
matricules in such tables, so each of their connections gets its own folder under
``<zone>/.spill/`` (mode 0700) inside the zone whose data it holds, removed when the work
is done, whatever happens. A process killed with SIGKILL cannot remove it: folders carry
a label (a build's names its project), so the next run of the same work removes them.

``LMDP_DUCKDB_MEMORY_LIMIT`` (for example ``1500MB``), when set, caps the memory of every
such connection that does not set its own limit: DuckDB then spills to the private folder
instead of growing. A host that runs several builds at once sets it so that their sum
fits (DuckDB's default is 80% of the machine's memory, per connection).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .paths import PRIVATE_DIR, spill_dir

MEMORY_LIMIT_ENV = "LMDP_DUCKDB_MEMORY_LIMIT"


@contextmanager
def spill_folder(zone: Path, label: str = "work") -> Iterator[Path]:
    folder = spill_dir(zone, label, uuid.uuid4().hex)
    folder.mkdir(parents=True, mode=PRIVATE_DIR)
    os.chmod(folder, PRIVATE_DIR)
    os.chmod(folder.parent, PRIVATE_DIR)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def connect(spill: Path, database: str = ":memory:", **settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose temporary data can only go to ``spill``, within the deployment's memory limit."""
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    defaults = {"memory_limit": limit} if limit and "memory_limit" not in settings else {}
    try:
        return duckdb.connect(database, config={"temp_directory": str(spill), **defaults, **settings})
    except duckdb.Error as error:
        if defaults:
            raise ValueError(f"{MEMORY_LIMIT_ENV}={limit!r} is not a memory size DuckDB accepts (for example 1500MB or 2GB): "
                             f"{error}") from None
        raise

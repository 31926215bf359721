"""Researchers' clients on a built project: DuckDB 1.4 opens the extract; Debian's age opens the package.

Both run outside this environment: DuckDB 1.4 from its own virtual environment
(``make old-duckdb``, path in ``LMDP_OLD_DUCKDB_PYTHON``), age and tar as Debian ships
them (``make age``), the manifest checked with coreutils' ``sha256sum -c``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import duckdb
import pyrage
import pytest

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.exports.publish import export_project
from lmdp_pipeline.keys import Keystore, MasterKey
from lmdp_pipeline.paths import PACKAGE_MANIFEST, PROJECT_ROOT

from .test_exports import build, make_home

pytestmark = pytest.mark.slow

IDENTITY = pyrage.x25519.Identity.generate()
READ_EVERY_TABLE = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
rows = {t: [[str(v) for v in row] for row in con.execute(f'SELECT * FROM "{t}"').fetchall()] for t in tables}
print(json.dumps({"version": duckdb.__version__, "rows": rows}))
"""


@pytest.fixture(scope="module")
def built(small_home, tmp_path_factory, contracts):
    paths = make_home(small_home, tmp_path_factory.mktemp("slow-exports"), {"P2026-001": [str(IDENTITY.to_public())]})
    build(paths, contracts, Keystore(paths.keys, MasterKey(secrets.token_bytes(32), "test")), "P2026-001")
    export_project(paths, contracts, "P2026-001", AuditLog(paths.audit))
    return paths


def old_duckdb() -> str:
    python = os.environ.get("LMDP_OLD_DUCKDB_PYTHON", str(PROJECT_ROOT / ".venv-duckdb-1.4.0" / "bin" / "python"))
    if not Path(python).exists():
        pytest.fail(f"no DuckDB 1.4 environment at {python}: run `make old-duckdb` (or set LMDP_OLD_DUCKDB_PYTHON)")
    return python


def test_duckdb_1_4_opens_the_extract_and_reads_every_table(built):
    path = built.extract_file("P2026-001")
    output = subprocess.run([old_duckdb(), "-c", READ_EVERY_TABLE, str(path)], capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr
    old = json.loads(output.stdout)
    assert old["version"].startswith("1.4.")
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        new = {t: [[str(v) for v in row] for row in con.execute(f'SELECT * FROM "{t}"').fetchall()] for t in tables}
    assert set(old["rows"]) == set(new) >= {"individuals", "jobs", "absences", "external_survey_2025", "_manifest"}
    for table, rows in new.items():
        assert old["rows"][table] == rows, table
    assert sum(len(r) for r in new.values()) > 500, "rows were read and compared"


def test_age_decrypts_the_package_and_every_file_matches_the_manifest(built, tmp_path):
    if shutil.which("age") is None:
        pytest.fail("Debian's age is not installed: run `make age`")
    identity = tmp_path / "identity.txt"
    identity.write_text(f"{IDENTITY}\n")
    out = tmp_path / "out"
    out.mkdir()
    decrypt = subprocess.Popen(["age", "--decrypt", "-i", str(identity), str(built.package_file("P2026-001"))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(out)], stdin=decrypt.stdout, capture_output=True, timeout=300)
    decrypt.stdout.close()
    assert decrypt.wait(300) == 0 and untar.returncode == 0, decrypt.stderr.read() + untar.stderr
    folder = out / "P2026-001"
    check = subprocess.run(["sha256sum", "--check", "--strict", PACKAGE_MANIFEST], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = [line.split("  ", 1)[1] for line in (folder / PACKAGE_MANIFEST).read_text().splitlines()]
    assert sorted(listed) == sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != PACKAGE_MANIFEST)
    assert (folder / "P2026-001.duckdb").read_bytes() == built.extract_file("P2026-001").read_bytes()
    for path in built.exports_dir("P2026-001").iterdir():
        assert (folder / "exports" / path.name).read_bytes() == path.read_bytes(), path.name


def test_age_refuses_a_wrong_identity(built, tmp_path):
    if shutil.which("age") is None:
        pytest.fail("Debian's age is not installed: run `make age`")
    identity = tmp_path / "wrong.txt"
    identity.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    result = subprocess.run(["age", "--decrypt", "-i", str(identity), "-o", str(tmp_path / "plain.tar"),
                             str(built.package_file("P2026-001"))], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no identity matched any of the recipients" in result.stderr
    assert not (tmp_path / "plain.tar").exists() or (tmp_path / "plain.tar").stat().st_size == 0

"""The extract documents itself: ``_manifest``, ``_inputs``, ``_dictionary`` and ``_lineage``.

- ``_manifest``: project, approval, people (reviewers, researchers), period and the
  months each table holds, build time, code, storage and contract versions, Dagster run id, key
  id (never the key), row counts and grains, external files and their linkage.
- ``_inputs``: every file read (warehouse months with the sha256 of the delivery they
  came from, external files with their own) and its row count.
- ``_dictionary``: every delivered column with its type, level, description and labels.
- ``_lineage``: for every delivered column its source and the transformations applied.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb

from .. import __version__
from ..keys import ProjectKey
from ..paths import PlatformPaths, warehouse_file, warehouse_month
from .plan import Plan


def input_files(plan: Plan, paths: PlatformPaths, con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every warehouse file the extract reads: register, month, the delivery's sha256 and the row count.

    Both come from the Parquet footers (written at ingestion), read in one query per
    register, so nothing is re-hashed.
    """
    inputs = []
    for register in plan.registers_read:
        files = [str(warehouse_file(paths.warehouse, register, month)) for month in plan.period.months]
        rows = dict(con.execute("SELECT file_name, sum(num_rows) FROM parquet_file_metadata(?) GROUP BY ALL", [files]).fetchall())
        sha256 = dict(con.execute(
            "SELECT file_name, decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = 'source_sha256'", [files]
        ).fetchall())
        inputs += [{"register": register, "month": warehouse_month(f), "file": f.rsplit("/", 1)[1],
                    "source_sha256": sha256.get(f), "rows": int(rows[f])} for f in files]
    return inputs


def months_per_table(con: duckdb.DuckDBPyConnection, plan: Plan, tables: list) -> dict[str, list[str]]:
    """The reference months each register table holds (external tables have none)."""
    held = {}
    for table in tables:
        column = plan.month_column(table.name)
        if column is not None:
            held[table.name] = [m for (m,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{table.name}" ORDER BY 1').fetchall()]
    return held


def storage_version(con: duckdb.DuckDBPyConnection) -> str:
    """The DuckDB storage format of the file being written, as DuckDB reports it (``v1.4.0+``: DuckDB 1.4 or newer opens it)."""
    (tags,) = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return tags["storage_version"]


def _output_threshold(approval) -> dict[str, str]:
    """The output threshold the project's risk acceptance commits it to, where output checking reads it (the extract)."""
    acceptance = approval.risk_acceptance
    if acceptance is None or acceptance.output_threshold is None:
        return {}
    return {"output_threshold": str(acceptance.output_threshold)}


def write_documentation(con, plan: Plan, key: ProjectKey, tables: list, externals: list, provenance: dict, paths: PlatformPaths) -> None:
    approval, contracts = plan.approval, plan.contracts
    manifest = {
        "project": approval.project,
        "title": approval.title,
        "institution": approval.institution,
        "approved_on": str(approval.approved_on),
        "approved_by": json.dumps(approval.approved_by),
        "researchers": json.dumps(approval.researchers),
        "period": f"{plan.period.first} to {plan.period.last}",
        "period_requested": f"{approval.period.from_} to {approval.period.to}",
        "table_months": json.dumps(months_per_table(con, plan, tables)),
        "expires_on": str(approval.expires_on),
        "build_time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": __version__,
        "storage_version": storage_version(con),
        "key_id": key.key_id,
        "row_order": "by pseudonym (person_id or employer_id), then every other column: a random order for each project",
        "contract_versions": json.dumps({t.name: contracts[t.name].version for t in tables if t.name in contracts.registers}),
        "table_rows": json.dumps({t.name: t.rows for t in tables}),
        "table_grains": json.dumps({t.name: contracts[t.name].grain for t in tables if t.name in contracts.registers}),
        **_output_threshold(approval),
        **{f"{e.name}_sha256": e.sha256 for e in externals},
        **{f"{e.name}_linkage": json.dumps(e.linkage.as_dict()) for e in externals},
        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in provenance.items()},
    }
    con.execute("CREATE TABLE _manifest (item VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO _manifest VALUES (?, ?)", list(manifest.items()))
    con.execute("CREATE TABLE _inputs (register VARCHAR, month VARCHAR, file VARCHAR, source_sha256 VARCHAR, rows BIGINT)")
    con.executemany("INSERT INTO _inputs VALUES (?, ?, ?, ?, ?)", [
        (i["register"], i["month"], i["file"], i["source_sha256"], i["rows"]) for i in input_files(plan, paths, con)
    ] + [(e.name, None, f"external/{approval.project}/{e.file.name}", e.sha256, e.linkage.rows_read) for e in externals])
    con.execute(
        "CREATE TABLE _dictionary (table_name VARCHAR, column_name VARCHAR, data_type VARCHAR, level VARCHAR, "
        "description VARCHAR, codes VARCHAR)"
    )
    con.execute("CREATE TABLE _lineage (table_name VARCHAR, column_name VARCHAR, source VARCHAR, transformations VARCHAR)")
    types = {(t, c): d for t, c, d in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database()"
    ).fetchall()}
    for table in tables:
        con.executemany("INSERT INTO _dictionary VALUES (?, ?, ?, ?, ?, ?)", [
            (table.name, c.name, types[(table.name, c.name)], c.level, c.description,
             json.dumps(c.labels, ensure_ascii=False) if c.labels else None)
            for c in table.columns
        ])
        con.executemany("INSERT INTO _lineage VALUES (?, ?, ?, ?)", [
            (table.name, c.name, c.source, "; ".join(c.transformations)) for c in table.columns
        ])

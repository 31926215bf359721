"""Build one project's extract: a self-documenting DuckDB file of exactly what was approved.

Everything happens in one DuckDB database file written under a hidden name beside its
target and renamed into place when complete (permissions 0600): a reader sees the
previous extract or the new one, never a mix. The population and period come from
``scope`` (values bound as parameters), each variable from its approved level in
``granularity``, and every identifier from the project's pseudonym maps: the extract
never holds a matricule, an employer number or a provider code.

Tables: one per requested register, plus ``_manifest``, ``_inputs`` (every warehouse
file read, with the sha256 of the delivery it came from and its row count),
``_dictionary`` and ``_lineage`` (SPEC section 5). Identifier columns are renamed by kind: ``person_id``
(the register's person), ``related_person_id`` (a second person, in family links),
``employer_id`` and ``provider_id``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import __version__
from .approvals import Approval, requested_level
from .contracts import Contract, ContractSet, IdentifierKind, Variable
from .granularity import level_expression
from .keys import ProjectKey
from .pseudonyms import build_map
from .scope import population_sql, register_rows_sql
from .sql import quote_identifier as q
from .sql import quote_literal

PRIVATE_FILE = 0o600
DOCUMENTATION_TABLES = {"_manifest", "_inputs", "_dictionary", "_lineage"}
ID_COLUMNS = {IdentifierKind.employer: "employer_id", IdentifierKind.provider: "provider_id"}


@dataclass
class Column:
    """One delivered column and where it came from."""

    name: str
    source: str  # register.column
    level: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    transformations: list[str] = field(default_factory=list)


@dataclass
class ExtractResult:
    path: Path
    persons: int
    tables: dict[str, int]  # table -> rows
    columns: dict[str, list[Column]]
    checks: list = field(default_factory=list)  # extract_checks.CheckOutcome, when validated


class ExtractRefused(Exception):
    """The candidate extract failed a blocking check; it was deleted and the previous one kept."""

    def __init__(self, project: str, checks: list):
        self.checks = checks
        failed = [c for c in checks if not c.passed]
        super().__init__(
            f"extract of {project} not published: " + "; ".join(f"{c.name}: {', '.join(c.problems)}" for c in failed)
        )


def _identifier_column(contract: Contract, variable: Variable) -> str:
    persons = [v.name for v in contract.identifiers if v.identifier is IdentifierKind.person]
    if variable.identifier is IdentifierKind.person:
        return "person_id" if persons.index(variable.name) == 0 else "related_person_id"
    return ID_COLUMNS[variable.identifier]


def delivered_variables(contract: Contract, requested: dict[str, str]) -> list[tuple[Variable, str]]:
    """The requested variables at their resolved levels, with the person id and the month always in."""
    unknown = sorted(set(requested) - {v.name for v in contract.variables})
    if unknown:
        raise KeyError(f"{contract.register} has no variable {', '.join(unknown)}: check the approval with check_approval first")
    chosen = dict(requested)
    month = contract.delivery.month_column
    chosen.setdefault(month, "default")
    for variable in contract.identifiers:
        if variable.identifier is IdentifierKind.person:
            chosen.setdefault(variable.name, "pseudonym")
            break
    return [(v, requested_level(v, chosen[v.name])) for v in contract.variables if v.name in chosen]


def _column(contract: Contract, variable: Variable, level: str) -> Column:
    """What one delivered column is, for ``_dictionary`` and ``_lineage``."""
    source = f"{contract.register}.{variable.name}"
    filtered = "filtered to the project's population and period"
    if variable.identifier is not None:
        return Column(_identifier_column(contract, variable), source, "pseudonym",
                      f"{variable.title}: pseudonym under the project's key",
                      transformations=["pseudonymised with the project's key", filtered])
    level_obj = variable.level(level)
    labels = {}
    if level_obj.code_level:
        labels = variable.codes.level(level_obj.code_level).labels
    elif variable.codes is not None:
        labels = variable.codes.finest.labels
    steps = [filtered] if level_obj.is_as_delivered else [f"coarsened to level '{level}': {level_obj.derivation()}", filtered]
    return Column(variable.name, source, level, variable.description, labels, steps)


def _select(variable: Variable, level: str, column: Column, maps: dict[IdentifierKind, str]) -> str:
    if variable.identifier is not None:
        value = f"(SELECT pseudonym FROM {maps[variable.identifier]} m WHERE m.identifier = r.{q(variable.name)})"
    else:
        value = level_expression(variable, variable.level(level), "r." + q(variable.name))
    return f"{value} AS {q(column.name)}"


def planned_columns(approval: Approval, contracts: ContractSet, register: str) -> list[Column]:
    """The columns a register's table must have for this approval, in order."""
    contract = contracts[register]
    return [_column(contract, v, level) for v, level in delivered_variables(contract, approval.variables[register])]


@dataclass
class TableResult:
    register: str
    path: Path
    rows: int
    persons: int
    columns: list[Column]


def build_table(
    approval: Approval, contracts: ContractSet, warehouse: Path, register: str, key: ProjectKey, staging: Path
) -> TableResult:
    """One requested register for one project, pseudonymised, as ``staging/<register>.parquet`` (0600, atomic).

    Each table hashes its own identifiers; HMAC under one key is deterministic, so the
    same person gets the same person_id in every table built for the project.
    """
    contract = contracts[register]
    delivered = delivered_variables(contract, approval.variables[register])
    sql, params = population_sql(approval, contracts, warehouse)
    period = {"period_from": params["period_from"], "period_to": params["period_to"]}
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = staging / f"{register}.parquet"
    partial = staging / f".{register}.{uuid.uuid4().hex}.partial"
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TEMP TABLE population AS {sql}", params)
        persons = con.execute("SELECT count(*) FROM population").fetchone()[0]
        con.execute(f"CREATE TEMP TABLE selected AS {register_rows_sql(contract, warehouse)}", period)
        maps = {}
        for kind in {v.identifier for v, _ in delivered if v.identifier is not None}:
            sources = [f"SELECT {q(v.name)} AS identifier FROM selected" for v, _ in delivered if v.identifier is kind]
            maps[kind] = f"map_{kind.value}"
            build_map(con, f"({' UNION ALL '.join(sources)})", "identifier", kind, key, maps[kind])
        planned = [_column(contract, v, level) for v, level in delivered]
        selects = [_select(v, level, column, maps) for (v, level), column in zip(delivered, planned)]
        con.execute(f"COPY (SELECT {', '.join(selects)} FROM selected r) TO {quote_literal(partial)} (FORMAT parquet)")
        rows = con.execute("SELECT count(*) FROM selected").fetchone()[0]
        os.chmod(partial, PRIVATE_FILE)
        os.replace(partial, target)
    finally:
        con.close()
        partial.unlink(missing_ok=True)
    return TableResult(register, target, rows, persons, planned)


def assemble_extract(
    approval: Approval, contracts: ContractSet, tables: list[TableResult], extracts: Path, key: ProjectKey, provenance: dict,
    warehouse: Path, validate=None,
) -> ExtractResult:
    """The DuckDB extract from the project's tables, with its documentation; replaces the previous one atomically.

    ``validate(candidate_path)`` returns check outcomes; any failure deletes the
    candidate and raises ExtractRefused, so a refused build never replaces a good extract.
    """
    missing = sorted(set(approval.variables) - {t.register for t in tables})
    if missing:
        raise ValueError(f"project {approval.project}: no table built yet for {', '.join(missing)}")
    extracts.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = extracts / f"{approval.project}.duckdb"
    partial = extracts / f".{approval.project}.{uuid.uuid4().hex}.partial.duckdb"
    con = duckdb.connect(str(partial))  # inside the 0700 extracts folder; 0600 before it gets its name
    try:
        for table in tables:
            con.execute(f"CREATE TABLE {q(table.register)} AS SELECT * FROM read_parquet(?)", [str(table.path)])
        counts = {t.register: t.rows for t in tables}
        columns = {t.register: t.columns for t in tables}
        _write_documentation(con, approval, contracts, key, counts, columns, provenance, warehouse)
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        partial.unlink(missing_ok=True)
        raise
    con.close()
    os.chmod(partial, PRIVATE_FILE)
    checks = validate(partial) if validate else []
    if any(not c.passed for c in checks):
        partial.unlink(missing_ok=True)
        raise ExtractRefused(approval.project, checks)
    os.replace(partial, target)
    return ExtractResult(target, max((t.persons for t in tables), default=0), counts, columns, checks)


def build_extract(
    approval: Approval, contracts: ContractSet, warehouse: Path, extracts: Path, key: ProjectKey, provenance: dict, staging: Path
) -> ExtractResult:
    """Every requested table, then the checked extract: what the Dagster assets do step by step."""
    from .extract_checks import check_extract

    tables = [build_table(approval, contracts, warehouse, register, key, staging) for register in approval.variables]
    validate = lambda path: check_extract(path, approval, contracts, warehouse, key)  # noqa: E731
    return assemble_extract(approval, contracts, tables, extracts, key, provenance, warehouse, validate)


def input_files(approval: Approval, warehouse: Path) -> list[dict]:
    """Every warehouse file the extract reads: register, month, the delivery's sha256 and the row count.

    Both come from the Parquet footer (written at ingestion), so nothing is re-hashed.
    """
    registers = sorted({b.register for b in approval.population} | set(approval.variables))
    inputs = []
    con = duckdb.connect()
    try:
        for register in registers:
            for path in sorted((warehouse / register).glob(f"{register}_*.parquet")):
                month = path.stem.rsplit("_", 1)[1]
                if not approval.period.from_ <= month <= approval.period.to:
                    continue
                rows = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(path)]).fetchone()[0]
                metadata = dict(con.execute("SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)", [str(path)]).fetchall())
                inputs.append({"register": register, "month": month, "file": path.name,
                               "source_sha256": metadata.get("source_sha256"), "rows": int(rows)})
    finally:
        con.close()
    return inputs


def _write_documentation(con, approval, contracts, key, tables, columns, provenance, warehouse: Path) -> None:
    manifest = {
        "project": approval.project,
        "title": approval.title,
        "institution": approval.institution,
        "period": f"{approval.period.from_} to {approval.period.to}",
        "expires_on": str(approval.expires_on),
        "build_time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": __version__,
        "key_id": key.key_id,
        "contract_versions": json.dumps({r: contracts[r].version for r in tables}),
        "table_rows": json.dumps(tables),
        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in provenance.items()},
    }
    con.execute("CREATE TABLE _manifest (item VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO _manifest VALUES (?, ?)", list(manifest.items()))
    con.execute("CREATE TABLE _inputs (register VARCHAR, month VARCHAR, file VARCHAR, source_sha256 VARCHAR, rows BIGINT)")
    con.executemany("INSERT INTO _inputs VALUES (?, ?, ?, ?, ?)", [
        (i["register"], i["month"], i["file"], i["source_sha256"], i["rows"]) for i in input_files(approval, warehouse)
    ])
    con.execute("CREATE TABLE _dictionary (table_name VARCHAR, column_name VARCHAR, level VARCHAR, description VARCHAR, codes VARCHAR)")
    con.execute("CREATE TABLE _lineage (table_name VARCHAR, column_name VARCHAR, source VARCHAR, transformations VARCHAR)")
    for table, delivered in columns.items():
        con.executemany("INSERT INTO _dictionary VALUES (?, ?, ?, ?, ?)", [
            (table, c.name, c.level, c.description, json.dumps(c.labels, ensure_ascii=False) if c.labels else None) for c in delivered
        ])
        con.executemany("INSERT INTO _lineage VALUES (?, ?, ?, ?)", [
            (table, c.name, c.source, "; ".join(c.transformations)) for c in delivered
        ])


def staged_table(approval: Approval, contracts: ContractSet, staging: Path, register: str) -> TableResult:
    """A table ``build_table`` wrote earlier (in another step), described again for assembly."""
    path = staging / f"{register}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"project {approval.project}: {register} has not been built ({path} missing)")
    columns = planned_columns(approval, contracts, register)
    con = duckdb.connect()
    try:
        person = "count(DISTINCT person_id)" if any(c.name == "person_id" for c in columns) else "0"
        rows, persons = con.execute(f"SELECT count(*), {person} FROM read_parquet(?)", [str(path)]).fetchone()
    finally:
        con.close()
    return TableResult(register, path, rows, persons, columns)

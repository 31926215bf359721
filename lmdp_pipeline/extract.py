"""Build one project's extract: a self-documenting DuckDB file of exactly what was approved.

The whole build happens on one DuckDB connection to a candidate file written under a
hidden name beside its target (``CandidateExtract``): the population is computed once,
each register's table is written straight into the candidate in one pass over the
warehouse (filter, coarsen, pseudonymise), the blocking checks run on the same
connection, and only then is the file renamed into place (permissions 0600). A reader
sees the previous extract or the new one, never a mix; a refused or failed build
leaves no file behind.

The population and period come from ``scope`` (values bound as parameters), each
variable from its approved level in ``granularity``, and every identifier from the
project's pseudonym maps: the extract never holds a matricule, an employer number or a
provider code. Maps live in temporary tables of the connection, which never reach the
file.

Tables: one per requested register, ``external_<name>`` per external dataset of the
researchers (linked by ``external``), plus ``_manifest``, ``_inputs`` (every file read:
warehouse months with the sha256 of the delivery they came from, external files with
their own, and row counts),
``_dictionary`` and ``_lineage`` (SPEC section 5). Identifier columns are renamed by
kind: ``person_id`` (the register's person), ``related_person_id`` (a second person, in
family links), ``employer_id`` and ``provider_id``.
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
from .external import ExternalTable, link_external
from .granularity import level_expression
from .keys import ProjectKey
from .pseudonyms import build_map
from .scope import period_parameters, population_sql, register_rows_sql
from .spill import connect, spill_folder
from .sql import quote_identifier as q

PRIVATE_FILE = 0o600
DOCUMENTATION_TABLES = {"_manifest", "_inputs", "_dictionary", "_lineage"}
ID_COLUMNS = {IdentifierKind.employer: "employer_id", IdentifierKind.provider: "provider_id"}
POPULATION_MAP = "population_map"


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
class TableResult:
    name: str
    rows: int
    persons: int  # distinct person_ids, filled from the checks' profile once they pass
    columns: list[Column]


@dataclass
class ExtractResult:
    path: Path
    persons: int  # the population
    tables: list[TableResult]
    checks: list = field(default_factory=list)  # extract_checks.CheckOutcome
    externals: list[ExternalTable] = field(default_factory=list)

    @property
    def rows(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}


class ExtractRefused(Exception):
    """The candidate extract failed a blocking check; it was deleted and the previous one kept."""

    def __init__(self, project: str, checks: list):
        self.checks = checks
        failed = [c for c in checks if not c.passed]
        super().__init__(
            f"extract of {project} not published: " + "; ".join(f"{c.name}: {', '.join(c.problems)}" for c in failed)
        )


def _identifier_column(contract: Contract, variable: Variable) -> str:
    if variable.identifier is IdentifierKind.person:
        return "person_id" if variable.name == contract.person_identifier.name else "related_person_id"
    return ID_COLUMNS[variable.identifier]


def delivered_variables(contract: Contract, requested: dict[str, str]) -> list[tuple[Variable, str]]:
    """The requested variables at their resolved levels, with the person id and the month always in."""
    unknown = sorted(set(requested) - {v.name for v in contract.variables})
    if unknown:
        raise KeyError(f"{contract.register} has no variable {', '.join(unknown)}: check the approval with check_approval first")
    chosen = dict(requested)
    chosen.setdefault(contract.delivery.month_column, "default")
    if contract.has_persons:
        chosen.setdefault(contract.person_identifier.name, "pseudonym")
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


def planned_columns(approval: Approval, contracts: ContractSet, register: str) -> list[Column]:
    """The columns a register's table must have for this approval, in order."""
    contract = contracts[register]
    return [_column(contract, v, level) for v, level in delivered_variables(contract, approval.variables[register])]


class CandidateExtract:
    """A hidden DuckDB file beside the extract, published by rename or deleted.

    Used as a context manager: leaving the block without ``publish()`` (an error, a
    refused check) deletes the candidate, so the previous extract stays as it was.
    The build's temporary tables hold matricules (population, maps, selected rows); if
    DuckDB spills them to disk, it does so in ``spill`` (a ``spill.spill_folder`` of the
    identified zone), never beside the extracts, which is DuckDB's default.
    """

    def __init__(self, extracts: Path, project: str, spill: Path):
        self.target = extracts / f"{project}.duckdb"
        self.path = extracts / f".{project}.{uuid.uuid4().hex}.partial.duckdb"
        self.spill = spill
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> CandidateExtract:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.con = connect(self.spill, str(self.path))  # inside the 0700 extracts folder; 0600 before it gets its name
        os.chmod(self.path, PRIVATE_FILE)
        return self

    def publish(self) -> Path:
        self.con.execute("CHECKPOINT")
        self.con.close()
        os.chmod(self.path, PRIVATE_FILE)
        os.replace(self.path, self.target)
        return self.target

    def __exit__(self, *exc) -> None:
        self.con.close()
        self.path.unlink(missing_ok=True)
        Path(f"{self.path}.wal").unlink(missing_ok=True)


class ExtractBuilder:
    """Writes one project's tables into a candidate extract, on the candidate's connection.

    ``scope()`` first: it computes the population once and its person pseudonyms
    (temporary table ``population_map``); every table then joins to that map, which
    filters to the population and pseudonymises in the same pass. Other identifiers
    (employers, providers, related persons) get maps over the rows selected. Every map
    built is listed in ``identifier_maps``: they are the identified zone this extract
    was made from, which the blocking checks compare every cell against.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, approval: Approval, contracts: ContractSet, warehouse: Path, key: ProjectKey):
        self.con, self.approval, self.contracts, self.warehouse, self.key = con, approval, contracts, warehouse, key
        self.identifier_maps: list[str] = []
        self.tables: list[TableResult] = []
        self.externals: list[ExternalTable] = []
        self.persons = 0

    def scope(self) -> int:
        sql, params = population_sql(self.approval, self.contracts, self.warehouse)
        self.con.execute(f"CREATE TEMP TABLE population AS {sql}", params)
        self.persons = build_map(self.con, "population", "person", IdentifierKind.person, self.key, POPULATION_MAP)
        self.identifier_maps.append(POPULATION_MAP)
        return self.persons

    def register_table(self, register: str) -> TableResult:
        """The register's table at the approved levels, pseudonymised, in the candidate file."""
        contract = self.contracts[register]
        delivered = delivered_variables(contract, self.approval.variables[register])
        columns = [_column(contract, v, level) for v, level in delivered]
        person = contract.person_identifier.name if contract.has_persons else None
        needed = [v.name for v, _ in delivered if v.name != person]
        rows = register_rows_sql(contract, self.warehouse, POPULATION_MAP if person else None, needed)
        others = [v for v, _ in delivered if v.identifier is not None and v.name != person]
        source = f"({rows})"
        if others:  # their maps need the selected rows first
            source = f"selected_{register}"
            self.con.execute(f"CREATE TEMP TABLE {source} AS {rows}", period_parameters(self.approval))
        joins, selects = [], []
        for (variable, level), column in zip(delivered, columns):
            if variable.name == person:
                value = "r.person_pseudonym"
            elif variable.identifier is not None:
                mapping = f"map_{register}_{variable.name}"
                build_map(self.con, source, q(variable.name), variable.identifier, self.key, mapping)
                self.identifier_maps.append(mapping)
                alias = f"m{len(joins)}"
                joins.append(f"LEFT JOIN {mapping} {alias} ON {alias}.identifier = r.{q(variable.name)}")
                value = f"{alias}.pseudonym"
            else:
                value = level_expression(variable, variable.level(level), "r." + q(variable.name))
            selects.append(f"{value} AS {q(column.name)}")
        self.con.execute(
            f"CREATE TABLE {q(register)} AS SELECT {', '.join(selects)} FROM {source} r {' '.join(joins)}",
            {} if others else period_parameters(self.approval),
        )
        counted = self.con.execute(f"SELECT count(*) FROM {q(register)}").fetchone()[0]
        table = TableResult(register, counted, 0, columns)  # persons: counted by the checks' profile
        self.tables.append(table)
        return table

    def external_table(self, name: str, directory: Path) -> TableResult:
        """The researchers' dataset ``name``, checked and linked to the population (``external``)."""
        linked = link_external(self.con, directory, self.approval.project, name, self.approval.external[name], POPULATION_MAP)
        self.externals.append(linked)
        dataset = self.approval.external[name]
        source = f"external/{self.approval.project}/{dataset.file}"
        link = f"linked from external data ({dataset.file}); rows of persons outside the population dropped"
        columns = [Column("person_id", f"{source}.{dataset.id_column}", "pseudonym",
                          "The person the row is about: pseudonym under the project's key, from the file's matricule",
                          transformations=["pseudonymised with the project's key", link])]
        for column, declared in dataset.columns.items():
            allowed = f"; values {declared.values}" if declared.values is not None else ""
            columns.append(Column(column, f"{source}.{column}", "as declared",
                                  f"Declared by the researchers: {declared.type}{allowed}", transformations=[link]))
        table = TableResult(linked.name, linked.linkage.linked, 0, columns)
        self.tables.append(table)
        return table

    def document(self, provenance: dict) -> None:
        _write_documentation(self.con, self.approval, self.contracts, self.key, self.tables, self.externals, provenance, self.warehouse)


def build_extract(
    approval: Approval, contracts: ContractSet, warehouse: Path, extracts: Path, key: ProjectKey, provenance: dict, external: Path
) -> ExtractResult:
    """Every requested table and external dataset, the documentation and the blocking checks, then the published file.

    Raises ExtractRefused (nothing published, previous extract kept) if a check fails.
    """
    from .extract_checks import check_extract, persons_per_table

    with spill_folder(warehouse) as spill, CandidateExtract(extracts, approval.project, spill) as candidate:
        builder = ExtractBuilder(candidate.con, approval, contracts, warehouse, key)
        builder.scope()
        for register in approval.variables:
            builder.register_table(register)
        for name in approval.external:
            builder.external_table(name, external)
        builder.document(provenance)
        checks = check_extract(candidate.con, approval, contracts, builder.identifier_maps)
        if any(not c.passed for c in checks):
            raise ExtractRefused(approval.project, checks)
        persons = persons_per_table(candidate.con)
        for table in builder.tables:
            table.persons = persons.get(table.name, 0)
        path = candidate.publish()
    return ExtractResult(path, builder.persons, builder.tables, checks, builder.externals)


def input_files(approval: Approval, warehouse: Path, con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every warehouse file the extract reads: register, month, the delivery's sha256 and the row count.

    Both come from the Parquet footers (written at ingestion), read in one query per
    register, so nothing is re-hashed.
    """
    inputs = []
    for register in sorted({b.register for b in approval.population} | set(approval.variables)):
        files = [str(path) for path in sorted((warehouse / register).glob(f"{register}_*.parquet"))
                 if approval.period.from_ <= path.stem.rsplit("_", 1)[1] <= approval.period.to]
        if not files:
            continue
        rows = dict(con.execute("SELECT file_name, sum(num_rows) FROM parquet_file_metadata(?) GROUP BY ALL", [files]).fetchall())
        sha256 = dict(con.execute(
            "SELECT file_name, decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = 'source_sha256'", [files]
        ).fetchall())
        inputs += [{"register": register, "month": Path(f).stem.rsplit("_", 1)[1], "file": Path(f).name,
                    "source_sha256": sha256.get(f), "rows": int(rows[f])} for f in files]
    return inputs


def _write_documentation(
    con, approval, contracts, key, tables: list[TableResult], externals: list[ExternalTable], provenance, warehouse: Path
) -> None:
    manifest = {
        "project": approval.project,
        "title": approval.title,
        "institution": approval.institution,
        "period": f"{approval.period.from_} to {approval.period.to}",
        "expires_on": str(approval.expires_on),
        "build_time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": __version__,
        "key_id": key.key_id,
        "contract_versions": json.dumps({t.name: contracts[t.name].version for t in tables if t.name in contracts.registers}),
        "table_rows": json.dumps({t.name: t.rows for t in tables}),
        "table_grains": json.dumps({t.name: contracts[t.name].grain for t in tables if t.name in contracts.registers}),
        **{f"{e.name}_sha256": e.sha256 for e in externals},
        **{f"{e.name}_linkage": json.dumps(e.linkage.as_dict()) for e in externals},
        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in provenance.items()},
    }
    con.execute("CREATE TABLE _manifest (item VARCHAR, value VARCHAR)")
    con.executemany("INSERT INTO _manifest VALUES (?, ?)", list(manifest.items()))
    con.execute("CREATE TABLE _inputs (register VARCHAR, month VARCHAR, file VARCHAR, source_sha256 VARCHAR, rows BIGINT)")
    con.executemany("INSERT INTO _inputs VALUES (?, ?, ?, ?, ?)", [
        (i["register"], i["month"], i["file"], i["source_sha256"], i["rows"]) for i in input_files(approval, warehouse, con)
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

"""Build one project's extract: a self-documenting DuckDB file of exactly what was approved.

The whole build happens on one DuckDB connection to a candidate file written under a
hidden name beside its target (``CandidateExtract``): the population is computed once,
each register's table is written straight into the candidate in one pass over the
warehouse (filter, coarsen, pseudonymise, sort), the blocking checks run on the same
connection, and only then is the file renamed into place (permissions 0600). A reader
sees the previous extract or the new one, never a mix; a refused or failed build
leaves no file behind. Once the data tables are written, their re-identification risk
is measured on the same connection (``lmdp_pipeline.risk``) and written as ``_risk``;
the ``disclosure_risk`` check judges it with the others.

The population and period come from ``scope`` (values bound as parameters), each
variable from its approved level in ``granularity``, and every identifier from the
project's pseudonym maps: the extract never holds a matricule, an employer number or a
provider code. Maps live in temporary tables of the connection, which never reach the
file. Rows are written in the order ``plan.row_order`` gives (pseudonyms first), never
in the warehouse's order, which is the delivery's, sorted by matricule and so by birth
date.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..contracts import IdentifierKind
from ..keys import ProjectKey
from ..paths import PRIVATE_DIR, PRIVATE_FILE, PRIVATE_UMASK, PlatformPaths
from ..risk.assess import RiskAssessment, assess_candidate
from ..risk.report import write_risk_table
from ..spill import connect, spill_folder
from ..sql import quote_identifier as q
from .checks import BuildFacts, CheckOutcome, check_extract, persons_per_table
from .documentation import write_documentation
from .external import ExternalTable, link_external
from .granularity import level_expression
from .plan import Plan, external_table, row_order
from .pseudonyms import build_map
from .scope import period_parameters, population_sql, register_rows_sql

POPULATION_MAP = "population_map"
STORAGE_VERSION = "v1.4.0"
"""The DuckDB storage format extracts are written in, set explicitly: DuckDB 1.4 and newer open them.

DuckDB 2 writes its own, newer format by default, which DuckDB 1.x cannot open, and
researchers' clients (the R package in particular) often lag the Python one. Moving
this forward drops older clients: say so in docs/researchers-guide.md.
"""


@dataclass
class TableResult:
    name: str
    rows: int
    persons: int  # distinct person_ids, filled from the checks' profile once they pass
    columns: list


@dataclass
class ExtractResult:
    path: Path
    key_id: str
    persons: int  # the population
    tables: list[TableResult]
    checks: list[CheckOutcome] = field(default_factory=list)
    externals: list[ExternalTable] = field(default_factory=list)
    risk: RiskAssessment | None = None

    @property
    def rows(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}


class ExtractRefused(Exception):
    """The candidate extract failed a blocking check; it was deleted and the previous one kept."""

    def __init__(self, project: str, checks: list[CheckOutcome]):
        self.checks = checks
        failed = [c for c in checks if c.blocks]
        super().__init__(
            f"extract of {project} not published: " + "; ".join(f"{c.name}: {', '.join(c.problems)}" for c in failed)
        )


def build_label(project: str) -> str:
    """The label of a build's spill folders, so the next build of the project can remove a killed one's."""
    return f"build-{project}"


class CandidateExtract:
    """A hidden DuckDB file beside the extract, published by rename or deleted.

    Used as a context manager: leaving the block without ``publish()`` (an error, a
    refused check) deletes the candidate, so the previous extract stays as it was.
    The build's temporary tables hold matricules (population, maps, selected rows); if
    DuckDB spills them to disk, it does so in ``spill`` (a ``spill.spill_folder`` of the
    identified zone), never beside the extracts, which is DuckDB's default. The file is
    written in ``STORAGE_VERSION``.
    """

    def __init__(self, paths: PlatformPaths, project: str, spill: Path):
        self.target = paths.extract_file(project)
        self.path = paths.extract_candidate(project, uuid.uuid4().hex)
        self.spill = spill
        self.con: duckdb.DuckDBPyConnection | None = None

    @property
    def wal(self) -> Path:
        return Path(f"{self.path}.wal")

    def __enter__(self) -> CandidateExtract:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(self.path.parent, PRIVATE_DIR)
        # DuckDB creates the file and, later, its WAL with the process umask: private, for both
        os.umask(PRIVATE_UMASK)
        self.con = connect(self.spill, str(self.path), storage_compatibility_version=STORAGE_VERSION)
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
        self.wal.unlink(missing_ok=True)


class ExtractBuilder:
    """Writes one project's tables into a candidate extract, on the candidate's connection.

    ``scope()`` first: it computes the population once and its person pseudonyms
    (temporary table ``population_map``); every table then joins to that map, which
    filters to the population and pseudonymises in the same pass. Employers and providers
    get maps over the rows selected. A related person (family links) is named through
    the population's map too, so a person outside the population gets no pseudonym: the
    link keeps its relation, its related person blank, and nothing about the outsider
    (not even that two persons of the project share them) reaches the extract. Every
    identifier read is listed in ``facts``: the identified zone this extract was made
    from, which the blocking checks compare every cell against, with the orders a table
    must not follow.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, plan: Plan, paths: PlatformPaths, key: ProjectKey):
        self.con, self.plan, self.paths, self.key = con, plan, paths, key
        self.facts = BuildFacts(population_map=POPULATION_MAP)
        self.tables: list[TableResult] = []
        self.externals: list[ExternalTable] = []
        self.persons = 0

    def write_tables(self) -> None:
        """The population, then every register table and external dataset the plan delivers."""
        self.scope()
        for register in self.plan.registers:
            self.register_table(register)
        for name in self.plan.approval.external:
            self.external_table(name)

    def scope(self) -> int:
        sql, params = population_sql(self.plan.approval, self.plan.contracts, self.paths.warehouse, self.plan.period)
        self.con.execute(f"CREATE TEMP TABLE population AS {sql}", params)
        self.persons = build_map(self.con, "population", "person", IdentifierKind.person, self.key, POPULATION_MAP)
        self.facts.identifier_maps.append(POPULATION_MAP)
        return self.persons

    def _write_sorted(self, table: str, select: str, columns: list, params: dict | None = None) -> int:
        order = ", ".join(q(c) for c in row_order(columns))
        self.con.execute(f"CREATE TABLE {q(table)} AS SELECT * FROM ({select}) ORDER BY {order}", params or {})
        return self.con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]

    def register_table(self, register: str) -> TableResult:
        """The register's table at the approved levels, pseudonymised and sorted, in the candidate file."""
        contract = self.plan.contracts[register]
        delivered = self.plan.delivered(register)
        columns = self.plan.columns(register)
        person = contract.person_identifier.name if contract.has_persons else None
        needed = [v.name for v, _ in delivered if v.name != person]
        rows = register_rows_sql(contract, self.paths.warehouse, POPULATION_MAP if person else None, needed)
        others = [v for v, _ in delivered if v.identifier is not None and v.name != person]
        params = period_parameters(self.plan.period)
        source = f"({rows})"
        if others:  # their maps need the selected rows first
            source = f"selected_{register}"
            self.con.execute(f"CREATE TEMP TABLE {source} AS {rows}", params)
            params = {}
        joins, selects = [], []
        for (variable, level), column in zip(delivered, columns):
            if variable.name == person:
                value = "r.person_pseudonym"
            elif variable.identifier is IdentifierKind.person:  # another person (family links): the population's only
                read = f"read_{register}_{variable.name}"
                self.con.execute(f"CREATE TEMP TABLE {read} AS SELECT DISTINCT {q(variable.name)} AS identifier FROM {source} "
                                 f"WHERE {q(variable.name)} IS NOT NULL")
                self.facts.identifier_maps.append(read)
                alias = f"m{len(joins)}"
                joins.append(f"LEFT JOIN {POPULATION_MAP} {alias} ON {alias}.identifier = r.{q(variable.name)}")
                value = f"{alias}.pseudonym"
            elif variable.identifier is not None:
                mapping = f"map_{register}_{variable.name}"
                build_map(self.con, source, q(variable.name), variable.identifier, self.key, mapping)
                self.facts.identifier_maps.append(mapping)
                if column.name == row_order(columns)[0]:
                    self.facts.orders.setdefault(register, []).append((column.name, mapping))
                alias = f"m{len(joins)}"
                joins.append(f"LEFT JOIN {mapping} {alias} ON {alias}.identifier = r.{q(variable.name)}")
                value = f"{alias}.pseudonym"
            else:
                value = level_expression(variable, variable.level(level), "r." + q(variable.name))
            selects.append(f"{value} AS {q(column.name)}")
        if person:
            self.facts.orders.setdefault(register, []).append(("person_id", POPULATION_MAP))
        counted = self._write_sorted(register, f"SELECT {', '.join(selects)} FROM {source} r {' '.join(joins)}", columns, params)
        if others:  # the maps are kept for the checks; the selected rows are not needed again (at ten years: GBs)
            self.con.execute(f"DROP TABLE {source}")
        table = TableResult(register, counted, 0, columns)  # persons: counted by the checks' profile
        self.tables.append(table)
        return table

    def external_table(self, name: str) -> TableResult:
        """The researchers' dataset ``name``, checked and linked to the population (``external``), sorted."""
        dataset = self.plan.approval.external[name]
        table, columns = external_table(name), self.plan.external_columns(name)
        linked = link_external(self.con, self.paths.external_file(self.plan.project, dataset.file), name, dataset, POPULATION_MAP)
        self.externals.append(linked)
        counted = self._write_sorted(table, f"SELECT * FROM {linked.staged}", columns)
        self.con.execute(f"DROP TABLE {linked.staged}")
        self.facts.orders[table] = [("person_id", POPULATION_MAP), ("person_id", linked.file_order)]
        result = TableResult(table, counted, 0, columns)
        self.tables.append(result)
        return result

    def assess_risk(self) -> RiskAssessment:
        """The re-identification risk of the tables written so far, kept for the checks and written as ``_risk``."""
        self.facts.risk = assess_candidate(self.con, self.plan, self.paths)
        write_risk_table(self.con, self.facts.risk)
        return self.facts.risk

    def document(self, provenance: dict) -> None:
        write_documentation(self.con, self.plan, self.key, self.tables, self.externals, provenance, self.paths)


def build_extract(
    plan: Plan, paths: PlatformPaths, key: ProjectKey, provenance: dict,
    before_publish: Callable[[RiskAssessment], None] | None = None,
) -> ExtractResult:
    """Every requested table and external dataset, the documentation and the blocking checks, then the published file.

    ``before_publish`` runs after the checks pass and just before the rename, with the
    risk assessment: the life cycle re-checks there that the project was not retired,
    nor its approval changed, while the build ran (it raises to stop the publication),
    and audits an accepted risk. Raises ExtractRefused (nothing published, previous
    extract kept) if a check fails with severity ERROR.
    """
    with spill_folder(paths.warehouse, build_label(plan.project)) as spill, CandidateExtract(paths, plan.project, spill) as candidate:
        builder = ExtractBuilder(candidate.con, plan, paths, key)
        builder.write_tables()
        builder.assess_risk()
        builder.document(provenance)
        checks = check_extract(candidate.con, plan, builder.facts)
        if any(c.blocks for c in checks):
            raise ExtractRefused(plan.project, checks)
        persons = persons_per_table(candidate.con)
        for table in builder.tables:
            table.persons = persons.get(table.name, 0)
        if before_publish is not None:
            before_publish(builder.facts.risk)
        path = candidate.publish()
    return ExtractResult(path, key.key_id, builder.persons, builder.tables, checks, builder.externals, builder.facts.risk)

"""Blocking checks on a project's extract, run on the candidate file before it is published.

They run on the build's own connection, after every table is written and before the
file gets its name. Each check derives what the approval allows from the plan (codes
of the approved level, period, columns, restricted items) and compares it with what
the tables hold, so a bug in how a table was written cannot ship data the project was
not granted. Facts come from the build itself (``BuildFacts``): the population's
pseudonym map (computed once per build), the identifier maps, which hold every
identifier the build read (a value in the extract can only come from those rows, so
they are the identified zone a leaked identifier would belong to), and, for each
table, the orders its rows must not follow (matricules; the researchers' file order).

Checks look at the distinct values of each column (collected once, in one temporary
table, every column of every type cast to text), not at every cell: a few hundred
codes instead of millions of rows. Results carry counts and names, never values.

``disclosure_risk`` judges the re-identification risk the build measured on the
candidate (``lmdp_pipeline.risk``) against the disclosure policy. It is the one check
whose failure an approval can accept: with a ``risk_acceptance`` (a justification and
compensating measures) a breach of the policy is a warning (severity WARN), which does
not stop publication; without one, or when the extract's classes are not in the
register at all, it is an error like every other check.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from ..sql import quote_identifier as q
from ..sql import quote_literal
from .plan import DOCUMENTATION_TABLES, PERSON_COLUMNS, PERSON_ID, Plan, row_order
from .rules import uses_needing_justification

if TYPE_CHECKING:
    from ..risk.assess import RiskAssessment

DIGIT_RUN = r"\p{Nd}{8,}"
"""Eight decimal digits or more in a row, of any script (full-width digits spell a matricule as well): a provider code
is 8, an employer number 11, a matricule 13. No delivered measurement comes near (the largest amounts are six digits
before the decimals)."""
PSEUDONYM_PATTERN = r"[0-9a-f]{16}"
ORDER_Z_LIMIT = 5.0
"""How far (in standard deviations) the share of ascending neighbours may stray from one half.

Rows in pseudonym order put persons in a keyed-random order, whose neighbours ascend in
matricule half of the time; rows left in delivery order ascend in nearly all pairs
(z near 20 for 400 persons). Five standard deviations happen by chance about once in
two million tables, and a refused build rebuilds in the same order, so the margin is
wide on purpose."""
VALUES_TABLE = "column_values"


@dataclass
class BuildFacts:
    """What the build knows that the checks cannot re-derive from the candidate alone."""

    population_map: str
    identifier_maps: list[str] = field(default_factory=list)
    """Temporary tables whose ``identifier`` column holds identifiers the build read: the identified zone."""
    orders: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """table -> (pseudonym column, temporary table (identifier, pseudonym)) pairs: orders the rows must not follow."""
    risk: RiskAssessment | None = None
    """The re-identification risk measured on the candidate's tables (``risk.assess_candidate``)."""


ERROR = "ERROR"
WARN = "WARN"


@dataclass
class CheckOutcome:
    name: str
    description: str
    problems: list[str] = field(default_factory=list)
    severity: str = ERROR  # WARN: a failure that does not stop publication (an accepted risk)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def blocks(self) -> bool:
        """Failed with severity ERROR: the candidate must not be published."""
        return bool(self.problems) and self.severity == ERROR


CHECKS = {
    "no_direct_identifiers": (
        "No matricule, employer number, provider code, name or address in any cell of any column, of any type: "
        "no run of eight digits or more, no identifier the build read, no text with spaces."
    ),
    "scope_and_period": "Rows only for the project's population (no row without a person), and only inside its period.",
    "levels_not_finer": (
        "No column finer than approved: codes of the approved level only, truncated dates, banded numbers; "
        "external columns only their declared values."
    ),
    "approved_items_only": "Exactly the approved registers, variables and external datasets; restricted items only when justified.",
    "pseudonyms_unique": "One pseudonym per person, and every identifier column holds pseudonyms only.",
    "row_order": (
        "Rows are in pseudonym order, which follows neither the matricules (nor the birth dates they start with) "
        "nor the order of the researchers' files."
    ),
    "period_complete": "Every month of the period was read for every register, and _manifest says which months each table holds.",
    "disclosure_risk": (
        "The re-identification risk of the extract is within the disclosure policy (persons below k or l in some month, "
        "expected re-identifications counted against the whole register, the researchers' own respondents below k or l), "
        "or the approval accepts the figures it measured with compensating measures (then a warning)."
    ),
}


def _collect_values(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Temporary table ``column_values(table_name, column_name, data_type, value)``: every distinct non-null value."""
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND list_contains(?, table_name)",
        [tables],
    ).fetchall()
    selects = [  # distinct first, then cast: casting every row first costs twice as much
        f"SELECT {quote_literal(table)}, {quote_literal(column)}, {quote_literal(data_type)}, v::VARCHAR "
        f"FROM (SELECT DISTINCT {q(column)} AS v FROM {q(table)} WHERE {q(column)} IS NOT NULL)"
        for table, column, data_type in columns
    ]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {VALUES_TABLE} (table_name VARCHAR, column_name VARCHAR, data_type VARCHAR, value VARCHAR)")
    if selects:
        con.execute(f"INSERT INTO {VALUES_TABLE} {' UNION ALL '.join(selects)}")


def persons_per_table(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Distinct person_ids of each data table, from the values the checks collected (no second scan)."""
    return dict(con.execute(f"SELECT table_name, count(*) FROM {VALUES_TABLE} WHERE column_name = 'person_id' GROUP BY ALL").fetchall())


def _values(con, where: str, params: list | None = None) -> list[tuple[str, str, int]]:
    """(table, column, distinct values) for the values matching ``where``, per column."""
    return con.execute(
        f"SELECT table_name, column_name, count(*) FROM {VALUES_TABLE} WHERE {where} GROUP BY ALL ORDER BY ALL", params or []
    ).fetchall()


def _pseudonym_columns(plan: Plan) -> list[tuple[str, str]]:
    return [(table, c.name) for table, columns in plan.tables().items() for c in columns if c.pseudonym]


def _no_direct_identifiers(con, plan: Plan, facts: BuildFacts) -> list[str]:
    pseudonyms = [f"{t}.{c}" for t, c in _pseudonym_columns(plan)]
    not_pseudonym = "NOT list_contains(?, table_name || '.' || column_name)"
    problems = [f"{t}.{c}: {n} distinct values hold a run of 8 or more digits (identifiers?)"
                for t, c, n in _values(con, f"{not_pseudonym} AND regexp_matches(value, '{DIGIT_RUN}')", [pseudonyms])]
    problems += [f"{t}.{c}: {n} distinct values hold spaces (names, addresses?)"
                 for t, c, n in _values(con, "data_type = 'VARCHAR' AND regexp_matches(value, '\\s')")]
    if facts.identifier_maps:
        zone = " UNION ALL ".join(f"SELECT identifier FROM {m}" for m in facts.identifier_maps)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE value_runs AS
            SELECT table_name, column_name, value, unnest(regexp_extract_all(value, '{DIGIT_RUN}')) AS run
            FROM {VALUES_TABLE} WHERE regexp_matches(value, '{DIGIT_RUN}')""")
        problems += [f"{t}.{c}: {n} distinct values hold identifiers of the identified zone" for t, c, n in con.execute(
            f"SELECT table_name, column_name, count(DISTINCT value) FROM value_runs WHERE run IN ({zone}) GROUP BY ALL ORDER BY ALL"
        ).fetchall()]
    return problems


def _scope_and_period(con, plan: Plan, facts: BuildFacts) -> list[str]:
    problems = []
    first, last = str(plan.period.first), str(plan.period.last)
    for table, columns in plan.tables().items():
        month = plan.month_column(table)
        if month is not None:
            outside = con.execute(
                f"SELECT count(*) FROM {q(table)} WHERE {q(month)} IS NULL OR {q(month)} < ? OR {q(month)} > ?", [first, last]
            ).fetchone()[0]
            if outside:
                problems.append(f"{table}: {outside} rows outside the period {first} to {last}")
        if any(c.name == PERSON_ID for c in columns):
            nobody = con.execute(f"SELECT count(*) FROM {q(table)} WHERE person_id IS NULL").fetchone()[0]
            if nobody:
                problems.append(f"{table}: {nobody} rows without a person_id")
    strangers = _values(con, f"list_contains(?, column_name) AND value NOT IN (SELECT pseudonym FROM {facts.population_map})",
                        [list(PERSON_COLUMNS)])
    problems += [f"{t}: {n} persons outside the population in {c}" for t, c, n in strangers]
    return problems


def _finer_than_level(variable, level) -> tuple[str, list] | None:
    """A condition on ``value`` (text) true for values finer than ``level``, or None when the level is the finest."""
    if level.code_level or variable.codes is not None:
        codes = variable.codes.level(level.code_level) if level.code_level else variable.codes.finest
        return "NOT list_contains(?, value)", [list(codes.labels)]
    if level.truncate == "month":
        return "NOT regexp_full_match(value, '[0-9]{4}-[0-9]{2}')", []
    if level.truncate == "year":
        return "NOT regexp_full_match(value, '[0-9]{4}')", []
    if level.band is not None and level.band.width is not None:
        return f"(value::DOUBLE - {level.band.origin:g}) % {level.band.width:g} <> 0", []
    if level.band is not None:
        return "NOT list_contains(?, value::DOUBLE)", [level.band.breaks]
    return None


def _levels_not_finer(con, plan: Plan) -> list[str]:
    problems = []
    for register in plan.registers:
        for variable, level_name in plan.delivered(register):
            finer = None if variable.identifier is not None else _finer_than_level(variable, variable.level(level_name))
            if finer is None:
                continue
            condition, params = finer
            for _, _, count in _values(con, f"table_name = ? AND column_name = ? AND {condition}", [register, variable.name, *params]):
                problems.append(f"{register}.{variable.name}: {count} distinct values finer than level '{level_name}'")
    for name, dataset in plan.approval.external.items():
        for column, declared in dataset.columns.items():
            if declared.values is None:
                continue
            allowed = [str(v) for v in declared.values]
            for _, _, count in _values(con, "table_name = ? AND column_name = ? AND NOT list_contains(?, value)",
                                       [f"external_{name}", column, allowed]):
                problems.append(f"external_{name}.{column}: {count} distinct values outside the declared values")
    return problems


def _approved_items_only(con, plan: Plan) -> list[str]:
    expected = {table: [c.name for c in columns] for table, columns in plan.tables().items()}
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    problems = [f"table {t} was not approved" for t in sorted(tables - set(expected) - set(DOCUMENTATION_TABLES))]
    others = con.execute(
        """SELECT 'view ' || view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT internal
           UNION ALL SELECT DISTINCT 'macro ' || function_name FROM duckdb_functions()
           WHERE database_name = current_database() AND NOT internal ORDER BY 1"""
    ).fetchall()
    problems += [f"{what} was not approved (an extract holds tables only)" for (what,) in others]
    for table, columns in expected.items():
        actual = [c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name = ? ORDER BY column_index", [table]
        ).fetchall()]
        if actual != columns:
            problems.append(f"{table}: columns {sorted(set(actual) ^ set(columns))} differ from the approval")
    for use in uses_needing_justification(plan.approval, plan.contracts):
        if use.key not in plan.approval.justifications:
            problems.append(f"{use.key}: {use.reason}, without a justification")
    return problems


def _pseudonyms_unique(con, plan: Plan, facts: BuildFacts) -> list[str]:
    collisions = con.execute(f"SELECT count(*) - count(DISTINCT pseudonym) FROM {facts.population_map}").fetchone()[0]
    problems = [f"{collisions} person pseudonyms are shared by two persons"] if collisions else []
    for table, column in _pseudonym_columns(plan):
        for _, _, n in _values(con, f"table_name = ? AND column_name = ? AND NOT regexp_full_match(value, '{PSEUDONYM_PATTERN}')",
                               [table, column]):
            problems.append(f"{table}.{column}: {n} values are not pseudonyms")
    return problems


def _row_order(con, plan: Plan, facts: BuildFacts) -> list[str]:
    """Rows sorted by their leading pseudonym, and neighbours that do not follow any identifying order.

    One pass per table groups the rows by their leading pseudonym (first and last row,
    count): the table is in that pseudonym's order exactly when each pseudonym's rows are
    contiguous and the pseudonyms, taken by first row, ascend. The orders to avoid are
    then compared over those runs, a few thousand rows instead of millions.
    """
    problems = []
    for table, columns in plan.tables().items():
        leading = q(row_order(columns)[0])
        con.execute(f"""CREATE OR REPLACE TEMP TABLE row_runs AS
            SELECT {leading} AS pseudonym, min(rowid) AS first_row, max(rowid) AS last_row, count(*) AS rows
            FROM {q(table)} WHERE {leading} IS NOT NULL GROUP BY ALL""")
        scattered, unsorted = con.execute(
            """SELECT count(*) FILTER (WHERE last_row - first_row + 1 <> rows), count(*) FILTER (WHERE pseudonym < previous)
               FROM (SELECT *, lag(pseudonym) OVER (ORDER BY first_row) AS previous FROM row_runs)"""
        ).fetchone()
        if scattered or unsorted:
            problems.append(f"{table}: rows out of {row_order(columns)[0]} order ({scattered} scattered, {unsorted} out of place)")
        for column, ranks in facts.orders.get(table, []):
            ascending, descending = con.execute(
                f"""SELECT count(*) FILTER (WHERE rank > previous), count(*) FILTER (WHERE rank < previous) FROM (
                      SELECT m.identifier AS rank, lag(m.identifier) OVER (ORDER BY r.first_row) AS previous
                      FROM row_runs r JOIN {ranks} m ON m.pseudonym = r.pseudonym)"""
            ).fetchone()
            pairs = ascending + descending
            z = (ascending - descending) / math.sqrt(pairs) if pairs else 0.0
            if abs(z) > ORDER_Z_LIMIT:
                problems.append(f"{table}: the order of {column} follows an identifying order ({ascending} of {pairs} "
                                f"neighbours ascend, z = {z:.1f})")
    return problems


def _period_complete(con, plan: Plan) -> list[str]:
    problems = []
    held = {(r, m) for r, m in con.execute("SELECT register, month FROM _inputs WHERE month IS NOT NULL").fetchall()}
    for register in plan.registers_read:
        missing = [m for m in plan.period.months if (register, m) not in held]
        if missing:
            problems.append(f"{register}: {len(missing)} month(s) of {plan.period} not read: {', '.join(missing[:12])}")
    manifest = dict(con.execute("SELECT item, value FROM _manifest").fetchall())
    if manifest.get("period") != f"{plan.period.first} to {plan.period.last}":
        problems.append(f"_manifest: the period {manifest.get('period')!r} is not the one built ({plan.period})")
    recorded = json.loads(manifest.get("table_months", "{}"))
    for table in plan.registers:
        month = plan.month_column(table)
        actual = [v for (v,) in con.execute(
            f"SELECT value FROM {VALUES_TABLE} WHERE table_name = ? AND column_name = ? ORDER BY value", [table, month]
        ).fetchall()]
        if recorded.get(table) != actual:
            problems.append(f"{table}: _manifest records months {recorded.get(table)} but the table holds {len(actual)} other(s)")
    return problems


def _disclosure_risk(plan: Plan, facts: BuildFacts) -> tuple[list[str], str]:
    """The breaches of the policy and the integrity problems; WARN when only accepted breaches remain."""
    risk = facts.risk
    if risk is None:
        return ["the re-identification risk was not measured"], ERROR
    problems = risk.problems + risk.integrity
    acceptance = plan.approval.risk_acceptance
    if risk.accepted:
        return [f"risk accepted by {', '.join(acceptance.accepted_by)} ({acceptance.justification.rstrip('.')}) with: "
                f"{'; '.join(acceptance.compensating_measures)}", *problems], WARN
    if acceptance is not None:
        problems += risk.beyond_acceptance
    return problems, ERROR


def check_extract(con: duckdb.DuckDBPyConnection, plan: Plan, facts: BuildFacts) -> list[CheckOutcome]:
    """Run every check on the candidate extract open on ``con`` (the build's connection)."""
    data_tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
                   if t not in DOCUMENTATION_TABLES]
    _collect_values(con, data_tables)
    results = {
        "no_direct_identifiers": _no_direct_identifiers(con, plan, facts),
        "scope_and_period": _scope_and_period(con, plan, facts),
        "levels_not_finer": _levels_not_finer(con, plan),
        "approved_items_only": _approved_items_only(con, plan),
        "pseudonyms_unique": _pseudonyms_unique(con, plan, facts),
        "row_order": _row_order(con, plan, facts),
        "period_complete": _period_complete(con, plan),
    }
    outcomes = [CheckOutcome(name, CHECKS[name], problems) for name, problems in results.items()]
    problems, severity = _disclosure_risk(plan, facts)
    return outcomes + [CheckOutcome("disclosure_risk", CHECKS["disclosure_risk"], problems, severity)]

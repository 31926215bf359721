"""The two ways the risk is measured: on a build's candidate extract, and from the warehouse before any build.

- ``assess_candidate`` runs on the build's connection, after every data table is
  written: it measures the tables as they will be published, counts population
  frequencies in the warehouse (keeping them for the next build: ``frequencies``), and
  searches for coarser levels when the policy is exceeded (keeping the answer for the
  next build of the same data: ``memo``). The ``disclosure_risk`` check and the
  ``_risk`` table both come from it.
- ``estimate_risk`` is ``lmdp approvals check``'s: no key, no candidate. The population
  is the build's (``scope.population_sql``), each person given a row number in place of
  a pseudonym; tables are read from the warehouse with the build's levels, external
  data linked by the build's own code. The same measures run on those rows, so the
  preview says what the build will find.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import duckdb

from ..contracts import ContractSet
from ..disclosure_policy import DisclosurePolicy, policy_of
from ..paths import PlatformPaths
from ..projects.approval import Approval, RiskAcceptance
from ..projects.external import link_external
from ..projects.plan import EXTERNAL_PREFIX, Plan
from ..projects.scope import period_parameters, population_sql
from ..spill import connect, spill_folder
from .lattice import Suggestion, search
from .frequencies import Frequencies
from .measures import Figures, Workspace
from .memo import SearchMemo
from .model import RiskModel
from .sources import extract_rows, sensitive_extract_rows, sensitive_warehouse_rows, warehouse_rows
from .verdict import Breach, beyond_acceptance, breaches, integrity_problems

PREVIEW_POPULATION = "risk_population"


@dataclass
class RiskAssessment:
    """The risk of one extract (or of one approval, previewed) at its approved levels, judged, with suggestions."""

    approval: Approval
    model: RiskModel
    policy: DisclosurePolicy
    figures: Figures
    breaches: list[Breach]  # rules of the policy the extract breaks
    integrity: list[str]  # classes of the extract the register does not hold
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def acceptance(self) -> RiskAcceptance | None:
        return self.approval.risk_acceptance

    @property
    def problems(self) -> list[str]:
        return [b.text for b in self.breaches]

    @property
    def meets_policy(self) -> bool:
        return not self.breaches

    def breaks(self, rule: str) -> bool:
        return any(b.rule == rule for b in self.breaches)

    @property
    def beyond_acceptance(self) -> list[str]:
        """The breaches the approval's acceptance does not cover (every one's text when it records none)."""
        if self.acceptance is None:
            return self.problems
        return beyond_acceptance(self.breaches, self.acceptance.up_to)

    @property
    def accepted(self) -> bool:
        """Beyond the policy, but within the figures the approval accepts (and nothing is wrong with the extract)."""
        return bool(self.breaches) and self.acceptance is not None and not self.beyond_acceptance and not self.integrity


def _assess(con, plan: Plan, paths: PlatformPaths, model: RiskModel, rows: dict, sensitive: dict, keep: bool) -> RiskAssessment:
    """The measures on ``con``, whose risk tables are sets: DuckDB need not keep their rows' order, which at ten years of
    a whole population is what lets them fit the memory limit; they are dropped once the figures are out.

    The setting is reset whatever happens (a build's tables are written in an order that must hold). After a failure
    the caller discards the connection, so its tables are left to it, and the measure's own error is the one raised,
    not a second one from a connection DuckDB may have invalidated.
    """
    before = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    con.execute("SET preserve_insertion_order = false")
    try:
        assessment = _measure(con, plan, paths, model, rows, sensitive, keep)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("RESET preserve_insertion_order")
        raise
    con.execute("RESET preserve_insertion_order")
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
        if name not in before:
            con.execute(f'DROP TABLE temp."{name}"')
    return assessment


def _measure(con, plan: Plan, paths: PlatformPaths, model: RiskModel, rows: dict, sensitive: dict, keep: bool) -> RiskAssessment:
    policy = policy_of(plan.contracts)
    frequencies = Frequencies(paths, plan.contracts, plan.period, keep)
    population = {t.name: frequencies.counted(con, t, f"risk_pf{i}") if t.register else None for i, t in enumerate(model.tables)}
    workspace = Workspace(con, model, policy.risk.k, policy.risk.l)
    workspace.load(rows, population, sensitive, period_parameters(plan.period))
    figures = workspace.figures(model.approved)
    found = breaches(figures, model, policy.risk)
    memo = SearchMemo(paths, plan.project, keep)
    suggestions = search(workspace, model, policy.risk, plan.approval, plan.contracts, memo) if found else []
    return RiskAssessment(plan.approval, model, policy, figures, found, integrity_problems(figures), suggestions)


def assess_candidate(con: duckdb.DuckDBPyConnection, plan: Plan, paths: PlatformPaths) -> RiskAssessment:
    """The risk of the candidate extract open on ``con``, whose data tables are written."""
    model = RiskModel.of(plan)
    rows = {t.name: extract_rows(t) for t in model.tables}
    sensitive = {s.name: sensitive_extract_rows(s) for s in model.sensitive}
    return _assess(con, plan, paths, model, rows, sensitive, keep=True)


def estimate_risk(paths: PlatformPaths, plan: Plan) -> RiskAssessment:
    """The risk the build of ``plan`` will find, measured from the warehouse (no key, nothing written)."""
    model = RiskModel.of(plan)
    with spill_folder(paths.warehouse) as spill, connect(spill) as con:
        sql, params = population_sql(plan.approval, plan.contracts, paths.warehouse, plan.period)
        con.execute(f"CREATE TEMP TABLE {PREVIEW_POPULATION} AS SELECT person AS identifier, row_number() OVER () AS pseudonym "
                    f"FROM ({sql})", params)
        rows = {}
        for table in model.tables:
            if table.register:
                rows[table.name] = warehouse_rows(table, plan.contracts, paths.warehouse, PREVIEW_POPULATION)
            else:
                name = table.name.removeprefix(EXTERNAL_PREFIX)
                dataset = plan.approval.external[name]
                staged = link_external(con, paths.external_file(plan.project, dataset.file), name, dataset, PREVIEW_POPULATION).staged
                rows[table.name] = extract_rows(table, staged)
        sensitive = {s.name: sensitive_warehouse_rows(s, plan.contracts, paths.warehouse, PREVIEW_POPULATION) for s in model.sensitive}
        return _assess(con, plan, paths, model, rows, sensitive, keep=False)

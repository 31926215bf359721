"""What the risk measures look at: the quasi-identifiers an extract delivers, their coarser levels, its sensitive variables.

A quasi-identifier is a delivered column an outsider can know about a person (birth
year, sex, citizenship, residence, occupation, the employer's activity and size,
household links): contracts mark them with ``quasi_identifier: true``; every column of
an external dataset is one (the researchers hold the file). Each is measured at its
approved level; the suggestions may coarsen it along its contract levels (never finer
than approved) up to not delivering it at all (``DROPPED``, the top of every hierarchy,
as ARX's ``*``).

Tables are measured per *unit* (the person, or the employer for ``enterprises``) and
reference month. A table with one row per unit and month (individuals, affiliation,
enterprises, external data) gives each unit its row's combination; a table with several
(jobs, family links) gives each unit the multiset of its rows' combinations that month:
holding two jobs, or three children and a spouse, is what singles a person out. A table
that names an employer carries the employer's quasi-identifiers on each row when the
extract also delivers ``enterprises``: a researcher joins them on ``employer_id``.

Sensitive variables are the delivered restricted variables (the diagnosis chapter):
l-diversity is measured for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..contracts import IdentifierKind, Protection, Variable, VariableType
from ..contracts.models import Level
from ..projects.granularity import _map_literal, level_expression
from ..projects.plan import PERSON_ID, Plan, external_table, identifier_column

DROPPED = "not delivered"
"""The coarsest level of every quasi-identifier: the column left out of the approval."""
AS_DECLARED = "as declared"
"""The level of an external column (the plan's name for it)."""
NO_MONTH = ""
"""The month of a table without one (external data): measured once for the whole period, joined to every month."""
ENTERPRISES = "enterprises"
EMPLOYER_ID = "employer_id"


def _coarsen(variable: Variable, approved: Level, target: Level, value: str) -> str | None:
    """SQL for ``value`` (the variable as delivered at ``approved``) at the coarser ``target``, or None when it cannot be derived.

    Levels are defined from the finest value, but a candidate extract holds the approved
    one: codes follow the code list from the approved level's codes, a month
    (``YYYY-MM``) becomes its year. Bands are never quasi-identifiers in the contracts;
    a band level is not offered as a coarsening of another band.
    """
    if approved.is_as_delivered:
        return level_expression(variable, target, value)
    if approved.code_level and target.code_level:
        to_approved, to_target = variable.codes.mapping(approved.code_level), variable.codes.mapping(target.code_level)
        return f"({_map_literal({to_approved[c]: to_target[c] for c in to_approved})})[{value}]"
    if variable.type is VariableType.date and approved.truncate == "month" and target.truncate == "year":
        return f"CAST(left({value}, 4) AS INTEGER)"
    return None


@dataclass(frozen=True)
class QuasiIdentifier:
    """One delivered column an outsider can know, at its approved level."""

    table: str
    column: str
    level: str
    variable: Variable | None = None  # None: an external column declared by the approval

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @cached_property
    def levels(self) -> tuple[str, ...]:
        """The approved level, every coarser contract level derivable from it, then DROPPED."""
        if self.variable is None:
            return (self.level, DROPPED)
        names = self.variable.level_names
        coarser = [n for n in names[names.index(self.level) + 1:] if self.at(n, "v") is not None]
        return (self.level, *coarser, DROPPED)

    def at(self, level: str, value: str) -> str | None:
        """SQL for ``value`` (this column at its approved level) at ``level``."""
        if level == self.level:
            return value
        if level == DROPPED:
            return "NULL"
        return _coarsen(self.variable, self.variable.level(self.level), self.variable.level(level), value)


@dataclass(frozen=True)
class MeasuredTable:
    """A table of the extract with quasi-identifiers, measured per unit and month."""

    name: str
    unit: str | None  # person_id, or employer_id for enterprises (None: not delivered, each row is one employer and month)
    month: str | None  # the reference-month column; None for external tables
    own: tuple[QuasiIdentifier, ...]
    linked: tuple[QuasiIdentifier, ...] = ()  # the employer's, through employer_id
    register: str | None = None  # None for external tables
    employer: str | None = None  # the register's employer column, for the join in the warehouse
    single: bool = True  # one row per unit and month

    @property
    def qis(self) -> tuple[QuasiIdentifier, ...]:
        return self.own + self.linked

    @property
    def about_persons(self) -> bool:
        return self.unit == PERSON_ID


@dataclass(frozen=True)
class Sensitive:
    """A delivered restricted variable: l-diversity is measured for it within each class."""

    table: str
    column: str
    month: str
    variable: Variable
    level: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


Levels = dict[str, str]
"""A node of the lattice: quasi-identifier name -> level."""


@dataclass(frozen=True)
class RiskModel:
    tables: tuple[MeasuredTable, ...]
    sensitive: tuple[Sensitive, ...]

    @property
    def dimensions(self) -> list[QuasiIdentifier]:
        """Every quasi-identifier once (an employer's are the enterprises table's own)."""
        return [qi for table in self.tables for qi in table.own]

    @property
    def approved(self) -> Levels:
        return {qi.name: qi.level for qi in self.dimensions}

    @property
    def person_tables(self) -> list[MeasuredTable]:
        return [t for t in self.tables if t.about_persons]

    @classmethod
    def of(cls, plan: Plan) -> RiskModel:
        contracts = plan.contracts
        own: dict[str, list[QuasiIdentifier]] = {}
        sensitive = []
        for register in plan.registers:
            contract = contracts[register]
            for variable, level in plan.delivered(register):
                if variable.identifier is not None:
                    continue
                if variable.quasi_identifier:
                    own.setdefault(register, []).append(QuasiIdentifier(register, variable.name, level, variable))
                if variable.protection is Protection.restricted:
                    sensitive.append(Sensitive(register, variable.name, contract.delivery.month_column, variable, level))
        # an employer's quasi-identifiers reach the jobs only through employer_id, in both tables
        linkable = ENTERPRISES in plan.registers and any(v.identifier is not None for v, _ in plan.delivered(ENTERPRISES))
        employer_qis = tuple(own.get(ENTERPRISES, ())) if linkable else ()
        tables = []
        for register in plan.registers:
            contract = contracts[register]
            unit_variable = contract.person_identifier if contract.has_persons else contract.identifiers[0]
            unit = identifier_column(contract, unit_variable) if unit_variable in [v for v, _ in plan.delivered(register)] else None
            employers = [v for v, _ in plan.delivered(register) if v.identifier is IdentifierKind.employer]
            linked = employer_qis if register != ENTERPRISES and employers else ()
            if not own.get(register) and not linked:
                continue
            month = contract.delivery.month_column
            tables.append(MeasuredTable(
                register, unit, month, tuple(own.get(register, ())), linked,
                register, employers[0].name if linked else None, set(contract.key) == {unit_variable.name, month},
            ))
        for name, dataset in plan.approval.external.items():
            table = external_table(name)
            declared = tuple(QuasiIdentifier(table, c, AS_DECLARED) for c in dataset.columns)  # the researchers know them all
            if declared:
                tables.append(MeasuredTable(table, PERSON_ID, None, declared))
        return cls(tuple(tables), tuple(sensitive))

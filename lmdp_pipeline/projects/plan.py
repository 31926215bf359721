"""What one build of a project delivers: tables, columns, levels, sources and row order.

The builder writes what the plan says, the documentation tables describe it and the
blocking checks compare the candidate file with it, so the three can never disagree
about what a project was granted. A plan is made from a checked approval and its
resolved period (a rolling period's end is a month by the time anything is built).

Identifier columns are renamed by kind: ``person_id`` (the register's person),
``related_person_id`` (a second person, in family links), ``employer_id`` and
``provider_id``. Every table is written in the order of its columns, pseudonyms first:
a pseudonym is a keyed hash, so that order is random for each project and says nothing
about the matricules, the delivery order or the researchers' file order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..contracts import Contract, ContractSet, IdentifierKind, Variable
from ..period import Period
from .approval import Approval
from .rules import registers_read, requested_level

DOCUMENTATION_TABLES = ("_manifest", "_inputs", "_dictionary", "_lineage", "_risk")
ID_COLUMNS = {IdentifierKind.employer: "employer_id", IdentifierKind.provider: "provider_id"}
PERSON_ID = "person_id"
RELATED_PERSON_ID = "related_person_id"
PERSON_COLUMNS = (PERSON_ID, RELATED_PERSON_ID)
"""The columns holding persons' pseudonyms: each one a person of the project's population, or blank."""
EXTERNAL_PREFIX = "external_"


@dataclass
class Column:
    """One delivered column and where it came from."""

    name: str
    source: str  # register.column, or external/<project>/<file>.column
    level: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    transformations: list[str] = field(default_factory=list)
    pseudonym: bool = False


def identifier_column(contract: Contract, variable: Variable) -> str:
    if variable.identifier is IdentifierKind.person:
        return PERSON_ID if variable.name == contract.person_identifier.name else RELATED_PERSON_ID
    return ID_COLUMNS[variable.identifier]


def external_table(name: str) -> str:
    return f"{EXTERNAL_PREFIX}{name}"


def delivered_variables(contract: Contract, requested: dict[str, str]) -> list[tuple[Variable, str]]:
    """The requested variables at their resolved levels, with the person id and the month always in."""
    unknown = sorted(set(requested) - {v.name for v in contract.variables})
    if unknown:
        raise KeyError(f"{contract.register} has no variable {', '.join(unknown)}: check the approval first")
    chosen = dict(requested)
    chosen.setdefault(contract.delivery.month_column, "default")
    if contract.has_persons:
        chosen.setdefault(contract.person_identifier.name, "pseudonym")
    return [(v, requested_level(v, chosen[v.name])) for v in contract.variables if v.name in chosen]


def register_column(contract: Contract, variable: Variable, level: str) -> Column:
    """What one delivered register column is, for ``_dictionary`` and ``_lineage``."""
    source = f"{contract.register}.{variable.name}"
    filtered = "filtered to the project's population and period"
    if variable.identifier is not None:
        name = identifier_column(contract, variable)
        steps = ["pseudonymised with the project's key", filtered]
        if name == RELATED_PERSON_ID:
            steps.append("blank when the person is outside the project's population")
        return Column(name, source, "pseudonym", f"{variable.title}: pseudonym under the project's key",
                      transformations=steps, pseudonym=True)
    level_obj = variable.level(level)
    labels = {}
    if level_obj.code_level:
        labels = variable.codes.level(level_obj.code_level).labels
    elif variable.codes is not None:
        labels = variable.codes.finest.labels
    steps = [filtered] if level_obj.is_as_delivered else [f"coarsened to level '{level}': {level_obj.derivation()}", filtered]
    return Column(variable.name, source, level, variable.description, labels, steps)


@dataclass(frozen=True)
class Plan:
    """A checked approval with its resolved period, and every table it delivers."""

    approval: Approval
    contracts: ContractSet
    period: Period

    @property
    def project(self) -> str:
        return self.approval.project

    @property
    def registers(self) -> list[str]:
        """The delivered registers, in the approval's order."""
        return list(self.approval.variables)

    @property
    def registers_read(self) -> list[str]:
        """Every register the build reads: delivered ones and those the population is selected from."""
        return registers_read(self.approval)

    def delivered(self, register: str) -> list[tuple[Variable, str]]:
        return delivered_variables(self.contracts[register], self.approval.variables[register])

    def columns(self, register: str) -> list[Column]:
        """The columns a register's table has, in order."""
        contract = self.contracts[register]
        return [register_column(contract, v, level) for v, level in self.delivered(register)]

    def external_columns(self, name: str) -> list[Column]:
        dataset = self.approval.external[name]
        source = f"external/{self.project}/{dataset.file}"
        link = f"linked from external data ({dataset.file}); rows of persons outside the population dropped"
        columns = [Column(PERSON_ID, f"{source}.{dataset.id_column}", "pseudonym",
                          "The person the row is about: pseudonym under the project's key, from the file's matricule",
                          transformations=["pseudonymised with the project's key", link], pseudonym=True)]
        for column, declared in dataset.columns.items():
            allowed = f"; values {declared.values}" if declared.values is not None else ""
            columns.append(Column(column, f"{source}.{column}", "as declared",
                                  f"Declared by the researchers: {declared.type}{allowed}", transformations=[link]))
        return columns

    def tables(self) -> dict[str, list[Column]]:
        """Every data table of the extract and its columns, registers first, then external datasets."""
        tables = {register: self.columns(register) for register in self.registers}
        tables |= {external_table(name): self.external_columns(name) for name in self.approval.external}
        return tables

    def month_column(self, table: str) -> str | None:
        """The reference-month column of a register table (None for external tables)."""
        return self.contracts[table].delivery.month_column if table in self.approval.variables else None


def row_order(columns: list[Column]) -> list[str]:
    """The columns a table is sorted by: its pseudonyms first, then every other column.

    Sorting by every column makes the order a function of the content alone; putting
    the pseudonyms first makes it a keyed-random order of persons (or employers).
    """
    pseudonyms = [c.name for c in columns if c.pseudonym]
    return pseudonyms + [c.name for c in columns if not c.pseudonym]

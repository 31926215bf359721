"""Approval specs (SPEC section 4): what a project was granted, checked against the contracts.

An approval is parsed into typed models (unknown keys and operators are errors), then
checked against the contracts: every register, variable, level, code and operator must
exist; every level finer than the default and every restricted item needs a
justification; the period must lie within the months available; an expired or revoked
approval builds nothing. Every problem is reported at once, each naming the file and
the field, so the request-management team can fix the export in one go.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from .contracts import NOT_DELIVERED, ContractSet, Protection, Variable, VariableType
from .period import MONTH_PATTERN

PROJECT_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,31}$"
DEFAULT = "default"


class ApprovalError(ValueError):
    """An approval that cannot be built; one line per problem, each naming file and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# "register" is the spec's own word; pydantic only warns that BaseModel has the name too.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class Condition(_Strict):
    """One operator on one variable: in, not_in, between (inclusive) or eq."""

    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    between: tuple[Any, Any] | None = None
    eq: Any | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> "Condition":
        given = [name for name in ("in_", "not_in", "between", "eq") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a condition has exactly one operator: in, not_in, between or eq")
        return self

    @property
    def operator(self) -> str:
        return next(name for name in ("in_", "not_in", "between", "eq") if getattr(self, name) is not None).rstrip("_")

    @property
    def values(self) -> list[Any]:
        value = getattr(self, self.operator if self.operator != "in" else "in_")
        return list(value) if isinstance(value, (list, tuple)) else [value]


class PopulationBlock(_Strict):
    register: str
    where: dict[str, Condition] = Field(min_length=1)


class Period(_Strict):
    from_: str = Field(alias="from", pattern=MONTH_PATTERN.pattern)
    to: str = Field(pattern=MONTH_PATTERN.pattern)

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.to < self.from_:
            raise ValueError(f"the period ends ({self.to}) before it starts ({self.from_})")
        return self


class ExternalColumn(_Strict):
    type: Literal["integer", "decimal", "string", "date"]
    values: list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _values_of_the_type(self) -> "ExternalColumn":
        """Declared values are codes of the column's type; text codes carry no spaces (labels go in the docs)."""
        parse = {"integer": int, "decimal": float, "date": dt.date.fromisoformat, "string": str}[self.type]
        for value in self.values or []:
            try:
                parse(str(value))
            except ValueError:
                raise ValueError(f"value {value!r} is not of type {self.type}") from None
            if self.type == "string" and (not str(value) or any(c.isspace() for c in str(value))):
                raise ValueError(f"value {value!r}: text codes must be non-empty and without spaces")
        return self


class ExternalDataset(_Strict):
    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.(csv|parquet)$")
    id_column: str
    columns: dict[str, ExternalColumn] = Field(min_length=1)

    @model_validator(mode="after")
    def _id_column_apart(self) -> "ExternalDataset":
        if self.id_column in self.columns:
            raise ValueError(f"the id column {self.id_column!r} is not a declared column: it is replaced by person_id")
        return self


class Approval(_Strict):
    project: str = Field(pattern=PROJECT_PATTERN)
    title: str
    institution: str
    status: Literal["approved", "revoked"]
    approved_on: dt.date
    expires_on: dt.date
    period: Period
    population: list[PopulationBlock] = Field(min_length=1)
    variables: dict[str, dict[str, str]] = Field(min_length=1)
    justifications: dict[str, str] = Field(default_factory=dict)
    external: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")], ExternalDataset] = Field(default_factory=dict)

    @field_validator("period", mode="before")
    @classmethod
    def _months_as_text(cls, value: Any) -> Any:
        """YAML reads ``2022-01`` as text but ``2022-01-01`` as a date: accept neither silently."""
        if isinstance(value, dict):
            return {k: (v if isinstance(v, str) else str(v)) for k, v in value.items()}
        return value


def _field(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(p.rstrip("_") if p in ("in_", "from_") else p for p in parts) or "(top level)"


def parse_approval(path: Path) -> Approval:
    """Read and type one approval file; errors name the file and the field."""
    if not path.is_file():
        raise ApprovalError([f"{path}: the file does not exist"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ApprovalError([f"{path}: cannot be read as YAML ({error.__class__.__name__})"]) from None
    if not isinstance(data, dict):
        raise ApprovalError([f"{path}: expected a mapping at the top level"])
    try:
        approval = Approval.model_validate(data)
    except ValidationError as error:
        raise ApprovalError([
            f"{path}: field {_field(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors(include_url=False)
        ]) from None
    if path.stem != approval.project:
        raise ApprovalError([f"{path}: field project: {approval.project!r} must match the file name {path.stem!r}"])
    return approval


def requested_level(variable: Variable, level: str) -> str:
    """The level name a request resolves to ('default' is the contract's default)."""
    return variable.default if level == DEFAULT else level


def is_finer_than_default(variable: Variable, level: str) -> bool:
    if variable.default == NOT_DELIVERED:
        return True
    return variable.level_names.index(level) < variable.level_names.index(variable.default)


def _check_variable(approval: Approval, contracts: ContractSet, register: str, name: str, level: str, field: str) -> list[str]:
    contract = contracts[register]
    try:
        variable = contract.variable(name)
    except KeyError:
        return [f"field {field}: {register} has no variable {name!r} (see the data dictionary)"]
    resolved = requested_level(variable, level)
    if resolved == NOT_DELIVERED:
        return [f"field {field}: {name} is not delivered by default; name a level ({', '.join(variable.level_names)})"]
    if resolved not in variable.level_names:
        return [f"field {field}: {level!r} is not a level of {register}.{name} (levels: {', '.join(variable.level_names + [DEFAULT])})"]
    key = f"{register}.{name}"
    if variable.protection is Protection.restricted and key not in approval.justifications:
        return [f"field justifications.{key}: {key} is restricted and needs a justification"]
    if is_finer_than_default(variable, resolved) and key not in approval.justifications:
        return [f"field justifications.{key}: level {resolved!r} is finer than the default {variable.default!r} and needs a justification"]
    return []


def _check_condition(contracts: ContractSet, register: str, column: str, condition: Condition, field: str) -> list[str]:
    try:
        variable = contracts[register].variable(column)
    except KeyError:
        return [f"field {field}: {register} has no variable {column!r}"]
    if variable.type is VariableType.identifier:
        return [f"field {field}: a population cannot be selected on an identifier"]
    if condition.operator == "between" and variable.type not in (VariableType.integer, VariableType.decimal, VariableType.date, VariableType.month):
        return [f"field {field}.between: {column} is not ordered; use in or eq"]
    if variable.codes is not None:
        known = set(variable.codes.finest.labels)
        unknown = [str(v) for v in condition.values if str(v) not in known]
        if unknown:
            return [f"field {field}.{condition.operator}: {', '.join(unknown)} not in the code list of {register}.{column}"]
    if variable.type is VariableType.date:
        for value in condition.values:
            if not isinstance(value, dt.date):
                try:
                    dt.date.fromisoformat(str(value))
                except ValueError:
                    return [f"field {field}.{condition.operator}: {value!r} is not a date YYYY-MM-DD"]
    return []


def check_approval(
    approval: Approval, contracts: ContractSet, available_months: list[str], today: dt.date, path: Path | str = ""
) -> list[str]:
    """Every problem with an approval, each naming the file and the field (empty when buildable)."""
    problems: list[str] = []
    if approval.status == "revoked":
        problems.append("field status: the project is revoked; nothing is built and its extract and key are destroyed")
    if approval.expires_on < today:
        problems.append(f"field expires_on: the approval expired on {approval.expires_on}; nothing is built")
    if available_months:
        first, last = min(available_months), max(available_months)
        if approval.period.from_ < first or approval.period.to > last:
            problems.append(f"field period: {approval.period.from_} to {approval.period.to} is outside the months available ({first} to {last})")
    else:
        problems.append("field period: no register month is available in the warehouse yet")
    for index, block in enumerate(approval.population):
        if block.register not in contracts.registers:
            problems.append(f"field population.{index}.register: unknown register {block.register!r}")
            continue
        for column, condition in block.where.items():
            problems += _check_condition(contracts, block.register, column, condition, f"population.{index}.where.{column}")
    for register, variables in approval.variables.items():
        if register not in contracts.registers:
            problems.append(f"field variables.{register}: unknown register {register!r} (registers: {', '.join(contracts.registers)})")
            continue
        if contracts[register].protection == "restricted" and register not in approval.justifications:
            problems.append(f"field justifications.{register}: {register} is a restricted register and needs a justification")
        for name, level in variables.items():
            problems += _check_variable(approval, contracts, register, name, level, f"variables.{register}.{name}")
    for key in approval.justifications:
        register, _, name = key.partition(".")
        if register not in approval.variables or (name and name not in approval.variables[register]):
            problems.append(f"field justifications.{key}: justifies nothing that is requested")
    prefix = f"{path}: " if path else ""
    return [prefix + p for p in problems]


def load_approvals(directory: Path) -> tuple[dict[str, tuple[Path, Approval]], list[str]]:
    """Every approval in a folder, keyed by project, and the problems of the files that failed to parse."""
    approvals: dict[str, tuple[Path, Approval]] = {}
    problems: list[str] = []
    for path in sorted([*Path(directory).glob("*.yaml"), *Path(directory).glob("*.yml")]):
        try:
            approval = parse_approval(path)
        except ApprovalError as error:
            problems += error.problems
            continue
        if approval.project in approvals:
            problems.append(f"{path}: field project: {approval.project} is also approved in {approvals[approval.project][0]}")
            continue
        approvals[approval.project] = (path, approval)
    return approvals, problems


def delivery_plan(approval: Approval, contracts: ContractSet) -> dict[str, list[tuple[str, str, str | None]]]:
    """Register -> (variable, level, justification when the level is an override) for a valid approval.

    Identifiers are always delivered as pseudonyms; the person identifier of each person
    register is added as ``person_id`` even when the approval does not list it.
    """
    plan: dict[str, list[tuple[str, str, str | None]]] = {}
    for register, variables in approval.variables.items():
        contract = contracts[register]
        rows = []
        for name, level in variables.items():
            variable = contract.variable(name)
            resolved = requested_level(variable, level)
            override = resolved != variable.default or variable.protection is Protection.restricted
            rows.append((name, resolved, approval.justifications.get(f"{register}.{name}") if override else None))
        plan[register] = rows
    return plan

"""Need-to-know: an approval checked against the contracts and the warehouse.

Every register, variable, level, code and operator must exist. What a project sees
needs a justification when it goes beyond the platform's defaults, and a population
condition is a use of the data just as delivering it is:

- a restricted register, delivered or used in a population condition, needs a
  justification under its name (``absences``);
- a restricted variable, a level finer than the default, or a condition that can only
  be evaluated at a level finer than the default (``i_citizenship in [PT]`` where the
  default is the citizenship group; ``i_birth_date between 1960-03-15 and ...`` where
  the default is the year) needs one under ``register.variable``.

A condition's level is the coarsest level of the variable at which it selects whole
classes: ``between [1960-01-01, 1975-12-31]`` is a condition on the birth *year*,
``in [LU, DE, BE, FR, ...]`` listing every country of the EU groups is one on the
*group*. The period must be covered by the warehouse: every month of it, for every
register the build reads. Every problem is reported at once, each naming the file and
the field.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contracts import NOT_DELIVERED, ContractSet, Protection, Variable, VariableType
from ..disclosure_policy import RULES, policy_of
from ..period import MONTH_PATTERN
from ..period import Period as Months
from .approval import Approval, Condition, bounded_problems

DEFAULT = "default"
DECIMAL_RESOLUTION = 0.01
"""Register decimals are stored with two decimals: the step between two adjacent values."""


def requested_level(variable: Variable, level: str) -> str:
    """The level name a request resolves to ('default' is the contract's default)."""
    return variable.default if level == DEFAULT else level


def is_finer_than_default(variable: Variable, level: str) -> bool:
    if variable.default == NOT_DELIVERED:
        return True
    return variable.level_names.index(level) < variable.level_names.index(variable.default)


def registers_read(approval: Approval) -> list[str]:
    """Every register a build reads: those delivered and those the population is selected from."""
    return sorted({b.register for b in approval.population} | set(approval.variables))


# --- the level a population condition needs ---------------------------------------------------------


def _finest_set(variable: Variable, condition: Condition) -> set[str]:
    """The finest codes a code condition selects."""
    values = {str(v) for v in condition.values}
    if condition.operator == "not_in":
        return set(variable.codes.finest.labels) - values
    return values


def _whole_classes(selected: set[str], mapping: dict[str, str]) -> bool:
    """Whether ``selected`` finest codes are a union of whole classes of ``mapping`` (finest -> coarse)."""
    classes: dict[str, set[str]] = {}
    for finest, coarse in mapping.items():
        classes.setdefault(coarse, set()).add(finest)
    return all(members <= selected or not (members & selected) for members in classes.values())


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _date_range_at(truncate: str, low: dt.date, high: dt.date) -> bool:
    """Whether [low, high] starts and ends on the boundaries of ``truncate`` periods."""
    if truncate == "year":
        return (low.month, low.day) == (1, 1) and (high.month, high.day) == (12, 31)
    if truncate == "month":
        return low.day == 1 and high.day == calendar.monthrange(high.year, high.month)[1]
    return True


def _band_edge(band, value: float) -> bool:
    if band.width is not None:
        steps = (value - band.origin) / band.width
        return abs(steps - round(steps)) < 1e-9
    return any(abs(value - b) < 1e-9 for b in band.breaks)


def _expressible_at(variable: Variable, level_name: str, condition: Condition) -> bool:
    """Whether the condition selects whole classes of the variable at ``level_name``."""
    level = variable.level(level_name)
    if level.is_as_delivered or level.truncate == "day":
        return True
    if level.code_level:
        return _whole_classes(_finest_set(variable, condition), variable.codes.mapping(level.code_level))
    if condition.operator != "between":
        return False  # listed values are values at the finest level
    low, high = condition.values
    if level.truncate and variable.type is VariableType.month:
        return str(low).endswith("-01") and str(high).endswith("-12")
    if level.truncate:
        return _date_range_at(level.truncate, _as_date(low), _as_date(high))
    if level.band:
        step = 1 if variable.type is VariableType.integer else DECIMAL_RESOLUTION
        return _band_edge(level.band, float(low)) and _band_edge(level.band, float(high) + step)
    return False


def condition_level(variable: Variable, condition: Condition) -> str:
    """The coarsest level at which the condition can be evaluated (the finest level always can)."""
    for name in reversed(variable.level_names):
        if _expressible_at(variable, name, condition):
            return name
    return variable.level_names[0]


# --- what needs a justification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """One use of the data that goes beyond the defaults: the justification key it needs, and why."""

    key: str  # "register" or "register.variable"
    field: str  # where in the approval
    reason: str


def uses_needing_justification(approval: Approval, contracts: ContractSet) -> list[Use]:
    """Every delivery and condition of a (well-formed) approval that needs a justification."""
    uses: list[Use] = []
    for register, variables in approval.variables.items():
        if register not in contracts.registers:
            continue
        if contracts[register].protection == Protection.restricted:
            uses.append(Use(register, f"variables.{register}", f"{register} is a restricted register"))
        for name, level in variables.items():
            try:
                variable = contracts[register].variable(name)
            except KeyError:
                continue
            resolved = requested_level(variable, level)
            key, field = f"{register}.{name}", f"variables.{register}.{name}"
            if variable.protection is Protection.restricted:
                uses.append(Use(key, field, f"{key} is restricted"))
            elif resolved in variable.level_names and is_finer_than_default(variable, resolved):
                uses.append(Use(key, field, f"level {resolved!r} is finer than the default {variable.default!r}"))
    for index, block in enumerate(approval.population):
        if block.register not in contracts.registers:
            continue
        contract = contracts[block.register]
        if contract.protection == Protection.restricted:
            uses.append(Use(block.register, f"population.{index}.register",
                            f"the population is selected from the restricted register {block.register}"))
        for column, condition in block.where.items():
            try:
                variable = contract.variable(column)
            except KeyError:
                continue
            key, field = f"{block.register}.{column}", f"population.{index}.where.{column}"
            if variable.protection is Protection.restricted:
                uses.append(Use(key, field, f"the population is selected on the restricted variable {key}"))
            elif not _condition_problems(variable, condition, field):
                needed = condition_level(variable, condition)
                if is_finer_than_default(variable, needed):
                    uses.append(Use(key, field, f"the condition reads {key} at level {needed!r}, finer than the default {variable.default!r}"))
    return uses


# --- checks ---------------------------------------------------------------------------------------------


def _type_problem(variable: Variable, value: Any) -> str | None:
    """Why a condition value is not of the variable's type, or None."""
    kind = variable.type
    if isinstance(value, bool):
        return "is a yes/no value"
    if kind is VariableType.integer and not isinstance(value, int):
        return "is not an integer"
    if kind is VariableType.decimal and not isinstance(value, (int, float)):
        return "is not a number"
    if kind is VariableType.date:
        try:
            _as_date(value)
        except ValueError:
            return "is not a date YYYY-MM-DD"
    if kind is VariableType.month and not (isinstance(value, str) and MONTH_PATTERN.match(value)):
        return "is not a month YYYY-MM"
    if kind is VariableType.string and not isinstance(value, str):
        return "is not text"
    if kind is VariableType.code and variable.codes is not None and str(value) not in variable.codes.finest.labels:
        return f"is not in the code list of {variable.name}"
    return None


def _condition_problems(variable: Variable, condition: Condition, field: str) -> list[str]:
    if variable.type is VariableType.identifier:
        return [f"field {field}: a population cannot be selected on an identifier"]
    if condition.operator == "between" and variable.type not in (VariableType.integer, VariableType.decimal, VariableType.date, VariableType.month):
        return [f"field {field}.between: {variable.name} is not ordered; use in or eq"]
    problems = []
    for value in condition.values:
        why = _type_problem(variable, value)
        if why:
            problems.append(f"field {field}.{condition.operator}: {str(value)[:40]!r} {why}")
    if not problems and condition.operator == "between":
        low, high = condition.values
        ordered = (_as_date(low), _as_date(high)) if variable.type is VariableType.date else (low, high)
        if ordered[1] < ordered[0]:
            problems.append(f"field {field}.between: the range ends before it starts")
    return problems


def _check_variable(contracts: ContractSet, register: str, name: str, level: str, field: str) -> list[str]:
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
    if name == contract.delivery.month_column and resolved != variable.level_names[0]:
        return [f"field {field}: {name} is the reference month of every row; it is delivered as {variable.format} (write 'default')"]
    return []


def _check_population(approval: Approval, contracts: ContractSet) -> list[str]:
    problems = []
    for index, block in enumerate(approval.population):
        if block.register not in contracts.registers:
            problems.append(f"field population.{index}.register: unknown register {block.register!r}")
            continue
        for column, condition in block.where.items():
            field = f"population.{index}.where.{column}"
            try:
                variable = contracts[block.register].variable(column)
            except KeyError:
                problems.append(f"field {field}: {block.register} has no variable {column!r}")
                continue
            problems += _condition_problems(variable, condition, field)
    return problems


def _check_justifications(approval: Approval, contracts: ContractSet) -> list[str]:
    uses = uses_needing_justification(approval, contracts)
    problems = [f"field justifications.{u.key}: {u.reason} ({u.field}) and needs a justification"
                for u in uses if u.key not in approval.justifications]
    justified = {u.key for u in uses}
    for key in approval.justifications:
        if key not in justified:
            problems.append(f"field justifications.{key}: justifies nothing that needs one (a restricted item, a finer "
                            "level or a condition finer than the default); remove it")
    return problems


def _check_risk_acceptance(approval: Approval, contracts: ContractSet) -> list[str]:
    """An acceptance must accept something: each ceiling above the policy's limit, an output threshold above the policy's."""
    acceptance = approval.risk_acceptance
    if acceptance is None:
        return []
    policy = policy_of(contracts)
    problems = []
    for rule in RULES:
        ceiling, limit = getattr(acceptance.up_to, rule), policy.risk.limit(rule)
        if ceiling is not None and ceiling <= limit:
            problems.append(f"field risk_acceptance.up_to.{rule}: {ceiling:.2%} is not above the policy's {limit:.2%}, so it "
                            "accepts nothing: write the figure the reviewers accept, or remove it")
    threshold = acceptance.output_threshold
    if threshold is not None and threshold <= policy.output.threshold:
        problems.append(f"field risk_acceptance.output_threshold: {threshold} persons per cell is not above the "
                        f"platform's threshold of {policy.output.threshold}, so it would compensate nothing: raise it or remove it")
    return problems


def resolve_period(approval: Approval, months: dict[str, list[str]]) -> tuple[Months | None, list[str]]:
    """The months the build delivers, and the problems that stop it.

    ``months`` maps every register the build reads to the months the warehouse holds.
    A fixed period must be held whole by every register; a rolling one ends at the
    newest month that every register holds, and never after the month the approval
    expires in.
    """
    first = approval.period.from_
    if approval.period.rolling:
        newest = [max(m) for m in months.values() if m]
        if len(newest) < len(months) or not newest:
            return None, ["field period: a rolling period needs every register it reads in the warehouse; "
                          f"none yet for {', '.join(r for r, m in months.items() if not m)}"]
        last = min(min(newest), f"{approval.expires_on:%Y-%m}")
        if last < first:
            return None, [f"field period: the rolling period starts in {first}, after the newest month every register holds ({last})"]
    else:
        last = approval.period.to
    period = Months.parse(f"{first}:{last}")
    problems = []
    for register, held in sorted(months.items()):
        missing = sorted(set(period.months) - set(held))
        if missing:
            problems.append(f"field period: {register} lacks {len(missing)} month(s) of {period}: {_month_list(missing)} "
                            "(deliver or re-ingest them; a delivery still in quarantine does not count)")
    return period, problems


def _month_list(months: list[str]) -> str:
    shown = ", ".join(months[:12])
    return shown + (f", ... ({len(months)} in all)" if len(months) > 12 else "")


def check_approval(
    approval: Approval, contracts: ContractSet, months: dict[str, list[str]], today: dt.date, path: Path | str = ""
) -> tuple[Months | None, list[str]]:
    """The approval's resolved period and every problem, each naming the file and the field (none when buildable).

    ``months``: the warehouse months of every register the approval reads.
    """
    problems: list[str] = []
    if approval.status == "revoked":
        problems.append("field status: the project is revoked; nothing is built and its extract and key are destroyed")
    if approval.expires_on < today:
        problems.append(f"field expires_on: the approval expired on {approval.expires_on}; nothing is built")
    problems += _check_population(approval, contracts)
    for register, variables in approval.variables.items():
        if register not in contracts.registers:
            problems.append(f"field variables.{register}: unknown register {register!r} (registers: {', '.join(contracts.registers)})")
            continue
        for name, level in variables.items():
            problems += _check_variable(contracts, register, name, level, f"variables.{register}.{name}")
    problems += _check_justifications(approval, contracts)
    problems += _check_risk_acceptance(approval, contracts)
    period = None
    if not any(r not in contracts.registers for r in registers_read(approval)):
        period, missing = resolve_period(approval, months)
        problems += missing
    prefix = f"{path}: " if path else ""
    return period, bounded_problems([prefix + p for p in problems])


def delivery_plan(approval: Approval, contracts: ContractSet) -> dict[str, list[tuple[str, str, str | None]]]:
    """Register -> (variable, level, justification when the level is an override) for a valid approval."""
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


def condition_lines(approval: Approval, contracts: ContractSet) -> Iterable[str]:
    """The population conditions as a reviewer reads them, each with the level it reads and its justification."""
    for index, block in enumerate(approval.population):
        restricted = approval.justifications.get(block.register)
        yield f"block {index + 1}: persons with a row in {block.register}" + (f" (restricted register: {restricted})" if restricted else "")
        for column, condition in block.where.items():
            variable = contracts[block.register].variable(column)
            values = ", ".join(str(v) for v in condition.values)
            level = condition_level(variable, condition)
            reason = approval.justifications.get(f"{block.register}.{column}")
            note = f"  <- justified: {reason}" if reason else ""
            yield f"  {column} {condition.operator} [{values}] (reads level {level!r}){note}"

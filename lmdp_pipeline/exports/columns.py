"""What each delivered column becomes in the researchers' formats: its kind, title, codes and their numbers.

The kind follows the contract's type at the approved level (``projects.granularity``
writes a date truncated to the month as text ``YYYY-MM`` and to the year as an integer):

- ``text``: pseudonyms and text; strings everywhere (a pseudonym is never a number).
- ``code``: a code at the approved level of its code list. Parquet keeps the code as a
  dictionary column; Stata labels only numbers, so Stata and SPSS get the code's number
  (``code_numbers``) with the labels as value labels, the same numbers in both.
- ``date``: a day: Stata ``%td``, SPSS ``SDATE10``, Parquet date.
- ``month``: a month, text ``YYYY-MM`` in the extract: Stata ``%tm``, SPSS ``MOYR8``
  (the first day of the month), Parquet the extract's text.
- ``number``: integers, decimals and bands (a band is its lower bound).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from ..contracts import VariableType
from ..projects.plan import PERSON_ID, Plan, external_table

MAX_CODE_NUMBER = 2_147_483_620
"""The largest value a Stata ``long`` holds; whole-number codes above it are numbered instead."""


class Kind(StrEnum):
    text = "text"
    code = "code"
    date = "date"
    month = "month"
    number = "number"


@dataclass(frozen=True)
class ExportColumn:
    """One column of an exported table."""

    name: str  # in the extract
    title: str  # the variable label
    kind: Kind
    level: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)  # code -> label, in code-list order
    numbers: dict[str, int] = field(default_factory=dict)  # code -> its number in Stata and SPSS
    decimals: int = 2  # shown in SPSS for decimal numbers: amounts have cents; researchers' measurements get 6

    @property
    def codes(self) -> list[str]:
        return list(self.labels)


def code_numbers(codes: list[str]) -> dict[str, int]:
    """The number each code gets where only numbers can be labelled.

    Codes that are all whole numbers keep their value (sex 1 and 2 stay 1 and 2; canton
    ``01`` becomes 1), unless two would share a number or one is too large for Stata;
    otherwise the codes are numbered 1, 2, ... in code-list order. The codebook and
    ``value_labels.csv`` give the code, number and label of every one.
    """
    if codes and all(re.fullmatch(r"[0-9]{1,10}", c) for c in codes):
        numbers = {c: int(c) for c in codes}
        if len(set(numbers.values())) == len(codes) and max(numbers.values()) <= MAX_CODE_NUMBER:
            return numbers
    return {code: number for number, code in enumerate(codes, 1)}


def _kind(type_: str, level_truncate: str | None) -> Kind:
    """From a contract's ``VariableType`` or an external column's declared type (both plain words)."""
    if type_ in (VariableType.identifier, VariableType.string):
        return Kind.text
    if type_ == VariableType.code:
        return Kind.code
    if type_ == VariableType.date:
        return {None: Kind.date, "day": Kind.date, "month": Kind.month, "year": Kind.number}[level_truncate]
    if type_ == VariableType.month:
        return Kind.number if level_truncate == "year" else Kind.month
    return Kind.number


def _title(base: str, level: str, finest: str) -> str:
    return base if level == finest else f"{base} ({level})"


def register_columns(plan: Plan, register: str) -> list[ExportColumn]:
    columns = []
    for (variable, level), column in zip(plan.delivered(register), plan.columns(register)):
        if column.pseudonym:
            base = "Person" if column.name == PERSON_ID else variable.title
            columns.append(ExportColumn(column.name, f"{base} (pseudonym)", Kind.text, column.level, column.description))
            continue
        kind = _kind(variable.type, variable.level(level).truncate)
        labels = dict(column.labels) if kind is Kind.code else {}
        columns.append(ExportColumn(column.name, _title(variable.title, level, variable.level_names[0]), kind, level,
                                    column.description, labels, code_numbers(list(labels))))
    return columns


def external_columns(plan: Plan, name: str) -> list[ExportColumn]:
    dataset, table = plan.approval.external[name], external_table(name)
    exported = []
    for column in plan.external_columns(name):
        if column.pseudonym:
            exported.append(ExportColumn(column.name, "Person (pseudonym)", Kind.text, column.level, column.description))
            continue
        declared = dataset.columns[column.name]
        exported.append(ExportColumn(column.name, f"{column.name} ({table}, declared {declared.type})",
                                     _kind(declared.type, None), column.level, column.description, decimals=6))
    return exported


def export_tables(plan: Plan) -> dict[str, list[ExportColumn]]:
    """Every delivered table (registers, then external datasets) and its columns, as ``plan.tables()`` lists them."""
    exported = {register: register_columns(plan, register) for register in plan.registers}
    return exported | {external_table(name): external_columns(plan, name) for name in plan.approval.external}

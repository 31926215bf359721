"""Contract -> Great Expectations suite, generated, never written by hand per register.

Each expectation carries in its ``meta`` the asset check it belongs to, the rule's name,
the column, the severity and what an operator should do, so results map straight back
to findings. GX is imported lazily: it costs seconds to import and only validation
needs it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..contracts import Contract, VariableType
from .report import Check, Severity
from .staging import UNIQUE_KEY, reference_flag, type_flag

if TYPE_CHECKING:
    import great_expectations as gx

TRUE_ONLY = [True]


def import_gx():
    """Import GX with analytics and progress bars off (set before the import reads them)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def format_flag(column: str) -> str:
    return f"_format_{column}"


def check_flag(column: str) -> str:
    return f"_check_{column}"


def _meta(check: Check, rule: str, column: str | None, hint: str, severity: Severity = Severity.error) -> dict:
    return {"check": check.value, "rule": rule, "column": column, "hint": hint, "severity": severity.value}


def build_suite(contract: Contract, month: str) -> "gx.ExpectationSuite":
    """Row-level expectations for one delivery of ``contract`` dated ``month``."""
    gx = import_gx()
    e = gx.expectations
    expectations = []
    for v in contract.variables:
        if v.type in (VariableType.integer, VariableType.decimal, VariableType.date, VariableType.month):
            expectations.append(e.ExpectColumnValuesToBeInSet(
                column=type_flag(v), value_set=TRUE_ONLY,
                meta=_meta(Check.types, f"type {v.type}", v.name, f"values must be {v.format}"),
            ))
        if not v.nullable:
            expectations.append(e.ExpectColumnValuesToNotBeNull(
                column=v.name, meta=_meta(Check.not_null, "required", v.name, "every row needs a value"),
            ))
        if v.codes is not None:
            expectations.append(e.ExpectColumnValuesToBeInSet(
                column=v.name, value_set=[c.code for c in v.codes.finest.codes],
                meta=_meta(Check.code_lists, f"code list {v.codes.name}", v.name, "see the data dictionary for the codes"),
            ))
        if v.min is not None or v.max is not None:
            expectations.append(e.ExpectColumnValuesToBeBetween(
                column=v.name, min_value=v.min, max_value=v.max,
                meta=_meta(Check.ranges, f"between {v.min:g} and {v.max:g}", v.name, f"unit: {v.unit or 'none'}"),
            ))
        if v.identifier_format is not None:
            expectations.append(e.ExpectColumnValuesToBeInSet(
                column=format_flag(v.name), value_set=TRUE_ONLY,
                meta=_meta(Check.identifiers, f"{v.identifier_format} format", v.name, v.format),
            ))
            expectations.append(e.ExpectColumnValuesToBeInSet(
                column=check_flag(v.name), value_set=TRUE_ONLY,
                meta=_meta(Check.identifiers, f"{v.identifier_format} check digits", v.name, "a digit is mistyped or transposed"),
            ))
    expectations.append(e.ExpectColumnValuesToBeInSet(
        column=UNIQUE_KEY, value_set=TRUE_ONLY,
        meta=_meta(Check.unique_key, "unique key " + "+".join(contract.key), None, "rows repeat the same key: duplicates in the extract"),
    ))
    for ref in contract.quality.references:
        expectations.append(e.ExpectColumnValuesToBeInSet(
            column=reference_flag(ref.column), value_set=TRUE_ONLY,
            meta=_meta(Check.references, f"exists in {ref.register}.{ref.to_column}", ref.column,
                       f"the {ref.register} delivery of the month must hold every {ref.column}"),
        ))
    month_column = contract.delivery.month_column
    expectations.append(e.ExpectColumnValuesToBeInSet(
        column=month_column, value_set=[month],
        meta=_meta(Check.reference_month, f"month is {month}", month_column, "rows of another month belong in that month's file"),
    ))
    return gx.ExpectationSuite(name=f"{contract.register}-{contract.version}", expectations=expectations)


def build_volume_suite(contract: Contract, previous_rows: int) -> "gx.ExpectationSuite | None":
    """Table-level volume rule, run on a one-row frame holding the delivery's row count."""
    rule = contract.quality.volume
    if rule is None or previous_rows <= 0:
        return None
    gx = import_gx()
    low = int(previous_rows * (1 - rule.max_change))
    high = int(previous_rows * (1 + rule.max_change)) + 1
    severity = Severity(rule.severity)
    return gx.ExpectationSuite(name=f"{contract.register}-volume", expectations=[
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="rows", min_value=low, max_value=high,
            meta=_meta(Check.volume, f"within {rule.max_change:.0%} of last month ({previous_rows} rows)", None,
                       f"expected {low} to {high} rows; confirm with the source that the delivery is complete", severity),
        )
    ])

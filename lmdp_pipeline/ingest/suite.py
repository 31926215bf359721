"""Contract -> Great Expectations suite, generated, never written by hand per register.

Code lists, ranges and the reference month are native GX expectations on the typed
columns, and the month-to-month volume rule one on the delivery's row count. The row
rules computed in DuckDB (types, required values, identifiers, unique key, references;
see staging.py) arrive as bit-flag words and are checked with one expectation per word,
whose ``meta`` lists the rule behind each bit. Every expectation's ``meta`` names its
asset check, rule, column, severity and what an operator should do, so results map
straight back to findings. GX is imported lazily: it costs seconds to import and only
validation needs it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..contracts import Contract
from .report import Check, Severity
from .staging import BITS_PER_WORD, RowRule, flag_word

if TYPE_CHECKING:
    import great_expectations as gx


def import_gx():
    """Import GX with analytics off (set before the import reads it)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _meta(check: Check, rule: str, column: str | None, hint: str, severity: Severity = Severity.error) -> dict:
    return {"check": check.value, "rule": rule, "column": column, "hint": hint, "severity": severity.value}


def _rule_meta(rule: RowRule) -> dict:
    return _meta(rule.check, rule.rule, rule.column, rule.hint)


def columns_validated(contract: Contract) -> list[str]:
    """Typed columns the native expectations read (the rest stays in DuckDB)."""
    return [
        v.name for v in contract.variables
        if v.codes is not None or v.min is not None or v.max is not None or v.name == contract.delivery.month_column
    ]


def build_suite(contract: Contract, month: str, rules: list[RowRule], previous_rows: int) -> "gx.ExpectationSuite":
    """Expectations for one delivery of ``contract`` dated ``month`` (``previous_rows``: the month before's, 0 if none)."""
    gx = import_gx()
    e = gx.expectations
    expectations = []
    for v in contract.variables:
        if v.codes is not None:
            expectations.append(e.ExpectColumnValuesToBeInSet(
                column=v.name, value_set=[c.code for c in v.codes.finest.codes],
                meta=_meta(Check.values, f"code list {v.codes.name}", v.name, "see the data dictionary for the codes"),
            ))
        if v.min is not None or v.max is not None:
            expectations.append(e.ExpectColumnValuesToBeBetween(
                column=v.name, min_value=v.min, max_value=v.max,
                meta=_meta(Check.values, f"between {v.min:g} and {v.max:g}", v.name, f"unit: {v.unit or 'none'}"),
            ))
    month_column = contract.delivery.month_column
    expectations.append(e.ExpectColumnValuesToBeInSet(
        column=month_column, value_set=[month],
        meta=_meta(Check.values, f"month is {month}", month_column, "rows of another month belong in that month's file"),
    ))
    for word in range((len(rules) + BITS_PER_WORD - 1) // BITS_PER_WORD):
        bits = {str(bit): _rule_meta(rule) for bit, rule in enumerate(rules[word * BITS_PER_WORD : (word + 1) * BITS_PER_WORD])}
        expectations.append(e.ExpectColumnValuesToBeInSet(
            column=flag_word(word), value_set=[0],
            meta={"check": "row_rules", "bits": bits},
        ))
    volume = volume_expectation(contract, previous_rows)
    if volume is not None:
        expectations.append(volume)
    return gx.ExpectationSuite(name=f"{contract.register}-{contract.version}", expectations=expectations)


DELIVERY_ROWS = "_delivery_rows"
"""A column holding the delivery's row count on every row, which the volume rule reads: a table-level rule then
runs in the same validation as the row rules (one GX validation per delivery instead of two) whatever the number
of chunks the rows are streamed in."""


def volume_expectation(contract: Contract, previous_rows: int) -> "gx.expectations.Expectation | None":
    """Month-to-month volume rule on column ``DELIVERY_ROWS``, or None without a rule or a previous month."""
    rule = contract.quality.volume
    if rule is None or previous_rows <= 0:
        return None
    gx = import_gx()
    low = int(previous_rows * (1 - rule.max_change))
    high = int(previous_rows * (1 + rule.max_change)) + 1
    return gx.expectations.ExpectColumnMaxToBeBetween(
        column=DELIVERY_ROWS, min_value=low, max_value=high,
        meta=_meta(Check.volume, f"within {rule.max_change:.0%} of last month ({previous_rows} rows)", None,
                   f"expected {low} to {high} rows; confirm with the source that the delivery is complete",
                   Severity(rule.severity)),
    )

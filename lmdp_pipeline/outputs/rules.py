"""The disclosure rules every cell of a table is held to, with the policy's thresholds.

Names follow ACRO's checks (its results.json says ``MinimumThresholdCheck`` and so on), so a
checker reads the same words in both tools. What the rules look at is always persons:

- ``MinimumThresholdCheck``: a cell with 1 to threshold-1 persons.
- ``PresenceOfZeroCheck``: a cell with no person, unless the request declares it
  structural (empty by definition) or the policy says zeros are not disclosive. A
  structural zero is published as 0; no other rule applies to it.
- ``NKCheck`` (sums and means): the ``dominance_n`` largest contributors hold
  ``dominance_k`` or more of the cell's total.
- ``PPercentCheck`` (sums and means): the cell minus its two largest contributors is less
  than ``p_percent`` of the largest, so the second largest could estimate the largest
  within p percent.
- ``NegativeValues``: a cell of a sum or mean with a negative value, where dominance is
  not defined (ACRO's rule): the rules cannot settle it, a person must (review).

Contributors are persons: a person's values in a cell are summed before the largest are
taken. ``DifferencingCheck`` (``differencing``) and ``SecondarySuppression``
(``suppression``) add their reasons later.
"""

from __future__ import annotations

from ..disclosure_policy import OutputPolicy
from .tables import Cell, TableCells

THRESHOLD = "MinimumThresholdCheck"
ZERO = "PresenceOfZeroCheck"
DOMINANCE = "NKCheck"
P_PERCENT = "PPercentCheck"
DIFFERENCING = "DifferencingCheck"
SECONDARY = "SecondarySuppression"
NEGATIVE = "NegativeValues"
SUPPRESSING = (THRESHOLD, ZERO, DOMINANCE, P_PERCENT, DIFFERENCING)
"""Reasons that suppress a cell (primary suppression); NEGATIVE sends it to a person instead."""


def dominated(cell: Cell, policy: OutputPolicy) -> bool:
    if not cell.total or cell.total <= 0:
        return False
    return sum(cell.top[: policy.dominance_n]) / cell.total >= policy.dominance_k


def p_percent_fails(cell: Cell, policy: OutputPolicy) -> bool:
    largest = cell.top[0] if cell.top else 0
    if largest <= 0:
        return False
    second = cell.top[1] if len(cell.top) > 1 else 0
    return (cell.total - largest - second) / largest < policy.p_percent


def structural(cell: Cell, cells: TableCells, declared: list[dict[str, str]]) -> bool:
    """Whether a declaration covers the cell: every variable it names has the declared label in the cell."""
    key = cell.key(cells.table)
    return any(all(key.get(variable) == label for variable, label in zero.items()) for zero in declared)


def apply_rules(cells: TableCells, policy: OutputPolicy, declared_zeros: list[dict[str, str]]) -> None:
    """Set each cell's primary reasons; note the structural zeros that were applied."""
    dominance = cells.table.dominance
    for cell in cells.cells.values():
        if cell.persons == 0:
            if structural(cell, cells, declared_zeros):
                cell.notes.append("structural zero, as the request declares: published as 0")
            elif policy.zeros_are_disclosive:
                cell.reasons.append(ZERO)
            continue
        if cell.persons < policy.threshold:
            cell.reasons.append(THRESHOLD)
        if dominance and cell.negative:
            cell.reasons.append(NEGATIVE)
        elif dominance:
            if dominated(cell, policy):
                cell.reasons.append(DOMINANCE)
            if p_percent_fails(cell, policy):
                cell.reasons.append(P_PERCENT)

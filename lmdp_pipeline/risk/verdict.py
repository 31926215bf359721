"""The figures against the platform's policy: which rules an extract breaks, in words a reviewer can act on.

Two rules (``RiskPolicy``):

1. **Persons at risk.** The share of the extract's persons who, in some month of the
   period, share their combination of quasi-identifiers (across every table) with
   fewer than k persons of the extract, or hold a value of a restricted variable in a
   combination with fewer than l distinct values of it.
2. **Expected re-identifications.** In every table about persons and every month, the
   sum over persons of 1/F (F: their combination's count in the whole register that
   month), per person of the table.

Apart from the policy, a class of the extract that the register does not hold (F
missing, or below the extract's own count) means the extract is not what the warehouse
holds: an integrity problem no acceptance can cover.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..disclosure_policy import RiskPolicy
from .measures import Figures
from .model import RiskModel

PERSONS_AT_RISK = "persons_at_risk"
REIDENTIFICATION_RATE = "reidentification_rate"
RULES = (PERSONS_AT_RISK, REIDENTIFICATION_RATE)


@dataclass(frozen=True)
class Breach:
    rule: str  # one of RULES
    text: str


def breaches(figures: Figures, model: RiskModel, policy: RiskPolicy) -> list[Breach]:
    """One breach per rule the figures break (none: the extract meets the policy)."""
    problems = []
    if figures.share_at_risk > policy.max_share_at_risk:
        problems.append(Breach(PERSONS_AT_RISK,
            f"{figures.persons_at_risk:,} of {figures.persons:,} persons ({figures.share_at_risk:.1%}) are at risk in some month "
            f"({figures.persons_below_k:,} share their combination of quasi-identifiers with fewer than k={policy.k} persons, "
            f"{figures.persons_below_l:,} hold a restricted value with fewer than l={policy.l} distinct values in their combination); "
            f"the policy allows {policy.max_share_at_risk:.0%}"
        ))
    worst = figures.worst_rate([t.name for t in model.person_tables])
    if worst is not None and worst.reidentification_rate > policy.max_reidentification_rate:
        problems.append(Breach(REIDENTIFICATION_RATE,
            f"{worst.table}{f' in {worst.month}' if worst.month else ''}: {worst.expected_reidentifications:,.1f} expected "
            f"re-identifications among {worst.units:,} persons ({worst.reidentification_rate:.1%}, counted against the whole register); "
            f"the policy allows {policy.max_reidentification_rate:.0%}"
        ))
    return problems


def integrity_problems(figures: Figures) -> list[str]:
    """Classes of the extract absent from the register: the extract holds something the warehouse does not."""
    return [f"{t.table}{f' in {t.month}' if t.month else ''}: {t.unmatched} combinations of quasi-identifiers are not in the "
            "register (the extract does not hold what the warehouse holds)" for t in figures.tables if t.unmatched]

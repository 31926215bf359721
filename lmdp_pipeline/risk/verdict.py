"""The figures against the platform's policy: which rules an extract breaks, in words a reviewer can act on.

Three rules (``RiskPolicy``):

1. **Persons at risk.** The share of the extract's persons who, in some month of the
   period, share their combination of quasi-identifiers (across every table) with
   fewer than k persons of the extract, or hold a value of a restricted variable in a
   combination with fewer than l distinct values of it.
2. **Expected re-identifications.** In every table about persons and every month, the
   sum over persons of 1/F (F: their combination's count in the whole register that
   month), per person of the table.
3. **Respondents at risk.** The same test as rule 1, judged among the persons of the
   researchers' own files alone: they chose those persons and know every answer, so a
   respondent at risk is one they can find. Averaged over the whole extract, a few
   persons planted in a file (given an answer no one else has, or answers spread over
   several files that single them out only together) stayed under rule 1's allowance.

An approval's ``risk_acceptance`` covers a breach only up to the figure its reviewers
accepted for that rule (``up_to``); beyond it, or for a rule it names no figure for,
the breach is refused as if nothing were accepted.

Apart from the policy, a class of the extract that the register does not hold (F
missing, or below the extract's own count) means the extract is not what the warehouse
holds: an integrity problem no acceptance can cover.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..disclosure_policy import PERSONS_AT_RISK, REIDENTIFICATION_RATE, RESPONDENTS_AT_RISK, RiskPolicy
from ..projects.approval import AcceptedFigures
from .measures import Figures
from .model import RiskModel


@dataclass(frozen=True)
class Breach:
    rule: str  # one of disclosure_policy.RULES
    figure: float  # what the rule limits, measured
    text: str


def breaches(figures: Figures, model: RiskModel, policy: RiskPolicy) -> list[Breach]:
    """One breach per rule the figures break (none: the extract meets the policy)."""
    problems = []
    if figures.share_at_risk > policy.max_share_at_risk:
        problems.append(Breach(PERSONS_AT_RISK, figures.share_at_risk,
            f"{figures.persons_at_risk:,} of {figures.persons:,} persons ({figures.share_at_risk:.1%}) are at risk in some month "
            f"({figures.persons_below_k:,} share their combination of quasi-identifiers with fewer than k={policy.k} persons, "
            f"{figures.persons_below_l:,} hold a restricted value with fewer than l={policy.l} distinct values in their combination); "
            f"the policy allows {policy.max_share_at_risk:.0%}"
        ))
    worst = figures.worst_rate([t.name for t in model.person_tables])
    if worst is not None and worst.reidentification_rate > policy.max_reidentification_rate:
        problems.append(Breach(REIDENTIFICATION_RATE, worst.reidentification_rate,
            f"{worst.table}{f' in {worst.month}' if worst.month else ''}: {worst.expected_reidentifications:,.1f} expected "
            f"re-identifications among {worst.units:,} persons ({worst.reidentification_rate:.1%}, counted against the whole register); "
            f"the policy allows {policy.max_reidentification_rate:.0%}"
        ))
    if figures.share_of_respondents_at_risk > policy.max_share_of_respondents_at_risk:
        problems.append(Breach(RESPONDENTS_AT_RISK, figures.share_of_respondents_at_risk,
            f"{figures.respondents_at_risk:,} of the {figures.respondents:,} persons of the researchers' files "
            f"({figures.share_of_respondents_at_risk:.1%}) are at risk in some month (their combination of quasi-identifiers, "
            f"every answer of every file included, is shared by fewer than k={policy.k} persons, or by fewer than l={policy.l} "
            "values of a restricted variable): the researchers chose these persons and know their answers, so each one at risk "
            f"is one they can find; the policy allows {policy.max_share_of_respondents_at_risk:.0%}"
        ))
    return problems


def beyond_acceptance(found: list[Breach], accepted: AcceptedFigures) -> list[str]:
    """The breaches an acceptance does not cover: a figure above the ceiling its reviewers accepted, or a rule it names none for."""
    problems = []
    for breach in found:
        ceiling = getattr(accepted, breach.rule)
        if ceiling is None:
            problems.append(f"{breach.rule} at {breach.figure:.2%} is not covered: risk_acceptance.up_to names no figure for it, so "
                            "it is accepted only within the policy")
        elif breach.figure > ceiling:
            problems.append(f"{breach.rule} at {breach.figure:.2%} is beyond the {ceiling:.2%} the reviewers accepted "
                            f"(risk_acceptance.up_to.{breach.rule}): they accept the new figure, or the approval is narrowed")
    return problems


def integrity_problems(figures: Figures) -> list[str]:
    """Classes of the extract absent from the register: the extract holds something the warehouse does not."""
    return [f"{t.table}{f' in {t.month}' if t.month else ''}: {t.unmatched} combinations of quasi-identifiers are not in the "
            "register (the extract does not hold what the warehouse holds)" for t in figures.tables if t.unmatched]

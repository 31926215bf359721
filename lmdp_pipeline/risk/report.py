"""How the risk is shown: the extract's ``_risk`` table, the lines of ``lmdp approvals check``, Dagster metadata.

Who sees what decides what each holds. ``_risk`` is read by the researchers: it holds
what the extract already tells them (counts of classes, of persons below k and l, per
table and month, all of which they could compute from the tables), the policy, the
verdict per rule, the accepted risk and the suggestions. It never holds a value of a
quasi-identifier, and no figure counted in the whole register: a population frequency
is information the extract does not hold, and over a few records it says which sample
uniques are unique in the whole country. Those figures (population uniques, expected
re-identifications per table and month) go to the platform team only: the preview,
Dagster metadata, the check's result and the audit log. No figure anywhere names a
person: they are counts and shares.
"""

from __future__ import annotations

import duckdb

from ..disclosure_policy import RULES
from ..projects.approval import Approval
from .assess import RiskAssessment
from .measures import Figures
from .lattice import MAX_NODES
from .model import ENTERPRISES

RISK_TABLE = "_risk"
WHOLE_PERIOD = "period"


def _unit(table: str) -> str:
    return "employers" if table == ENTERPRISES else "persons"


def verdict(assessment: RiskAssessment) -> str:
    if assessment.integrity:
        return "refused: the extract does not hold what the warehouse holds"
    if assessment.meets_policy:
        return "meets the policy"
    if assessment.accepted:
        return "beyond the policy, risk accepted"
    return "beyond the policy and the accepted figures" if assessment.acceptance is not None else "beyond the policy"


def approval_lines(before: Approval, after: Approval) -> list[str]:
    """The approval lines that turn ``before`` into ``after`` (variables, external columns, justifications)."""
    lines = []
    for register, chosen in before.variables.items():
        for column, level in chosen.items():
            new = after.variables.get(register, {}).get(column)
            if new is None:
                lines.append(f"variables.{register}.{column}: remove")
            elif new != level:
                lines.append(f"variables.{register}.{column}: {new}")
    for name, dataset in before.external.items():
        if name not in after.external:
            lines.append(f"external.{name}: remove")
            continue
        lines += [f"external.{name}.columns.{c}: remove" for c in dataset.columns if c not in after.external[name].columns]
    lines += [f"justifications.{key}: remove (nothing needs it any more)" for key in before.justifications if key not in after.justifications]
    return lines


def _sample_rows(figures: Figures) -> list[tuple]:
    """What the extract already tells: counts per table and month, for the whole period, and for the extract as a whole."""
    rows = []
    for t in figures.tables:
        unit, month = _unit(t.table), t.month or WHOLE_PERIOD
        rows += [("measure", t.table, month, item, value) for item, value in [
            (unit, t.units), ("records", t.records), ("classes", t.classes), ("smallest_class", t.smallest),
            ("classes_below_k", t.classes_below_k), (f"{unit}_below_k", t.units_below_k), ("records_below_k", t.records_below_k),
            ("sample_uniques", t.sample_uniques),
        ]]
    for table, (units, below) in figures.units_at_risk.items():
        rows += [("measure", table, WHOLE_PERIOD, _unit(table), units), ("measure", table, WHOLE_PERIOD, f"{_unit(table)}_below_k", below)]
    for e in figures.extract:
        rows += [("measure", "extract", e.month or WHOLE_PERIOD, item, value) for item, value in [
            ("persons", e.persons), ("classes", e.classes), ("smallest_class", e.smallest), ("classes_below_k", e.classes_below_k),
            ("persons_below_k", e.persons_below_k), ("sample_uniques", e.sample_uniques),
        ]]
    for d in figures.diversity:
        rows += [("measure", d.variable, d.month, item, value) for item, value in [
            ("classes", d.classes), ("smallest_l", d.smallest_l), ("classes_below_l", d.classes_below_l), ("persons_below_l", d.persons_below_l),
        ]]
    rows += [("measure", "extract", WHOLE_PERIOD, item, value) for item, value in [
        ("persons", figures.persons), ("persons_below_k", figures.persons_below_k), ("persons_below_l", figures.persons_below_l),
        ("persons_at_risk", figures.persons_at_risk), ("share_at_risk", round(figures.share_at_risk, 4)),
        *_respondent_items(figures),
    ]]
    return [(*row, None) for row in rows]


def _respondent_items(figures: Figures) -> list[tuple[str, float]]:
    """The researchers' respondents and their share at risk (nothing when the extract has no external data)."""
    if not figures.respondents:
        return []
    return [("respondents", figures.respondents), ("respondents_at_risk", figures.respondents_at_risk),
            ("share_of_respondents_at_risk", round(figures.share_of_respondents_at_risk, 4))]


def _suggestion_rows(assessment: RiskAssessment) -> list[tuple]:
    rows = []
    for number, s in enumerate(assessment.suggestions, 1):
        scope = f"suggestion {number}"
        rows += [("suggestion", scope, None, "level", None, f"{name}: {level}") for name, level in s.changes.items()]
        rows += [("suggestion", scope, None, "approval_line", None, line) for line in approval_lines(assessment.approval, s.approval)]
        rows += [("suggestion", scope, WHOLE_PERIOD, item, value, None) for item, value in [
            ("information_kept", round(s.information_kept, 4)), ("persons_at_risk", s.figures.persons_at_risk),
            ("share_at_risk", round(s.figures.share_at_risk, 4)), *_respondent_items(s.figures),
        ]]
    return rows


def risk_rows(assessment: RiskAssessment) -> list[tuple]:
    """Every row of ``_risk``: (section, scope, month, item, value, text)."""
    policy, risk = assessment.policy, assessment.policy.risk
    rows = [("policy", "disclosure_policy", None, "version", None, policy.version)]
    rows += [("policy", "disclosure_policy", None, name, float(value), None) for name, value in risk.model_dump().items()]
    rows += [("quasi_identifier", qi.table, None, qi.column, None, qi.level) for qi in assessment.model.dimensions]
    rows += [("sensitive", s.table, None, s.column, None, s.level) for s in assessment.model.sensitive]
    rows += _sample_rows(assessment.figures)
    rows += [("verdict", "extract", WHOLE_PERIOD, rule, None, f"{'beyond' if assessment.breaks(rule) else 'within'} the policy")
             for rule in RULES]
    rows += [("verdict", "extract", WHOLE_PERIOD, "result", None, verdict(assessment))]
    if assessment.acceptance is not None:
        acceptance = assessment.acceptance
        rows += [("risk_acceptance", "approval", None, "justification", None, acceptance.justification)]
        rows += [("risk_acceptance", "approval", None, "compensating_measure", None, m) for m in acceptance.compensating_measures]
        rows += [("risk_acceptance", "approval", None, "accepted_by", None, ", ".join(acceptance.accepted_by))]
        rows += [("risk_acceptance", "approval", None, f"up_to_{rule}", getattr(acceptance.up_to, rule), None)
                 for rule in RULES if getattr(acceptance.up_to, rule) is not None]
    return rows + _suggestion_rows(assessment)


def write_risk_table(con: duckdb.DuckDBPyConnection, assessment: RiskAssessment) -> None:
    con.execute(f"CREATE TABLE {RISK_TABLE} (section VARCHAR, scope VARCHAR, month VARCHAR, item VARCHAR, value DOUBLE, text VARCHAR)")
    con.executemany(f"INSERT INTO {RISK_TABLE} VALUES (?, ?, ?, ?, ?, ?)", risk_rows(assessment))


def _policy_line(assessment: RiskAssessment) -> str:
    risk = assessment.policy.risk
    return (f"disclosure policy {assessment.policy.version}: k={risk.k}, l={risk.l}, at most {risk.max_share_at_risk:.0%} of persons "
            f"at risk, at most {risk.max_reidentification_rate:.0%} expected re-identifications, at most "
            f"{risk.max_share_of_respondents_at_risk:.0%} of the researchers' respondents at risk")


def _worst_months(figures: Figures) -> list:
    """Per table, the month with the highest expected re-identifications per unit."""
    worst = {}
    for t in figures.tables:
        if t.table not in worst or t.reidentification_rate > worst[t.table].reidentification_rate:
            worst[t.table] = t
    return list(worst.values())


def _table_line(t, units_at_risk: tuple[int, int]) -> str:
    unit = _unit(t.table)
    when = f"worst month {t.month}" if t.month else "whole period"
    return (f"{t.table}: {units_at_risk[1]:,} of {units_at_risk[0]:,} {unit} below k in some month; {when}: {t.units:,} {unit} in "
            f"{t.classes:,} classes (smallest {t.smallest}), {t.units_below_k:,} below k, {t.sample_uniques:,} sample uniques of "
            f"which {t.population_uniques:,} unique in the whole register, {t.expected_reidentifications:,.1f} expected "
            f"re-identifications ({t.reidentification_rate:.1%})")


def _suggestion_lines(assessment: RiskAssessment, s, number: int) -> list[str]:
    worst = s.figures.worst_rate([t.name for t in assessment.model.person_tables])
    rate = f", highest re-identification rate {worst.reidentification_rate:.1%}" if worst else ""
    changes = ", ".join(f"{name}: {level}" for name, level in s.changes.items())
    respondents = (f", {s.figures.respondents_at_risk:,} of {s.figures.respondents:,} respondents at risk "
                   f"({s.figures.share_of_respondents_at_risk:.1%})" if s.figures.respondents else "")
    return [f"{number}. {changes} ({s.information_kept:.0%} of the information kept): {s.figures.persons_at_risk:,} persons at risk "
            f"({s.figures.share_at_risk:.1%}){rate}{respondents}",
            "   approval lines: " + "; ".join(approval_lines(assessment.approval, s.approval))]


def _ceilings(acceptance) -> str:
    return ", ".join(f"{getattr(acceptance.up_to, rule):.1%} {rule.replace('_', ' ')}" for rule in RULES
                     if getattr(acceptance.up_to, rule) is not None)


def preview_lines(assessment: RiskAssessment) -> list[str]:
    """What ``lmdp approvals check`` prints about the risk (for the platform team: population figures included)."""
    model, figures = assessment.model, assessment.figures
    lines = [f"re-identification risk ({_policy_line(assessment)}):"]
    if not model.tables:
        return lines + ["  no quasi-identifier delivered: nothing to measure", "  result: meets the policy"]
    qis = ", ".join(f"{qi.name} ({qi.level})" for qi in model.dimensions)
    sensitive = "; sensitive: " + ", ".join(f"{s.name} ({s.level})" for s in model.sensitive) if model.sensitive else ""
    lines.append(f"  quasi-identifiers: {qis}{sensitive}")
    lines.append(f"  extract: {figures.persons_at_risk:,} of {figures.persons:,} persons at risk in some month ({figures.share_at_risk:.1%}): "
                 f"{figures.persons_below_k:,} below k, {figures.persons_below_l:,} below l")
    if figures.respondents:
        lines.append(f"  researchers' files: {figures.respondents_at_risk:,} of their {figures.respondents:,} persons at risk in some "
                     f"month ({figures.share_of_respondents_at_risk:.1%})")
    lines += [f"  {_table_line(t, figures.units_at_risk[t.table])}" for t in _worst_months(figures)]
    lines.append(f"  result: {verdict(assessment)}")
    lines += [f"    - {problem}" for problem in [*assessment.problems, *assessment.integrity]]
    if assessment.acceptance is not None:
        a = assessment.acceptance
        lines.append(f"  risk_acceptance by {', '.join(a.accepted_by)}, up to {_ceilings(a)}: {a.justification.rstrip('.')}; "
                     "compensating measures: " + "; ".join(a.compensating_measures))
        lines += [f"    - {problem}" for problem in assessment.beyond_acceptance]
    if assessment.breaches:
        if assessment.suggestions:
            lines.append("  suggestions (least information lost first; each measured again and meets the policy):")
            for number, s in enumerate(assessment.suggestions, 1):
                lines += [f"    {line}" for line in _suggestion_lines(assessment, s, number)]
        else:
            lines.append(f"  no coarsening of the quasi-identifiers (among the {MAX_NODES:,} least coarse) meets the policy: "
                         "narrow the variables or widen the population")
    return lines


def headline(assessment: RiskAssessment) -> dict:
    """The figures the ``projects/extract`` materialisation carries (plain values; the asset wraps them)."""
    figures = assessment.figures
    worst = figures.worst_rate([t.name for t in assessment.model.person_tables])
    return {
        "result": verdict(assessment),
        "policy_version": assessment.policy.version,
        "persons": figures.persons,
        "persons_at_risk": figures.persons_at_risk,
        "share_at_risk": round(figures.share_at_risk, 4),
        "share_of_respondents_at_risk": round(figures.share_of_respondents_at_risk, 4),
        "highest_reidentification_rate": round(worst.reidentification_rate, 4) if worst else 0.0,
        "population_uniques_in_a_month": max((t.population_uniques for t in figures.tables
                                              if t.table in {p.name for p in assessment.model.person_tables}), default=0),
        "accepted": assessment.accepted,
    }


def markdown(assessment: RiskAssessment) -> str:
    """The preview's figures as Markdown, for the Dagster UI."""
    lines = [f"**{verdict(assessment)}** ({_policy_line(assessment)})", ""]
    lines += [f"- {line.strip()}" for line in preview_lines(assessment)[1:]]
    return "\n".join(lines)

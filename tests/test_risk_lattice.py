"""The search for coarser levels: never finer than approved, minimal, and each suggestion meets the policy once applied.

The suggestions are checked the way a reviewer would use them: their approval lines
are applied to the approval as text, the result is checked against the contracts like
any approval, and its risk is measured again from the warehouse. Minimality is
checked against a brute force that measures every coarsened approval from scratch.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
import yaml

from lmdp_pipeline.contracts import load_contracts
from lmdp_pipeline.period import Period
from lmdp_pipeline.projects.approval import Approval
from lmdp_pipeline.projects.plan import Plan
from lmdp_pipeline.projects.rules import check_approval
from lmdp_pipeline.risk.assess import estimate_risk
from lmdp_pipeline.risk.lattice import MAX_NODES, by_height
from lmdp_pipeline.risk.model import DROPPED
from lmdp_pipeline.risk.report import approval_lines, preview_lines

from .conftest import WAREHOUSE_MONTHS, approved_files, plan_for, project_home

TODAY = dt.date(2026, 11, 28)
MONTHS = "2024-02:2024-03"


@pytest.fixture(scope="module")
def home(small_home, tmp_path_factory):
    return project_home(small_home, tmp_path_factory.mktemp("lattice-home"))


@pytest.fixture(scope="module")
def pensioners(home, contracts):
    """P2026-002 (birth year, sex, country of citizenship): beyond the policy on 600 persons."""
    return estimate_risk(home, plan_for("P2026-002", contracts, MONTHS))


def applied(approval: Approval, lines: list[str]) -> dict:
    """The approval as YAML data with the approval lines applied as a reviewer would, by hand."""
    data = approval.model_dump(mode="json", by_alias=True, exclude_none=True)
    for line in lines:
        path, _, value = line.partition(": ")
        *parents, last = path.split(".", 1) if path.startswith("justifications.") else path.split(".")
        node = data
        for part in parents:
            node = node[part]
        if value.startswith("remove"):
            del node[last]
        else:
            node[last] = value
    return data


def checked(data: dict, contracts) -> Plan:
    approval = Approval.model_validate(data)
    period, problems = check_approval(approval, contracts, {r: list(WAREHOUSE_MONTHS) for r in contracts.registers}, TODAY)
    assert problems == [], problems
    return Plan(approval, contracts, period)


def test_a_risky_approval_gets_suggestions(pensioners):
    assert pensioners.breaches and pensioners.suggestions
    assert all(s.figures.share_at_risk <= pensioners.policy.risk.max_share_at_risk for s in pensioners.suggestions)


def test_suggestions_are_never_finer_than_approved(pensioners, home, contracts):
    for assessment in (pensioners, estimate_risk(home, approved_files(plan_for("P2026-001", contracts, MONTHS), home))):
        assert assessment.suggestions
        for suggestion in assessment.suggestions:
            assert suggestion.changes
            for name, level in suggestion.changes.items():
                table, column = name.split(".")
                if level == DROPPED:
                    continue
                levels = contracts[table].variable(column).level_names  # finest first
                approved = assessment.model.approved[name]
                assert levels.index(level) > levels.index(approved), f"{name}: {level} is not coarser than {approved}"


def test_each_suggestion_applied_to_the_approval_meets_the_policy(pensioners, home, contracts):
    """The approval lines, applied by hand and checked like any approval, measure within the policy again."""
    for suggestion in pensioners.suggestions:
        lines = approval_lines(pensioners.approval, suggestion.approval)
        plan = checked(applied(pensioners.approval, lines), contracts)
        again = estimate_risk(home, plan)
        assert again.meets_policy, again.problems
        assert (again.figures.persons, again.figures.persons_at_risk) == (suggestion.figures.persons, suggestion.figures.persons_at_risk)


def every_node(approval: Approval) -> list[dict[str, str]]:
    """P2026-002's lattice, spelled out: birth year or not, sex or not, citizenship by country, group or not."""
    return [{"i_birth_date": b, "i_sex": s, "i_citizenship": c}
            for b, s, c in itertools.product(["year", DROPPED], ["sex", DROPPED], ["country", "group", DROPPED])]


def test_the_suggestions_are_the_minimal_safe_coarsenings_by_brute_force(pensioners, home, contracts):
    """Every coarsened approval measured from the warehouse from scratch; the minimal safe ones are the suggestions."""
    order = {"i_birth_date": ["year", DROPPED], "i_sex": ["sex", DROPPED], "i_citizenship": ["country", "group", DROPPED]}
    safe = []
    for node in every_node(pensioners.approval):
        variables = dict(pensioners.approval.variables)
        variables["individuals"] = {name: level for name, level in node.items() if level != DROPPED}
        justifications = {k: v for k, v in pensioners.approval.justifications.items()
                          if k != "individuals.i_citizenship" or node["i_citizenship"] == "country"}
        approval = pensioners.approval.model_copy(update={"variables": variables, "justifications": justifications})
        if estimate_risk(home, Plan(approval, contracts, Period.parse(MONTHS))).meets_policy:
            safe.append(node)

    def finer_or_equal(a, b):
        return all(order[n].index(a[n]) <= order[n].index(b[n]) for n in order)

    minimal = [n for n in safe if not any(m != n and finer_or_equal(m, n) for m in safe)]
    suggested = [{name.split(".")[1]: level for name, level in s.levels.items()} for s in pensioners.suggestions]
    assert minimal and all(s in minimal for s in suggested) and len(suggested) == min(3, len(minimal))


def test_suggestions_are_ranked_by_information_lost(pensioners, home, contracts):
    for assessment in (pensioners, estimate_risk(home, approved_files(plan_for("P2026-001", contracts, MONTHS), home))):
        lost = [s.information_lost for s in assessment.suggestions]
        assert lost == sorted(lost) and all(0 <= s.information_kept < 1 for s in assessment.suggestions)


def test_the_preview_shows_the_suggestions_with_their_approval_lines(pensioners):
    text = "\n".join(preview_lines(pensioners))
    assert "result: beyond the policy, risk accepted" in text and "suggestions (least information lost first" in text
    first = pensioners.suggestions[0]
    assert "approval lines: " + "; ".join(approval_lines(pensioners.approval, first.approval)) in text
    assert re.search(r"1\. individuals\.\w+: [a-z ]+", text)


def test_nothing_meets_a_policy_no_coarsening_can_reach(home, contracts_copy):
    """With k above the number of persons, even leaving every quasi-identifier out leaves everyone at risk: said so."""
    policy = yaml.safe_load((contracts_copy / "disclosure_policy.yaml").read_text())
    policy["risk"] |= {"k": 100_000}
    (contracts_copy / "disclosure_policy.yaml").write_text(yaml.safe_dump(policy))
    strict = load_contracts(contracts_copy)
    assessment = estimate_risk(home, plan_for("P2026-002", strict, MONTHS))
    assert assessment.breaches and assessment.suggestions == []
    assert "no coarsening of the quasi-identifiers (among the 4,096 least coarse) meets the policy" in "\n".join(preview_lines(assessment))


def test_the_lattice_is_walked_least_coarse_first_and_bounded():
    small = list(by_height([1, 2, 2]))
    assert sorted(small) == sorted(itertools.product(range(2), range(3), range(3)))
    assert [sum(n) for n in small] == sorted(sum(n) for n in small) and small[0] == (0, 0, 0)
    huge = list(by_height([3] * 20))  # 4**20 nodes: only the least coarse are looked at
    assert len(huge) == len(set(huge)) == MAX_NODES and [sum(n) for n in huge] == sorted(sum(n) for n in huge)

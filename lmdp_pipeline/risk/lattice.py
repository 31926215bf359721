"""The platform's "search for alternatives that minimise the risk": the least coarsening that meets the policy.

The quasi-identifiers' levels form a lattice (ARX's generalisation lattice): a node
gives each one a level at or above its approved one, along its contract levels, up to
``not delivered``; never finer than approved. Every rule of the policy only gets easier
as a node gets coarser (classes merge: more persons per class, more distinct values,
more persons in the register per class), so the search walks the nodes by height and
skips every node above one that already meets the policy: what it keeps are the
*minimal* nodes. Each node is computed from the workspace's tables at the approved
levels (``measures``), never from the data again. The persons-at-risk rule is tried
first (a month beyond the limit settles it), with the share of the researchers'
respondents at risk from the same count; the register counts only then.

The policy's share of persons at risk is the suppression limit of the search: the
records a generalisation tool would suppress are the ones counted at risk here, which
the platform delivers under the remote-access environment's controls instead.

Minimal nodes are ranked by the information they lose: for each quasi-identifier,
the entropy (bits per record) of its approved values minus that of its values at the
node's level (a coarser level is a function of the approved one, so the difference is
what the coarsening hides), summed. Each suggestion is measured in full again and kept
only if it meets the policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..contracts import ContractSet
from ..disclosure_policy import RiskPolicy
from ..projects.approval import Approval
from ..projects.plan import EXTERNAL_PREFIX
from ..projects.rules import uses_needing_justification
from .measures import Figures, Workspace
from .memo import SearchMemo
from .model import DROPPED, Levels, RiskModel
from .verdict import breaches

SHOWN = 3
"""Suggestions shown: a reviewer chooses among a few, not from a lattice."""
MAX_NODES = 4096
"""The search looks at this many nodes at most, the least coarse first (a lattice of a dozen quasi-identifiers has
hundreds of thousands); every lattice of the examples and the benchmarks fits whole."""


@dataclass
class Suggestion:
    """A minimal node that meets the policy, with its figures and the approval it makes."""

    levels: Levels
    changes: dict[str, str]  # quasi-identifier -> its new level (coarsened ones only)
    information_lost: float  # bits per record, summed over the quasi-identifiers
    information_kept: float  # share of the approved levels' bits
    figures: Figures
    approval: Approval  # the approval with the change applied


def _node_levels(model: RiskModel, node: tuple[int, ...]) -> Levels:
    return {qi.name: qi.levels[index] for qi, index in zip(model.dimensions, node)}


def _predecessors(node: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [node[:i] + (node[i] - 1,) + node[i + 1:] for i in range(len(node)) if node[i] > 0]


def by_height(tops: list[int]) -> Iterator[tuple[int, ...]]:
    """The lattice's nodes from the approved levels up, one height at a time, at most MAX_NODES of them."""
    level, seen = {tuple(0 for _ in tops)}, 0
    while level and seen < MAX_NODES:
        for node in sorted(level)[:MAX_NODES - seen]:
            seen += 1
            yield node
        level = {node[:i] + (node[i] + 1,) + node[i + 1:] for node in level for i in range(len(node)) if node[i] < tops[i]}


def minimal_nodes(workspace: Workspace, model: RiskModel, policy: RiskPolicy) -> tuple[list[tuple[int, ...]], int]:
    """The minimal nodes meeting the policy, and how many nodes were computed."""
    nodes = by_height([len(qi.levels) - 1 for qi in model.dimensions])
    passing: set[tuple[int, ...]] = set()
    minimal, computed = [], 0
    for node in nodes:
        if any(p in passing for p in _predecessors(node)):
            passing.add(node)
            continue
        computed += 1
        workspace.node(_node_levels(model, node))
        shares = workspace.shares_at_risk(policy.max_share_at_risk)
        if (shares is None or shares[0] > policy.max_share_at_risk or shares[1] > policy.max_share_of_respondents_at_risk
                or workspace.worst_rate() > policy.max_reidentification_rate):
            continue
        passing.add(node)
        minimal.append(node)
    return minimal, computed


def information(workspace: Workspace, model: RiskModel) -> dict[str, dict[str, float]]:
    """Bits per record of every quasi-identifier at every level of its hierarchy."""
    bits = {}
    for i, table in enumerate(model.tables):
        for position, qi in enumerate(table.own):
            bits[qi.name] = {level: workspace.entropy(i, position, level) for level in qi.levels}
    return bits


def apply(approval: Approval, contracts: ContractSet, changes: dict[str, str]) -> Approval:
    """The approval with the quasi-identifiers at their new levels (or left out), and no justification left for nothing."""
    variables = {register: dict(chosen) for register, chosen in approval.variables.items()}
    external = dict(approval.external)
    for name, level in changes.items():
        table, column = name.split(".", 1)
        if table.startswith(EXTERNAL_PREFIX):
            dataset = external[table.removeprefix(EXTERNAL_PREFIX)]
            columns = {c: declared for c, declared in dataset.columns.items() if c != column}
            if columns:
                external[table.removeprefix(EXTERNAL_PREFIX)] = dataset.model_copy(update={"columns": columns})
            else:
                del external[table.removeprefix(EXTERNAL_PREFIX)]
        elif level == DROPPED:
            del variables[table][column]
        else:
            variables[table][column] = level
    changed = approval.model_copy(update={"variables": variables, "external": external})
    needed = {use.key for use in uses_needing_justification(changed, contracts)}
    return changed.model_copy(update={"justifications": {k: v for k, v in approval.justifications.items() if k in needed}})


def search(workspace: Workspace, model: RiskModel, policy: RiskPolicy, approval: Approval, contracts: ContractSet,
           memo: SearchMemo, shown: int = SHOWN) -> list[Suggestion]:
    """The best ``shown`` minimal coarsenings that meet the policy, least information lost first (the minimal nodes
    read from ``memo`` when this workspace was searched before)."""
    minimal = memo.minimal_nodes(workspace, model, policy, MAX_NODES, lambda: minimal_nodes(workspace, model, policy)[0])
    bits = information(workspace, model)
    total = sum(bits[qi.name][qi.level] for qi in model.dimensions) or 1.0

    def lost(node: tuple[int, ...]) -> float:
        return sum(bits[qi.name][qi.level] - bits[qi.name][qi.levels[i]] for qi, i in zip(model.dimensions, node))

    suggestions = []
    for node in sorted(minimal, key=lambda n: (lost(n), sum(n))):
        levels = _node_levels(model, node)
        figures = workspace.figures(levels)
        if breaches(figures, model, policy):
            continue
        changes = {name: level for name, level in levels.items() if level != model.approved[name]}
        suggestions.append(Suggestion(levels, changes, lost(node), 1 - lost(node) / total, figures,
                                      apply(approval, contracts, changes)))
        if len(suggestions) == shown:
            break
    return suggestions

"""The lattice search's answer kept between builds: a rebuild of unchanged data does not search again.

For a project whose risk is beyond the policy (accepted, or refused), the search for
safer levels is most of the risk step: tens of nodes, each a pass over the workspace,
seconds where the rest of the step takes a fraction. Its answer, the minimal nodes,
depends on nothing but what the workspace holds once loaded, the quasi-identifiers'
hierarchies, the policy's limits and the code that measures. A build keeps the answer
under a digest of all of them, and the next build of the project with the same digest
reads it instead of searching; a preview reads, only builds write (a run changes state).

Why a kept answer is never a wrong one:

- new data (a month re-ingested or added, a new key, another population): the
  workspace's fingerprint (every table loaded from the sources counted and hashed in
  DuckDB) changes;
- new hierarchies or a new policy: the SQL of every level of every quasi-identifier,
  k, l and both limits are in the digest;
- new measuring code: the source of ``measures``, ``lattice``, ``model`` and this
  module is in the digest;
- a damaged or planted file: one that does not hold nodes of this lattice is ignored
  and the search runs, and every node read is measured in full again and shown only if
  it meets the policy (``lattice.search``), so a file can hide a suggestion but never
  make an unsafe one.

The file holds lattice coordinates (small integers), no value of the data; it lives in
the identified zone beside the population counts, one per project: a new answer
replaces the project's earlier one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from ..disclosure_policy import RiskPolicy
from ..files import private_dir, write_private
from ..paths import PlatformPaths
from .measures import Workspace
from .model import RiskModel

Nodes = list[tuple[int, ...]]

_CODE = ("measures.py", "lattice.py", "model.py", "memo.py")


def _code_digest() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in _CODE)).hexdigest()


def digest(workspace: Workspace, model: RiskModel, policy: RiskPolicy, max_nodes: int) -> str:
    """What the search's answer depends on, as one name."""
    hierarchies = [[qi.name, [[level, qi.at(level, "v")] for level in qi.levels]] for qi in model.dimensions]
    described = [workspace.fingerprint(), hierarchies, policy.model_dump(mode="json"), max_nodes, _code_digest()]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


class SearchMemo:
    """The kept answers of one project's searches; ``keep``: write new ones (builds), or only read (previews)."""

    def __init__(self, paths: PlatformPaths, project: str, keep: bool):
        self.paths, self.project, self.keep = paths, project, keep

    def minimal_nodes(self, workspace: Workspace, model: RiskModel, policy: RiskPolicy, max_nodes: int,
                      search: Callable[[], Nodes]) -> Nodes:
        """The kept answer for this workspace, or ``search()``'s (kept when ``keep``)."""
        path = self.paths.risk_search_file(self.project, digest(workspace, model, policy, max_nodes))
        kept = _read(path, [len(qi.levels) for qi in model.dimensions])
        if kept is not None:
            return kept
        found = search()
        if self.keep:
            private_dir(path.parent)
            write_private(path, json.dumps({"minimal_nodes": [list(node) for node in found]}))
            for earlier in self.paths.risk_search_files(self.project):
                if earlier != path:
                    earlier.unlink(missing_ok=True)
        return found


def _read(path: Path, sizes: list[int]) -> Nodes | None:
    """The nodes kept in ``path`` if it holds nodes of a lattice of these dimension sizes, else None."""
    try:
        nodes = json.loads(path.read_text())["minimal_nodes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    valid = isinstance(nodes, list) and all(
        isinstance(node, list) and len(node) == len(sizes)
        and all(type(index) is int and 0 <= index < size for index, size in zip(node, sizes)) for node in nodes)
    return [tuple(node) for node in nodes] if valid else None

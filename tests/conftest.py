"""Shared fixtures: the real contracts, and one small generated delivery set per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lmdp_pipeline.contracts import ContractSet, load_contracts
from lmdp_pipeline.paths import CONTRACTS_DIR
from lmdp_pipeline.synthetic import SampleData, generate

SMALL_PERSONS = 2_000
SMALL_MONTHS = "2023-01:2024-12"
SMALL_SEED = 7


@pytest.fixture(scope="session")
def contracts() -> ContractSet:
    return load_contracts()


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory, contracts: ContractSet) -> SampleData:
    """Two years of deliveries for 2,000 persons, shared by the coherence tests (read-only)."""
    home = tmp_path_factory.mktemp("generated")
    return generate(home, persons=SMALL_PERSONS, period=SMALL_MONTHS, seed=SMALL_SEED, contracts=contracts)


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    """A writable copy of data_contracts/ for tests that break it on purpose."""
    target = tmp_path / "data_contracts"
    shutil.copytree(CONTRACTS_DIR, target)
    return target


@pytest.fixture
def permissive_umask():
    """A process umask of 022, as an operator's shell may have: privacy must not depend on a strict one.

    (The CLI, the code location and every build set 077 for the whole process, so without
    this a test could pass only because an earlier test made the umask private.)
    """
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def one_check_fails(monkeypatch):
    """Every build's first blocking check reports a planted failure, the others their real outcome: one refusal among
    the eight must be enough to refuse the build."""
    from lmdp_pipeline.projects import build as build_module

    real = build_module.check_extract

    def one_fails(con, plan, facts):
        outcomes = real(con, plan, facts)
        outcomes[0].problems.append("planted failure")
        return outcomes

    monkeypatch.setattr(build_module, "check_extract", one_fails)


WAREHOUSE_MONTHS = ("2024-01", "2024-02", "2024-03")


@pytest.fixture(scope="session")
def small_home(tmp_path_factory, contracts):
    """600 persons over three months, delivered and ingested: a warehouse to build projects from (read-only)."""
    from lmdp_pipeline.paths import PlatformPaths

    from .ingest_helpers import ingest_month

    home = tmp_path_factory.mktemp("small-home")
    generate(home, persons=600, period=f"{WAREHOUSE_MONTHS[0]}:{WAREHOUSE_MONTHS[-1]}", seed=21, contracts=contracts)
    paths = PlatformPaths(home)
    for month in WAREHOUSE_MONTHS:
        ingest_month(paths, contracts, month)
    return paths


def project_home(small_home, folder: Path):
    """A home of its own (extracts, keys, audit, locks) over the shared warehouse, external files and approvals."""
    from lmdp_pipeline.paths import PlatformPaths

    folder.mkdir(parents=True, exist_ok=True)
    for zone in ("warehouse", "external", "approvals"):
        (folder / zone).symlink_to(getattr(small_home, zone), target_is_directory=True)
    return PlatformPaths(folder)


def approved_files(plan, paths):
    """``plan`` with each external dataset naming the checksum of its file under ``paths``: the file the reviewers
    approved (the example approvals name the committed sample's survey, not the one each test home generates)."""
    from lmdp_pipeline.files import sha256_of
    from lmdp_pipeline.projects.plan import Plan

    external = {name: dataset.model_copy(update={"sha256": sha256_of(paths.external_file(plan.project, dataset.file))})
                for name, dataset in plan.approval.external.items()}
    return Plan(plan.approval.model_copy(update={"external": external}), plan.contracts, plan.period)


def plan_for(project: str, contracts, months: str = "2024-02:2024-03", **changes):
    """The example approval of ``project`` over ``months`` of the small warehouse, with ``changes`` to its fields."""
    from lmdp_pipeline.period import Period
    from lmdp_pipeline.projects.approval import parse_approval
    from lmdp_pipeline.projects.plan import Plan

    from lmdp_pipeline.paths import PROJECT_ROOT

    approval = parse_approval(PROJECT_ROOT / "sample_data" / "approvals" / f"{project}.yaml")
    period = Period.parse(months)
    approval = approval.model_copy(update={
        "period": approval.period.model_copy(update={"from_": str(period.first), "to": str(period.last)}), **changes,
    })
    return Plan(approval, contracts, period)

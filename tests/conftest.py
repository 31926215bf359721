"""Shared fixtures: the real contracts, and one small generated delivery set per session."""

from __future__ import annotations

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

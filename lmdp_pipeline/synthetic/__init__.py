"""Deterministic synthetic CCSS-style deliveries for all nine registers.

``generate`` draws one population and writes, for every month of the period, one CSV
per register under ``landing/`` exactly as the source agency would send it, direct
identifiers included, plus two example approvals, one external researcher file and two
output requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..contracts import ContractSet, load_contracts
from ..paths import PlatformPaths
from ..period import Period

DEFAULT_PERSONS = 5_000
DEFAULT_MONTHS = "2023-01:2024-12"
DEFAULT_SEED = 20_261_128

__all__ = ["DEFAULT_MONTHS", "DEFAULT_PERSONS", "DEFAULT_SEED", "Period", "SampleData", "generate"]


@dataclass
class SampleData:
    landing: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # register -> month -> rows
    approvals: list[Path] = field(default_factory=list)
    external: list[Path] = field(default_factory=list)
    requests: list[Path] = field(default_factory=list)


def generate(
    home: Path,
    persons: int = DEFAULT_PERSONS,
    period: Period | str = DEFAULT_MONTHS,
    seed: int = DEFAULT_SEED,
    contracts: ContractSet | None = None,
) -> SampleData:
    """Write deliveries to ``home/landing``, approvals to ``home/approvals``, external data to ``home/external``,
    output requests to ``home/outputs``."""
    # imported here: numpy, pandas and pyarrow cost a second at the start of every `lmdp` command otherwise
    import duckdb

    from .examples import write_approvals, write_requests, write_survey
    from .monthly import REGISTER_BUILDERS, Month
    from .population import draw_population
    from .writer import write_delivery

    period = Period.parse(period) if isinstance(period, str) else period
    contracts = contracts or load_contracts()
    population = draw_population(contracts, period, persons, seed)
    result = SampleData(landing=home / "landing")
    con = duckdb.connect()
    try:
        for m, label in enumerate(period.months):
            month = Month(population, m, seed)
            for register, build in REGISTER_BUILDERS.items():
                path = home / "landing" / register / f"{register}_{label}.csv"
                rows = write_delivery(con, contracts[register], build(month), path)
                result.rows.setdefault(register, {})[label] = rows
    finally:
        con.close()
    result.external = [write_survey(home / "external", population, seed)]
    result.approvals = write_approvals(home / "approvals", period, result.external[0])
    result.requests = write_requests(PlatformPaths(home), period)
    return result

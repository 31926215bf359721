"""Where the platform keeps its files.

Every folder lives under ``LMDP_HOME`` (default ``./var``) so that a test, a demo and
a production deployment differ only by one environment variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
DEFAULT_HOME = PROJECT_ROOT / "var"


@dataclass(frozen=True)
class PlatformPaths:
    """The folder layout of SPEC section 2, rooted at one home directory."""

    home: Path

    @classmethod
    def from_env(cls) -> "PlatformPaths":
        return cls(Path(os.environ.get("LMDP_HOME", DEFAULT_HOME)).resolve())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def approvals(self) -> Path:
        return self.home / "approvals"

    @property
    def external(self) -> Path:
        return self.home / "external"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def extracts(self) -> Path:
        return self.home / "extracts"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def audit(self) -> Path:
        return self.home / "audit"

    @property
    def dictionary(self) -> Path:
        return self.home / "dictionary"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.home / "dagster")).resolve()

    def delivery_file(self, register: str, month: str) -> Path:
        return self.landing / register / f"{register}_{month}.csv"

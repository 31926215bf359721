"""The platform resource: where LMDP_HOME is, handed to every asset and sensor."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from lmdp_pipeline.contracts import ContractSet, load_contracts
from lmdp_pipeline.paths import CONTRACTS_DIR, PlatformPaths


class PlatformResource(ConfigurableResource):
    """Folders under LMDP_HOME and the data contracts. Holds paths only, never a secret."""

    home: str
    contracts_dir: str = str(CONTRACTS_DIR)

    @property
    def paths(self) -> PlatformPaths:
        return PlatformPaths(Path(self.home))

    def contracts(self) -> ContractSet:
        return load_contracts(Path(self.contracts_dir))

    def keystore(self):
        """The keystore; the master key is read from the environment at run time, never from config."""
        from lmdp_pipeline.projects import keystore

        return keystore(self.paths)

"""Resources: where LMDP_HOME is (fixed when the code location loads), and the master key (from EnvVar).

``PlatformResource`` holds paths only. The code location hands it over as a resource
with an empty config schema, so no run config (a launchpad edit, a sensor) can point a
run at another home or other contracts. ``KeysResource`` is the one way the master key
reaches a run: Dagster resolves its ``EnvVar`` when the run starts, and the value is
never shown in the UI nor stored in run config. Its origin (which variable) is chosen
when the code location loads, from what the deployment set.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from lmdp_pipeline.audit import AuditLog
from lmdp_pipeline.contracts import ContractSet, load_contracts
from lmdp_pipeline.keys import DEVELOPMENT_KEY_ENV, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, Keystore, MasterKey, MasterKeyMissing
from lmdp_pipeline.paths import CONTRACTS_DIR, PlatformPaths

from .audit_log import observe_head


class PlatformResource(dg.ConfigurableResource):
    """Folders under LMDP_HOME and the data contracts. Holds paths only, never a secret."""

    home: str
    contracts_dir: str = str(CONTRACTS_DIR)

    @property
    def paths(self) -> PlatformPaths:
        return PlatformPaths(Path(self.home))

    def contracts(self) -> ContractSet:
        return load_contracts(Path(self.contracts_dir))

    def audit(self, context) -> AuditLog:
        """The audit log, each line's chain head recorded in this run's event log."""
        return AuditLog(self.paths.audit, on_append=observe_head(context))


def fixed_platform(home: Path) -> dg.ResourceDefinition:
    """The platform resource with nothing to configure at run time (an empty config schema refuses any)."""
    platform = PlatformResource(home=str(home))
    return dg.ResourceDefinition(
        resource_fn=lambda _: platform, config_schema={},
        description=f"LMDP_HOME {home} and the data contracts; fixed when the code location loads.",
    )


class KeysResource(dg.ConfigurableResource):
    """The platform's master key and the keystore it opens; configure ``master_key`` or ``master_key_file`` with EnvVar."""

    master_key: str = Field(default="", description="the master key, base64; set with EnvVar(LMDP_MASTER_KEY), never a literal")
    master_key_file: str = Field(default="", description="a file holding the master key; set with EnvVar(LMDP_MASTER_KEY_FILE)")
    origin: str = Field(default="", description="which environment variable the key comes from, for messages")
    development_key: bool = Field(default=False, description="allow the development key in keys/ (demos only)")

    def master(self, paths: PlatformPaths) -> MasterKey:
        if self.master_key_file:
            return MasterKey.from_file(Path(self.master_key_file), f"{MASTER_KEY_FILE_ENV}=")
        if self.origin == MASTER_KEY_ENV or self.master_key:
            return MasterKey.from_text(self.master_key, self.origin or "the master_key setting")
        if self.origin == MASTER_KEY_FILE_ENV:
            raise MasterKeyMissing(f"{MASTER_KEY_FILE_ENV} is empty; it must name the file holding the master key")
        return MasterKey.development_key(paths.keys, self.development_key)

    def keystore(self, paths: PlatformPaths) -> Keystore:
        return Keystore(paths.keys, self.master(paths))


def keys_from_environment() -> KeysResource:
    """The keys resource as the deployment configured it: a key file, a key, or (demos) the development key.

    An empty variable counts as set (and is refused when the key is needed), never as a
    reason to fall back to the development key.
    """
    if MASTER_KEY_FILE_ENV in os.environ:
        return KeysResource(master_key_file=dg.EnvVar(MASTER_KEY_FILE_ENV), origin=MASTER_KEY_FILE_ENV)
    if MASTER_KEY_ENV in os.environ:
        return KeysResource(master_key=dg.EnvVar(MASTER_KEY_ENV), origin=MASTER_KEY_ENV)
    return KeysResource(development_key=os.environ.get(DEVELOPMENT_KEY_ENV) == "1")

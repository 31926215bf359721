"""Dagster assets: thin layers that call into lmdp_pipeline and report metadata."""

from .audit_log import audit_log
from .dictionary import data_dictionary
from .outputs import release_request_op
from .projects import build_project_assets
from .registers import build_register_assets
from .resources import KeysResource, PlatformResource, fixed_platform, keys_from_environment

ALL_ASSETS = [data_dictionary, audit_log, *build_register_assets(), *build_project_assets(), release_request_op]

__all__ = ["ALL_ASSETS", "KeysResource", "PlatformResource", "data_dictionary", "fixed_platform", "keys_from_environment"]

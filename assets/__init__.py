"""Dagster assets: thin layers that call into lmdp_pipeline and report metadata."""

from .dictionary import data_dictionary
from .projects import build_project_assets
from .registers import build_register_assets
from .resources import PlatformResource

ALL_ASSETS = [data_dictionary, *build_register_assets(), *build_project_assets()]

__all__ = ["ALL_ASSETS", "PlatformResource", "data_dictionary"]

"""Dagster assets: thin layers that call into lmdp_pipeline and report metadata."""

from .dictionary import data_dictionary
from .resources import PlatformResource

ALL_ASSETS = [data_dictionary]

__all__ = ["ALL_ASSETS", "PlatformResource", "data_dictionary"]

"""lmdp_pipeline: the domain library of the microdata platform.

Plain Python and DuckDB, importable without Dagster: data contracts, matricule
validation, synthetic deliveries and the published data dictionary. The Dagster
layers in ``assets/`` and ``sensors/`` only call into this package.
"""

__version__ = "0.1.0"

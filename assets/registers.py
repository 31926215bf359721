"""Assets ``registers/<register>``: one monthly-partitioned asset per contract.

Each materialisation ingests ``landing/<register>/<register>_<month>.csv`` through
lmdp_pipeline.ingest and reports the contract's rule families as blocking asset checks
declared beside the asset. The checks are evaluated before the warehouse file is
replaced, so a refused delivery leaves the previous good month in place and fails the
step (downstream assets of the run do not start).
"""

import warnings
from pathlib import Path

import dagster as dg

from lmdp_pipeline.contracts import Contract, ContractSet, load_contracts
from lmdp_pipeline.dictionary import register_page
from lmdp_pipeline.ingest import DeliveryRefused, IngestResult, ingest_delivery
from lmdp_pipeline.ingest.report import CHECK_DESCRIPTIONS, Check, Severity, ValidationReport

from .partitions import MONTHLY_PARTITIONS
from .resources import PlatformResource

REGISTERS_GROUP = "registers"
OWNERS = ["team:data-engineering"]


def register_key(register: str) -> dg.AssetKey:
    return dg.AssetKey(["registers", register])


def _check_results(report: ValidationReport, evaluated: set[Check]) -> list[dg.AssetCheckResult]:
    results = []
    for check in Check:
        if check not in evaluated:
            continue
        findings = report.findings_for(check)
        errors = [f for f in findings if f.severity is Severity.error]
        results.append(dg.AssetCheckResult(
            check_name=check.value,
            passed=not findings,
            severity=dg.AssetCheckSeverity.ERROR if errors or not findings else dg.AssetCheckSeverity.WARN,
            metadata={
                "failing_rows": sum(f.rows for f in findings),
                "findings": dg.MetadataValue.md("\n".join(f"- {f.describe()}" for f in findings) or "all rules passed"),
            },
        ))
    return results


def _evaluated(report: ValidationReport) -> set[Check]:
    """Which checks ran: a file refused on its header never reached the value rules."""
    return set(Check) if report.values_checked else {Check.structure}


def _metadata(result: IngestResult, contract: Contract, dictionary: Path) -> dict:
    schema = dg.TableSchema(columns=[
        dg.TableColumn(name, type_, description=contract.variable(name).title) for name, type_ in result.schema
    ])
    return {
        "source_file": dg.MetadataValue.path(str(result.source)),
        "sha256": result.report.sha256,
        "rows_read": result.report.rows_read,
        "rows_stored": result.rows_stored,
        "rows_rejected": result.rows_rejected,
        "dagster/row_count": result.rows_stored,
        "dagster/column_schema": schema,
        "contract_version": contract.version,
        "warehouse_file": dg.MetadataValue.path(str(result.stored)),
        "validation": dg.MetadataValue.md(result.report.summary()),
        "data_dictionary": dg.MetadataValue.path(str(register_page(dictionary, contract.register))),
    }


def build_register_asset(contract: Contract) -> dg.AssetsDefinition:
    key = register_key(contract.register)
    with warnings.catch_warnings():
        # Partitioned checks are a Dagster preview; they are what lets the UI show each month's verdict.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        check_specs = [
            dg.AssetCheckSpec(
                check.value, asset=key, blocking=True, description=CHECK_DESCRIPTIONS[check], partitions_def=MONTHLY_PARTITIONS
            )
            for check in Check
        ]

    @dg.asset(
        key=key,
        partitions_def=MONTHLY_PARTITIONS,
        deps=[register_key(r) for r in contract.referenced_registers],
        check_specs=check_specs,
        group_name=REGISTERS_GROUP,
        kinds={"csv", "parquet", "duckdb"},
        owners=OWNERS,
        description=f"{contract.title}: {contract.description} Source: {contract.source}. Grain: {contract.grain}.",
        metadata={"contract_version": contract.version, "protection": contract.protection},
    )
    def _register(context: dg.AssetExecutionContext, platform: PlatformResource):
        audit, month = platform.audit(context), context.partition_key
        try:
            result = ingest_delivery(platform.paths, platform.contracts(), contract.register, month)
        except DeliveryRefused as refused:
            report = refused.report
            audit.record("delivery_refused", register=contract.register, month=month, sha256=report.sha256,
                         rows=report.rows_read, rules_broken=len(report.errors), run_id=context.run.run_id)
            yield from _check_results(report, _evaluated(report))
            raise dg.Failure(
                description=str(refused),
                metadata={"quarantine_report": dg.MetadataValue.path(refused.quarantine_report or "")},
            ) from None
        audit.record("delivery_accepted", register=contract.register, month=month, sha256=result.report.sha256,
                     rows=result.rows_stored, warnings=len(result.report.findings), run_id=context.run.run_id)
        yield dg.MaterializeResult(
            metadata=_metadata(result, contract, platform.paths.dictionary), check_results=_check_results(result.report, set(Check))
        )

    return _register


def build_register_assets(contracts: ContractSet | None = None) -> list[dg.AssetsDefinition]:
    return [build_register_asset(contract) for contract in (contracts or load_contracts())]

"""Assets ``projects/<register>`` and ``projects/extract`` on the dynamic partitions ``projects``.

One partition per approved project. A run selects the registers the project asked for
and the extract (the sensor and ``lmdp build`` do): each ``projects/<register>`` step
writes that register's pseudonymised table to the project zone, and
``projects/extract`` assembles them into ``extracts/<project>.duckdb``. The approval is
re-checked at every step, so an approval revoked or expired since the run was queued
builds nothing.
"""

import warnings

import dagster as dg

from lmdp_pipeline.approvals import ApprovalError
from lmdp_pipeline.contracts import Contract, ContractSet, load_contracts
from lmdp_pipeline.extract import ExtractRefused, TableResult, assemble_extract, build_table, staged_table
from lmdp_pipeline.extract_checks import CHECKS, check_extract
from lmdp_pipeline.projects import CheckedApproval, approval_file, check, is_retired

from .registers import OWNERS, register_key
from .resources import PlatformResource

PROJECTS = dg.DynamicPartitionsDefinition(name="projects")
PROJECTS_GROUP = "projects"
EXTRACT_KEY = dg.AssetKey(["projects", "extract"])


def project_key(register: str) -> dg.AssetKey:
    return dg.AssetKey(["projects", register])


def checked_approval(platform: PlatformResource, project: str) -> CheckedApproval:
    try:
        checked = check(platform.paths, platform.contracts(), approval_file(platform.paths, project))
    except (ApprovalError, FileNotFoundError) as error:
        raise dg.Failure(description=f"project {project} cannot be built:\n{error}") from None
    if is_retired(checked.approval):
        raise dg.Failure(description=f"project {project} is revoked or expired; nothing is built")
    return checked


def _table_metadata(table: TableResult, key_id: str) -> dict:
    return {
        "dagster/row_count": table.rows,
        "persons": table.persons,
        "key_id": key_id,
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c.name, description=c.description) for c in table.columns]),
        "dagster/column_lineage": dg.TableColumnLineage(deps_by_column={
            c.name: [dg.TableColumnDep(asset_key=register_key(c.source.split(".")[0]), column_name=c.source.split(".")[1])]
            for c in table.columns
        }),
    }


def build_project_register_asset(contract: Contract) -> dg.AssetsDefinition:
    @dg.asset(
        key=project_key(contract.register),
        partitions_def=PROJECTS,
        deps=[dg.AssetDep(register_key(contract.register), partition_mapping=dg.AllPartitionMapping())],
        group_name=PROJECTS_GROUP,
        kinds={"parquet", "duckdb"},
        owners=OWNERS,
        description=(
            f"{contract.title} for one project: its population and period only, approved variables at their "
            "approved levels, identifiers replaced by the project's pseudonyms (project zone)."
        ),
    )
    def _project_register(context: dg.AssetExecutionContext, platform: PlatformResource) -> dg.MaterializeResult:
        project = context.partition_key
        checked = checked_approval(platform, project)
        if contract.register not in checked.approval.variables:
            raise dg.Failure(description=f"project {project} did not ask for {contract.register}")
        key = platform.keystore().load(project)
        table = build_table(
            checked.approval, platform.contracts(), platform.paths.warehouse, contract.register, key, platform.paths.project_tables(project)
        )
        return dg.MaterializeResult(metadata=_table_metadata(table, key.key_id))

    return _project_register


def build_project_assets(contracts: ContractSet | None = None) -> list[dg.AssetsDefinition]:
    contracts = contracts or load_contracts()
    registers = [build_project_register_asset(c) for c in contracts]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks: one verdict per project
        check_specs = [
            dg.AssetCheckSpec(name, asset=EXTRACT_KEY, blocking=True, description=description, partitions_def=PROJECTS)
            for name, description in CHECKS.items()
        ]

    @dg.asset(
        key=EXTRACT_KEY,
        partitions_def=PROJECTS,
        deps=[project_key(c.register) for c in contracts],
        check_specs=check_specs,
        group_name=PROJECTS_GROUP,
        kinds={"duckdb"},
        owners=OWNERS,
        description=(
            "The project's extract, extracts/<project>.duckdb: one table per requested register plus _manifest, "
            "_dictionary and _lineage; replaced atomically, permissions 0600."
        ),
    )
    def project_extract(context: dg.AssetExecutionContext, platform: PlatformResource):
        project = context.partition_key
        checked = checked_approval(platform, project)
        contracts_now = platform.contracts()
        key = platform.keystore().load(project)
        staging = platform.paths.project_tables(project)
        tables = [staged_table(checked.approval, contracts_now, staging, r) for r in checked.approval.variables]
        provenance = {"approval_file": checked.path.name, "approval_sha256": checked.sha256, "dagster_run_id": context.run.run_id}
        validate = lambda path: check_extract(path, checked.approval, contracts_now, platform.paths.warehouse, key)  # noqa: E731
        try:
            result = assemble_extract(
                checked.approval, contracts_now, tables, platform.paths.extracts, key, provenance, platform.paths.warehouse, validate
            )
        except ExtractRefused as refused:
            yield from _check_results(refused.checks)
            raise dg.Failure(description=str(refused)) from None
        yield dg.MaterializeResult(check_results=_check_results(result.checks), metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "persons": result.persons,
            "dagster/row_count": sum(result.tables.values()),
            "tables": dg.MetadataValue.json(result.tables),
            "key_id": key.key_id,
            "approval_sha256": checked.sha256,
        })

    return [*registers, project_extract]


def _check_results(outcomes) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=o.name, passed=o.passed, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in o.problems) or "none")},
        )
        for o in outcomes
    ]

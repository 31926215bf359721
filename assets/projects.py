"""Assets ``projects/<register>``, ``projects/external`` and ``projects/extract`` on the dynamic partitions ``projects``.

One partition per approved project. The three are one multi-asset, built in one step:
the project's population is computed once, each requested register's table and each
external dataset is written straight into the candidate extract, the blocking checks
run on it, and only then is ``extracts/<project>.duckdb`` replaced (SPEC section 5).
One step instead of one per register is what keeps a build near the cost of a bare
copy (docs/benchmarks.md): no table is written twice, and no step pays its own process
start. ``projects/<register>`` is materialised only for the registers the project asked
for, each with its own row count, schema and column lineage; ``projects/external`` only
for projects with external data, with its linkage report. The approval is re-checked
when the step starts, so an approval revoked or expired since the run was queued
builds nothing.
"""

import warnings
from pathlib import Path

import dagster as dg

from lmdp_pipeline.approvals import Approval, ApprovalError
from lmdp_pipeline.contracts import ContractSet, load_contracts
from lmdp_pipeline.dictionary import register_page
from lmdp_pipeline.extract import ExtractRefused, TableResult, build_extract
from lmdp_pipeline.extract_checks import CHECKS
from lmdp_pipeline.external import ExternalDataRefused, row_list
from lmdp_pipeline.projects import CheckedApproval, approval_file, check, is_retired

from .registers import OWNERS, register_key
from .resources import PlatformResource

PROJECTS = dg.DynamicPartitionsDefinition(name="projects")
PROJECTS_GROUP = "projects"
EXTRACT_KEY = dg.AssetKey(["projects", "extract"])
EXTERNAL_KEY = dg.AssetKey(["projects", "external"])


def project_key(register: str) -> dg.AssetKey:
    return dg.AssetKey(["projects", register])


def build_selection(approval: Approval) -> list[dg.AssetKey]:
    """The assets a build of this project materialises: its registers, its external data if any, and its extract."""
    return [*(project_key(r) for r in approval.variables), *([EXTERNAL_KEY] if approval.external else []), EXTRACT_KEY]


def checked_approval(platform: PlatformResource, project: str) -> CheckedApproval:
    try:
        checked = check(platform.paths, platform.contracts(), approval_file(platform.paths, project))
    except (ApprovalError, FileNotFoundError) as error:
        raise dg.Failure(description=f"project {project} cannot be built:\n{error}") from None
    if is_retired(checked.approval):
        raise dg.Failure(description=f"project {project} is revoked or expired; nothing is built")
    return checked


def _table_metadata(table: TableResult, key_id: str, dictionary: Path) -> dict:
    return {
        "data_dictionary": dg.MetadataValue.path(str(register_page(dictionary, table.name))),
        "dagster/row_count": table.rows,
        "persons": table.persons,
        "key_id": key_id,
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c.name, description=c.description) for c in table.columns]),
        "dagster/column_lineage": dg.TableColumnLineage(deps_by_column={
            c.name: [dg.TableColumnDep(asset_key=register_key(c.source.split(".")[0]), column_name=c.source.split(".")[1])]
            for c in table.columns
        }),
    }


def _external_metadata(result) -> dict:
    """The linkage report of every external dataset: counts and row numbers, never a value."""
    tables = {t.name: t for t in result.tables}
    return {
        "dagster/row_count": sum(e.linkage.linked for e in result.externals),
        "linkage": dg.MetadataValue.md("\n".join(
            f"- **{e.name}** ({e.file.name}, sha256 `{e.sha256[:12]}…`): {e.linkage.rows_read} rows read, "
            f"{e.linkage.invalid_ids} invalid matricules{f' ({row_list(e.linkage.invalid_id_rows)})' if e.linkage.invalid_ids else ''}, "
            f"{e.linkage.linked} linked to the population, {e.linkage.not_linked} outside it (dropped)"
            for e in result.externals
        )),
        "datasets": dg.MetadataValue.json({e.name: {"file": e.file.name, "sha256": e.sha256, **e.linkage.as_dict()} for e in result.externals}),
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(f"{e.name}.{c.name}", description=c.description) for e in result.externals for c in tables[e.name].columns
        ]),
    }


def _register_spec(contract) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=project_key(contract.register),
        deps=[dg.AssetDep(register_key(contract.register), partition_mapping=dg.AllPartitionMapping())],
        group_name=PROJECTS_GROUP,
        kinds={"duckdb"},
        owners=OWNERS,
        skippable=True,
        description=(
            f"{contract.title} for one project: its population and period only, approved variables at their "
            "approved levels, identifiers replaced by the project's pseudonyms; a table of the project's extract."
        ),
    )


def build_project_assets(contracts: ContractSet | None = None) -> list[dg.AssetsDefinition]:
    contracts = contracts or load_contracts()
    registers = [_register_spec(c) for c in contracts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks: one verdict per project
        check_specs = [
            dg.AssetCheckSpec(name, asset=EXTRACT_KEY, blocking=True, description=description, partitions_def=PROJECTS)
            for name, description in CHECKS.items()
        ]
    external = dg.AssetSpec(
        key=EXTERNAL_KEY,
        group_name=PROJECTS_GROUP,
        kinds={"csv", "parquet", "duckdb"},
        owners=OWNERS,
        skippable=True,
        description=(
            "The researchers' own datasets (external/<project>/), declared in the approval: checked (declared columns "
            "and types only, nothing identifying, matricules with valid check digits, one row per person), linked to the "
            "population under the project's person_id, as external_<name> tables of the extract."
        ),
    )
    extract = dg.AssetSpec(
        key=EXTRACT_KEY,
        deps=[spec.key for spec in registers] + [EXTERNAL_KEY],
        group_name=PROJECTS_GROUP,
        kinds={"duckdb"},
        owners=OWNERS,
        description=(
            "The project's extract, extracts/<project>.duckdb: one table per requested register, external_<name> per "
            "external dataset, _manifest, _inputs, _dictionary and _lineage; checked before it replaces the previous "
            "one, permissions 0600."
        ),
    )

    @dg.multi_asset(
        name="project_extract",
        specs=[*registers, external, extract],
        check_specs=check_specs,
        partitions_def=PROJECTS,
        can_subset=True,
    )
    def project_extract(context: dg.AssetExecutionContext, platform: PlatformResource):
        project = context.partition_key
        checked = checked_approval(platform, project)
        wanted = set(build_selection(checked.approval))
        if not wanted <= context.selected_asset_keys:
            missing = sorted(k.to_user_string() for k in wanted - context.selected_asset_keys)
            raise dg.Failure(description=(
                f"project {project}'s tables are built together with its extract: select {', '.join(missing)} too "
                "(the sensor and `lmdp build` select exactly the project's assets)"
            ))
        key = platform.keystore().load(project)
        provenance = {"approval_file": checked.path.name, "approval_sha256": checked.sha256, "dagster_run_id": context.run.run_id}
        try:
            result = build_extract(
                checked.approval, platform.contracts(), platform.paths.warehouse, platform.paths.extracts, key, provenance,
                platform.paths.external,
            )
        except ExtractRefused as refused:
            yield from _check_results(refused.checks)
            raise dg.Failure(description=str(refused)) from None
        except ExternalDataRefused as refused:
            raise dg.Failure(description=str(refused)) from None
        for table in result.tables:
            if table.name in checked.approval.variables:
                yield dg.MaterializeResult(asset_key=project_key(table.name), metadata=_table_metadata(table, key.key_id, platform.paths.dictionary))
        if result.externals:
            yield dg.MaterializeResult(asset_key=EXTERNAL_KEY, metadata=_external_metadata(result))
        yield dg.MaterializeResult(asset_key=EXTRACT_KEY, check_results=_check_results(result.checks), metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "persons": result.persons,
            "dagster/row_count": sum(result.rows.values()),
            "tables": dg.MetadataValue.json(result.rows),
            "key_id": key.key_id,
            "approval_file": dg.MetadataValue.path(str(checked.path)),
            "approval_sha256": checked.sha256,
        })

    return [project_extract]


def _check_results(outcomes) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=EXTRACT_KEY, check_name=o.name, passed=o.passed, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in o.problems) or "none")},
        )
        for o in outcomes
    ]

"""Assets ``projects/<register>``, ``projects/external`` and ``projects/extract`` on the dynamic partitions ``projects``.

One partition per approved project. The three are one multi-asset, built in one step
by ``lmdp_pipeline.projects.lifecycle.build_project``: the approval is checked again
(it must be the one the run was asked to build: ``BuildConfig.fingerprint``), the key
loaded or created, the population computed once, each requested register's table and
each external dataset written straight into the candidate extract, the blocking checks
run on it, and only then is ``extracts/<project>.duckdb`` replaced. Every step is in the
audit log, written by this run whoever started it (the approval sensor, the UI, ``lmdp
build``), with the chain head in this run's event log. ``projects/<register>`` is
materialised only for the registers the project asked for; ``projects/external`` only
for projects with external data, with its linkage report.
"""

import warnings
from pathlib import Path

import dagster as dg
from pydantic import Field

from lmdp_pipeline.contracts import ContractSet, load_contracts
from lmdp_pipeline.dictionary import register_page
from lmdp_pipeline.keys import KeystoreError
from lmdp_pipeline.locks import LockTimeout
from lmdp_pipeline.projects.approval import Approval, ApprovalError, parse_approval
from lmdp_pipeline.projects.build import ExtractRefused, TableResult
from lmdp_pipeline.projects.checks import CHECKS, WARN
from lmdp_pipeline.projects.external import ExternalDataRefused, row_list
from lmdp_pipeline.projects.lifecycle import BuildRefused, build_project
from lmdp_pipeline.risk.report import headline, markdown

from .exports import EXPORT_KEYS, build_export_assets
from .registers import OWNERS, register_key
from .resources import KeysResource, PlatformResource

PROJECTS = dg.DynamicPartitionsDefinition(name="projects")
PROJECTS_GROUP = "projects"
EXTRACT_KEY = dg.AssetKey(["projects", "extract"])
EXTERNAL_KEY = dg.AssetKey(["projects", "external"])
PROJECT_TAG = "lmdp/project"
"""On every run that touches a project (build, retirement): the run queue limits runs per value."""


class BuildConfig(dg.Config):
    """What a build run was asked to build: the approval as the requester saw it."""

    fingerprint: str = Field(
        default="",
        description="sha256 of the approval and its external files when the build was requested; the build refuses "
        "an approval that changed since (empty: build the approval on disk now)",
    )
    requested_by: str = Field(default="", description="who asked: the approval sensor, lmdp build (with the account), the UI")


def project_key(register: str) -> dg.AssetKey:
    return dg.AssetKey(["projects", register])


def build_selection(approval: Approval) -> list[dg.AssetKey]:
    """The assets a build of this project materialises: its registers, its external data if any, its extract, and the
    exports, codebook and package made from it."""
    return [*(project_key(r) for r in approval.variables), *([EXTERNAL_KEY] if approval.external else []), EXTRACT_KEY,
            *EXPORT_KEYS]


def build_run_config(fingerprint: str, requested_by: str) -> dict:
    return {"ops": {"project_extract": {"config": {"fingerprint": fingerprint, "requested_by": requested_by}}}}


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
            "approved levels, identifiers replaced by the project's pseudonyms, rows in pseudonym order; a table of "
            "the project's extract."
        ),
    )


def _requested_by(context: dg.AssetExecutionContext, config: BuildConfig) -> str:
    tags = context.run.tags
    return config.requested_by or (f"sensor {tags['dagster/sensor_name']}" if "dagster/sensor_name" in tags else "the Dagster UI")


def _built_before(context: dg.AssetExecutionContext, project: str) -> bool:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=EXTRACT_KEY, asset_partitions=[project]), limit=1
    ).records
    return bool(records)


def _selection_problem(context: dg.AssetExecutionContext, project: str, platform: PlatformResource,
                       own_keys: set[dg.AssetKey]) -> str | None:
    try:
        approval = parse_approval(platform.paths.approval_file(project))
    except ApprovalError:
        return None  # the build refuses it, and audits why
    missing = sorted(k.to_user_string() for k in set(build_selection(approval)) & own_keys - context.selected_asset_keys)
    if missing:
        return (f"project {project}'s tables are built together with its extract: select {', '.join(missing)} too "
                "(the sensor and `lmdp build` select exactly the project's assets)")
    return None


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
            "The researchers' own datasets (`external/<project>/`), declared in the approval: checked (declared columns "
            "and types only, nothing identifying, matricules with valid check digits, one row per person), linked to the "
            "population under the project's person_id, as `external_<name>` tables of the extract."
        ),
    )
    extract = dg.AssetSpec(
        key=EXTRACT_KEY,
        deps=[spec.key for spec in registers] + [EXTERNAL_KEY],
        group_name=PROJECTS_GROUP,
        kinds={"duckdb"},
        owners=OWNERS,
        description=(
            "The project's extract, `extracts/<project>.duckdb`: one table per requested register, `external_<name>` per "
            "external dataset, `_manifest`, `_inputs`, `_dictionary`, `_lineage` and `_risk` (re-identification risk); "
            "checked before it replaces the previous one, permissions 0600, published with "
            "`extracts/<project>.access.json` (the approval's researchers). Metadata `risk/*`: the headline risk figures."
        ),
    )

    @dg.multi_asset(
        name="project_extract",
        specs=[*registers, external, extract],
        check_specs=check_specs,
        partitions_def=PROJECTS,
        can_subset=True,
    )
    def project_extract(context: dg.AssetExecutionContext, config: BuildConfig, platform: PlatformResource, keys: KeysResource):
        project = context.partition_key
        problem = _selection_problem(context, project, platform, {spec.key for spec in [*registers, external, extract]})
        if problem:
            raise dg.Failure(description=problem)
        paths = platform.paths
        try:
            checked, result = build_project(
                paths, platform.contracts(), lambda: keys.keystore(paths), project, platform.audit(context),
                expected_fingerprint=config.fingerprint, requested_by=_requested_by(context, config), run_id=context.run.run_id,
                built_before=_built_before(context, project),
                on_wait=lambda: context.log.info(f"waiting for another build or retirement of {project} to end"),
            )
        except ExtractRefused as refused:
            yield from _check_results(refused.checks)
            raise dg.Failure(description=str(refused)) from None
        except (ApprovalError, BuildRefused, ExternalDataRefused, KeystoreError, LockTimeout) as refused:
            raise dg.Failure(description=f"project {project}: nothing published:\n{refused}") from None
        key_id = result.key_id
        for table in result.tables:
            if table.name in checked.approval.variables:
                yield dg.MaterializeResult(asset_key=project_key(table.name), metadata=_table_metadata(table, key_id, paths.dictionary))
        if result.externals:
            yield dg.MaterializeResult(asset_key=EXTERNAL_KEY, metadata=_external_metadata(result))
        yield dg.MaterializeResult(asset_key=EXTRACT_KEY, check_results=_check_results(result.checks), metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "persons": result.persons,
            "dagster/row_count": sum(result.rows.values()),
            "tables": dg.MetadataValue.json(result.rows),
            "period": str(checked.plan.period),
            "key_id": key_id,
            "approval_file": dg.MetadataValue.path(str(checked.path)),
            "approval_sha256": checked.sha256,
            "fingerprint": checked.fingerprint,
            "researchers": dg.MetadataValue.json(checked.approval.researchers),
            **_risk_metadata(result.risk),
        })

    return [project_extract, *build_export_assets(PROJECTS, EXTRACT_KEY, PROJECTS_GROUP)]


def _risk_metadata(risk) -> dict:
    """The headline re-identification figures (counts and shares, never a value) and the preview's Markdown."""
    figures = headline(risk)
    return {
        "risk": dg.MetadataValue.md(markdown(risk)),
        "risk/result": figures["result"],
        "risk/persons_at_risk": figures["persons_at_risk"],
        "risk/share_at_risk": dg.MetadataValue.float(figures["share_at_risk"]),
        "risk/share_of_respondents_at_risk": dg.MetadataValue.float(figures["share_of_respondents_at_risk"]),
        "risk/highest_reidentification_rate": dg.MetadataValue.float(figures["highest_reidentification_rate"]),
        "risk/population_uniques_in_a_month": figures["population_uniques_in_a_month"],
        "risk/accepted": figures["accepted"],
        "risk/policy_version": figures["policy_version"],
    }


def _check_results(outcomes) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=EXTRACT_KEY, check_name=o.name, passed=o.passed,
            severity=dg.AssetCheckSeverity.WARN if o.severity == WARN else dg.AssetCheckSeverity.ERROR,
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in o.problems) or "none")},
        )
        for o in outcomes
    ]

"""Assets ``projects/exports``, ``projects/codebook`` and ``projects/package``: what researchers open, per project.

Downstream of ``projects/extract`` on the same ``projects`` partitions, and in every
build's selection (``assets.projects.build_selection``), so the approval sensor and
``lmdp build`` rebuild them with the extract. A published extract has passed its
blocking checks (the build deletes a candidate that fails one), and in a build run a
failed check or a refused build stops these before they start. One step makes all
three with ``lmdp_pipeline.exports.publish.export_project`` (Stata, SPSS and Parquet
per table, the codebook, and the age-encrypted package when the approval lists
recipients); its audit lines are written by this run.
"""

import dagster as dg

from lmdp_pipeline.exports import ExportError
from lmdp_pipeline.exports.package import PackageError
from lmdp_pipeline.exports.publish import ExportResult, export_project
from lmdp_pipeline.locks import LockTimeout
from lmdp_pipeline.paths import codebook_file

from .registers import OWNERS
from .resources import PlatformResource

EXPORTS_KEY = dg.AssetKey(["projects", "exports"])
CODEBOOK_KEY = dg.AssetKey(["projects", "codebook"])
PACKAGE_KEY = dg.AssetKey(["projects", "package"])
EXPORT_KEYS = [EXPORTS_KEY, CODEBOOK_KEY, PACKAGE_KEY]


def _exports_metadata(result: ExportResult) -> dict:
    tables = {
        t.table: {"rows": t.rows, **{f"{fmt}_bytes": result.size(f"exports/{path.name}") for fmt, path in t.files.items()}}
        for t in result.tables
    }
    return {
        "path": dg.MetadataValue.path(str(result.folder)),
        "dagster/row_count": sum(t.rows for t in result.tables),
        "tables": dg.MetadataValue.json(tables),
        "bytes": sum(f.size for f in result.files if f.name.startswith("exports/")),
        "package": result.package.name if result.package is not None else "; ".join(result.notes),
    }


def build_export_assets(partitions_def: dg.PartitionsDefinition, extract_key: dg.AssetKey, group: str) -> list[dg.AssetsDefinition]:
    """The one step that makes the three assets, on ``partitions_def``, downstream of ``extract_key``."""
    specs = [
        dg.AssetSpec(EXPORTS_KEY, deps=[extract_key], group_name=group, kinds={"stata", "spss", "parquet"}, owners=OWNERS,
                     description="The extract's tables as Stata .dta (118), SPSS .sav and Parquet, with variable and value "
                     "labels, and value_labels.csv (each code's number and label), in `extracts/<project>.exports/`."),
        dg.AssetSpec(CODEBOOK_KEY, deps=[EXPORTS_KEY], group_name=group, kinds={"html", "markdown"}, owners=OWNERS,
                     description="`codebook.html` and `codebook.md` beside the exports: what the project received, table by "
                     "table (levels, overrides and justifications, value labels, rows, months, lineage, sha256 of every file)."),
        dg.AssetSpec(PACKAGE_KEY, deps=[CODEBOOK_KEY], group_name=group, kinds={"age"}, owners=OWNERS, skippable=True,
                     description="`packages/<project>.tar.age`: the extract, exports, codebook and SHA256SUMS, encrypted with "
                     "age to the approval's recipients; not made (and an earlier one deleted) when it lists none."),
    ]

    @dg.multi_asset(name="project_exports", specs=specs, partitions_def=partitions_def, can_subset=False)
    def project_exports(context: dg.AssetExecutionContext, platform: PlatformResource):
        project, paths = context.partition_key, platform.paths
        try:
            result = export_project(paths, platform.contracts(), project, platform.audit(context), context.run.run_id,
                                    on_wait=lambda: context.log.info(f"waiting for another build or retirement of {project} to end"))
        except (ExportError, PackageError, LockTimeout) as refused:
            raise dg.Failure(description=f"project {project}: exports not published:\n{refused}") from None
        yield dg.MaterializeResult(asset_key=EXPORTS_KEY, metadata=_exports_metadata(result))
        yield dg.MaterializeResult(asset_key=CODEBOOK_KEY, metadata={
            "path": dg.MetadataValue.path(str(codebook_file(result.folder, "html"))),
            "markdown": dg.MetadataValue.path(str(codebook_file(result.folder, "md"))),
            "tables": len(result.tables),
            "bytes": result.size("exports/codebook.html"),
        })
        if result.package is not None:
            yield dg.MaterializeResult(asset_key=PACKAGE_KEY, metadata={
                "path": dg.MetadataValue.path(str(result.package)),
                "bytes": result.package.stat().st_size,
                "files": len(result.files) + 1,
                "recipients": result.recipients,
            })
        for note in result.notes:
            context.log.warning(f"project {project}: {note}")

    return [project_exports]

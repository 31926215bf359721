"""The project's codebook: exactly what the project received, table by table, in HTML and Markdown.

Rendered with the data dictionary's templates and style (``dictionary.template_environment``)
from the extract's own documentation (``_manifest``, ``_lineage``), the approval (levels,
overrides and their justifications) and the exports just written (names in each format,
value labels with their numbers, the sha256 of every file). HTML is escaped: labels
and researchers' column names are text, never markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..dictionary import template_environment
from ..projects.approval import Approval
from ..projects.rules import delivery_plan
from .columns import Kind
from .tables import TableExport


@dataclass(frozen=True)
class FileEntry:
    """One delivered file: its name (relative to the package), size and sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class CodebookVariable:
    name: str
    stata_name: str
    spss_name: str
    title: str
    kind: str
    level: str
    description: str
    justification: str | None
    source: str
    transformations: str
    stata_storage: str
    spss_format: str
    value_labels: list[tuple[int, str, str]]  # number, code, label


@dataclass(frozen=True)
class CodebookTable:
    name: str
    title: str
    grain: str
    rows: int
    months: list[str]
    justification: str | None
    variables: list[CodebookVariable]


def _stata_storage(variable) -> str:
    if variable.number is None:
        return f"str{variable.width}"
    return f"{variable.number.name} {variable.display}"


def codebook_tables(approval: Approval, contracts, manifest: dict, lineage: dict, exports: list[TableExport]) -> list[CodebookTable]:
    justified = {(r, name): why for r, rows in delivery_plan(approval, contracts).items() for name, _, why in rows}
    months = json.loads(manifest.get("table_months", "{}"))
    grains = json.loads(manifest.get("table_grains", "{}"))
    tables = []
    for export in exports:
        contract = contracts[export.table] if export.table in approval.variables else None
        variables = []
        for column, stata_variable, spss_variable in zip(export.columns, export.stata, export.spss):
            source, transformations = lineage[(export.table, column.name)]
            variables.append(CodebookVariable(
                column.name, stata_variable.name, spss_variable.name, column.title, column.kind.value, column.level,
                column.description, justified.get((export.table, source.split(".")[-1])), source, transformations,
                _stata_storage(stata_variable), "".join(map(str, spss_variable.format[:2])) + (
                    f".{spss_variable.format[2]}" if spss_variable.format[0] == "F" else ""),
                [(column.numbers[c], c, label) for c, label in column.labels.items()] if column.kind is Kind.code else [],
            ))
        tables.append(CodebookTable(
            export.table, contract.title if contract else f"External data {export.table}",
            grains.get(export.table, "person of the researchers' file, linked to the population"),
            export.rows, months.get(export.table, []), approval.justifications.get(export.table), variables,
        ))
    return tables


def render_codebook(approval: Approval, manifest: dict, tables: list[CodebookTable], files: list[FileEntry]) -> dict[str, str]:
    """``{"html": ..., "md": ...}``."""
    env = template_environment()
    context = {"approval": approval, "manifest": manifest, "tables": tables, "files": files,
               "researchers": json.loads(manifest.get("researchers", "[]")),
               "approved_by": json.loads(manifest.get("approved_by", "[]"))}
    return {
        "html": env.overlay(autoescape=True).get_template("codebook.html.j2").render(**context),
        "md": env.get_template("codebook.md.j2").render(**context),
    }

"""Publish the data dictionary from the contracts as static HTML and Markdown.

One page per register (every variable with its description, format, codes, comments,
source, protection mark and levels), one page per shared code list, and an index.
Marks follow the platform: one lock for a variable aggregated by default, two locks
for one not delivered by default (and for a restricted register).
The output is switched in atomically, so readers never see a half-written set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .contracts import NOT_DELIVERED, Contract, ContractSet, Protection, Variable

INLINE_CODES_LIMIT = 40
"""Code lists longer than this get a page of their own instead of a table on the variable."""

ONE_LOCK = "\N{LOCK}"
TWO_LOCKS = ONE_LOCK * 2


def protection_mark(variable: Variable) -> str:
    if variable.default == NOT_DELIVERED:
        return TWO_LOCKS
    if variable.protection is Protection.aggregated:
        return ONE_LOCK
    return ""


def register_mark(contract: Contract) -> str:
    return TWO_LOCKS if contract.protection == "restricted" else ""


@dataclass(frozen=True)
class Published:
    directory: Path
    pages: list[Path]


def template_environment() -> jinja2.Environment:
    """The Jinja environment of the platform's documents (this dictionary, project codebooks): templates, filters, marks."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lmdp_pipeline", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(
        protection_mark=protection_mark,
        register_mark=register_mark,
        NOT_DELIVERED=NOT_DELIVERED,
        INLINE_CODES_LIMIT=INLINE_CODES_LIMIT,
        ONE_LOCK=ONE_LOCK,
        TWO_LOCKS=TWO_LOCKS,
    )
    env.filters["md_cell"] = lambda text: " ".join(str(text).split()).replace("|", "\\|")
    return env


def _shared_list_name(contracts: ContractSet, variable: Variable) -> str | None:
    """The shared code list a variable uses, if its codes come from ``code_lists/``."""
    if variable.codes is not None and contracts.code_lists.get(variable.codes.name) is variable.codes:
        return variable.codes.name
    return None


def render(contracts: ContractSet) -> dict[str, str]:
    """Every page as relative path -> text, HTML and Markdown side by side."""
    env = template_environment()
    pages: dict[str, str] = {}
    for fmt in ("html", "md"):
        context = {"contracts": contracts, "shared_list_name": lambda v: _shared_list_name(contracts, v)}
        pages[f"{fmt}/index.{fmt}"] = env.get_template(f"index.{fmt}.j2").render(**context)
        for contract in contracts:
            pages[f"{fmt}/{contract.register}.{fmt}"] = env.get_template(f"register.{fmt}.j2").render(
                contract=contract, **context
            )
        for code_list in contracts.code_lists.values():
            pages[f"{fmt}/code_lists/{code_list.name}.{fmt}"] = env.get_template(f"code_list.{fmt}.j2").render(
                code_list=code_list, **context
            )
    return pages


def register_page(directory: Path, register: str) -> Path:
    """Where a register's HTML page is once published (linked from the assets' metadata)."""
    return Path(directory) / "html" / f"{register}.html"


def publish(contracts: ContractSet, directory: Path) -> Published:
    """Write the dictionary and switch ``directory`` to it in one atomic step.

    ``directory`` is a symbolic link to a versioned folder beside it; a reader follows
    either the old link or the new one, never a folder being written.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    if directory.exists() and not directory.is_symlink():
        raise FileExistsError(f"{directory} is a real folder; move it away so the dictionary can be published there")
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    link = directory.with_name(f"{staging.name}.link")
    previous = directory.resolve() if directory.is_symlink() else None
    try:
        for relative, text in render(contracts).items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        os.symlink(staging.name, link)
        os.replace(link, directory)
    except BaseException:
        link.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if previous is not None and previous != staging:
        shutil.rmtree(previous, ignore_errors=True)
    return Published(directory, sorted(p for p in directory.rglob("*") if p.is_file()))

"""Load the data dictionary from ``data_contracts/`` and refuse it loudly when malformed.

A malformed contract is a platform bug, not a data problem: every error names the file
and the field (with variable and level names rather than list positions) so the
person editing the YAML can fix it without reading a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..paths import CONTRACTS_DIR
from .code_lists import CodeList
from .models import Contract

CODE_LISTS_SUBDIR = "code_lists"
POLICY_NAME = "disclosure_policy"
"""The one file of the data dictionary folder that is not a register contract (lmdp_pipeline.disclosure_policy reads it)."""


class ContractError(ValueError):
    """A contract or code list that cannot be used; the message names file and field."""


@dataclass(frozen=True)
class ContractSet:
    """All registers' contracts, keyed by register name, with the shared code lists."""

    contracts: Mapping[str, Contract]
    code_lists: Mapping[str, CodeList]
    directory: Path

    def __getitem__(self, register: str) -> Contract:
        try:
            return self.contracts[register]
        except KeyError:
            raise KeyError(f"unknown register {register!r} (known: {', '.join(self.registers)})") from None

    def __iter__(self):
        return iter(self.contracts.values())

    @cached_property
    def registers(self) -> list[str]:
        return list(self.contracts)

    def file_of(self, register: str) -> Path:
        return self.directory / f"{register}.yaml"

    @cached_property
    def ingestion_order(self) -> list[str]:
        """Every register after the registers it references: the order a month's deliveries are ingested in."""
        return list(TopologicalSorter({c.register: c.referenced_registers for c in self}).static_order())

    @cached_property
    def dependents(self) -> dict[str, set[str]]:
        """Register -> every register whose reference checks read it, directly or through another register.

        A new delivery of a register changes what those checks find, so they are checked again.
        """
        readers: dict[str, set[str]] = {register: set() for register in self.registers}
        for contract in self:
            for referenced in contract.referenced_registers:
                readers[referenced].add(contract.register)
        closure: dict[str, set[str]] = {}
        for register in reversed(self.ingestion_order):  # readers come later in the order: their closure is known
            closure[register] = readers[register].union(*(closure[reader] for reader in readers[register]))
        return closure


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it: the code lists parse ten times faster."""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic location with item names: ``variables[i_sex].levels[year]``."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            label = node.get("name", node.get("code", step)) if isinstance(node, dict) else step
            parts.append(f"[{label}]")
            continue
        if isinstance(step, str) and isinstance(node, dict):
            node = node.get(step)
        else:
            node = None
        parts.append(f".{step}" if parts else str(step))
    return "".join(parts) or "(top level)"


def _describe(path: Path, exc: ValidationError, data: Any) -> ContractError:
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(step for step in error["loc"] if not str(step).startswith("function-after"))
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: field {_field_path(loc, data)}: {message}")
    return ContractError("\n".join(lines))


def load_code_list(path: Path) -> CodeList:
    data = _read_yaml(path)
    try:
        code_list = CodeList.model_validate(data)
    except ValidationError as exc:
        raise _describe(path, exc, data) from None
    if code_list.name != path.stem:
        raise ContractError(f"{path}: field name: {code_list.name!r} must match the file name {path.stem!r}")
    return code_list


def load_contract(path: Path, code_lists: Mapping[str, CodeList]) -> Contract:
    data = _read_yaml(path)
    try:
        contract = Contract.model_validate(data, context={"code_lists": code_lists})
    except ValidationError as exc:
        raise _describe(path, exc, data) from None
    if contract.register != path.stem:
        raise ContractError(f"{path}: field register: {contract.register!r} must match the file name {path.stem!r}")
    return contract


def _check_across_registers(contracts: Mapping[str, Contract], directory: Path) -> None:
    prefixes: dict[str, str] = {}
    for contract in contracts.values():
        path = directory / f"{contract.register}.yaml"
        if contract.prefix in prefixes:
            raise ContractError(
                f"{path}: field prefix: {contract.prefix!r} is already used by register {prefixes[contract.prefix]!r}"
            )
        prefixes[contract.prefix] = contract.register
        for ref in contract.quality.references:
            field = f"{path}: field quality.references[{ref.column}]"
            if ref.register not in contracts:
                raise ContractError(f"{field}: unknown register {ref.register!r}")
            target = contracts[ref.register]
            if ref.to_column not in [v.name for v in target.variables]:
                raise ContractError(f"{field}: register {ref.register!r} has no column {ref.to_column!r}")
            source_kind = contract.variable(ref.column).identifier
            target_kind = target.variable(ref.to_column).identifier
            if source_kind != target_kind:
                raise ContractError(
                    f"{field}: {ref.column!r} ({source_kind}) cannot reference {ref.to_column!r} ({target_kind})"
                )


def _check_no_reference_cycle(contracts: ContractSet) -> None:
    """Refuse registers whose reference checks read each other: neither month could be ingested first."""
    try:
        contracts.ingestion_order
    except CycleError as error:
        cycle = error.args[1]  # [a, b, ..., a]: each register is referenced by the next
        files = ", ".join(str(contracts.file_of(register)) for register in sorted(set(cycle)))
        raise ContractError(
            f"{files}: field quality.references: the registers reference each other in a cycle "
            f"({' -> '.join(reversed(cycle))}, each referencing the next); a month is ingested after the registers it "
            "references, so one of these references must go"
        ) from None


def load_contracts(directory: Path = CONTRACTS_DIR) -> ContractSet:
    """Load every register contract and the shared code lists they reference.

    Cached per process while no file in the folder changes: every asset step asks for
    the contracts, and parsing the classifications is the slowest part of a small step.
    """
    directory = Path(directory).resolve()
    files = sorted(directory.rglob("*.yaml"))
    return _load_contracts(directory, tuple((p, p.stat().st_mtime_ns, p.stat().st_size) for p in files))


@functools.lru_cache(maxsize=4)
def _load_contracts(directory: Path, fingerprint: tuple) -> ContractSet:
    code_lists = {
        path.stem: load_code_list(path) for path in sorted((directory / CODE_LISTS_SUBDIR).glob("*.yaml"))
    }
    paths = [p for p in sorted(directory.glob("*.yaml")) if p.stem != POLICY_NAME]
    if not paths:
        raise ContractError(f"{directory}: no register contracts (*.yaml) found")
    contracts = {path.stem: load_contract(path, code_lists) for path in paths}
    _check_across_registers(contracts, directory)
    contract_set = ContractSet(contracts=contracts, code_lists=code_lists, directory=directory)
    _check_no_reference_cycle(contract_set)
    return contract_set

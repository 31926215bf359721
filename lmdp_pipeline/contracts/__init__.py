"""Data contracts: the registers' data dictionary as typed, validated models."""

from .code_lists import Code, CodeLevel, CodeList
from .loader import ContractError, ContractSet, load_contracts
from .models import (
    NOT_DELIVERED,
    Contract,
    IdentifierKind,
    Level,
    Protection,
    Variable,
    VariableType,
)

__all__ = [
    "NOT_DELIVERED",
    "Code",
    "CodeLevel",
    "CodeList",
    "Contract",
    "ContractError",
    "ContractSet",
    "IdentifierKind",
    "Level",
    "Protection",
    "Variable",
    "VariableType",
    "load_contracts",
]

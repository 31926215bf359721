"""Typed data contracts: one per register, the platform's data dictionary.

The models reject anything the rest of the pipeline could misread: an unknown key, a
protection class that does not exist, a default level that is not a level, a level
that cannot be derived from the variable's type. Granularity, validation suites and the
published dictionary are all generated from these models, so a contract that loads is
a contract every later stage understands.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .code_lists import CodeList

NOT_DELIVERED = "none"
"""The default level of a restricted variable: not delivered unless approved."""


class Protection(StrEnum):
    open = "open"
    aggregated = "aggregated"
    restricted = "restricted"


class IdentifierKind(StrEnum):
    """Pseudonym domains: the same number never links across kinds."""

    person = "person"
    employer = "employer"
    provider = "provider"


class VariableType(StrEnum):
    string = "string"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    month = "month"
    code = "code"
    identifier = "identifier"


class IdentifierFormat(StrEnum):
    """Formats with a check beyond a pattern: a matricule is a birth date, 3 sequence digits, a Luhn and a Verhoeff digit."""

    matricule = "matricule"
    employer_number = "employer_number"
    provider_code = "provider_code"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# "register" is the contract's own word; pydantic only warns that the
# name is also an attribute of its base class.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class Band(_Strict):
    """Numeric bands: a fixed ``width`` from ``origin``, or explicit ``breaks``."""

    width: float | None = Field(default=None, gt=0)
    origin: float = 0
    breaks: list[float] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> "Band":
        if (self.width is None) == (self.breaks is None):
            raise ValueError("a band needs exactly one of 'width' or 'breaks'")
        if self.breaks is not None and (
            len(self.breaks) < 2 or any(b <= a for a, b in zip(self.breaks, self.breaks[1:]))
        ):
            raise ValueError("band 'breaks' must hold at least two strictly increasing numbers")
        return self

    def describe(self) -> str:
        if self.width is not None:
            return f"bands of width {self.width:g} starting at {self.origin:g}"
        return "bands with lower bounds " + ", ".join(f"{b:g}" for b in self.breaks or [])


class Level(_Strict):
    """One granularity a variable can be delivered at.

    The first level of a variable is the finest, as delivered by the source. Each
    coarser level names exactly one derivation from that finest value.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    description: str | None = None
    truncate: Literal["day", "month", "year"] | None = None
    code_level: str | None = None
    band: Band | None = None
    pseudonym: bool = False

    @model_validator(mode="after")
    def _at_most_one_derivation(self) -> "Level":
        rules = [self.truncate is not None, self.code_level is not None, self.band is not None, self.pseudonym]
        if sum(rules) > 1:
            raise ValueError(f"level {self.name!r} names more than one derivation")
        return self

    @property
    def is_as_delivered(self) -> bool:
        return not (self.truncate or self.code_level or self.band or self.pseudonym)

    def derivation(self) -> str:
        if self.pseudonym:
            return "pseudonym under the project's key; the identifier itself is never delivered"
        if self.truncate:
            return f"truncated to the {self.truncate}"
        if self.code_level:
            return f"mapped to level '{self.code_level}' of the code list"
        if self.band:
            return self.band.describe()
        return "as delivered"


class Variable(_Strict):
    name: str = Field(pattern=r"^[a-z]{1,3}_[a-z0-9_]+$")
    title: str
    description: str
    type: VariableType
    format: str
    unit: str | None = None
    codes: CodeList | None = None
    identifier: IdentifierKind | None = None
    identifier_format: IdentifierFormat | None = None
    comments: str | None = None
    source: str
    protection: Protection
    quasi_identifier: bool = False
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    levels: list[Level] = Field(min_length=1)
    default: str

    @field_validator("codes", mode="before")
    @classmethod
    def _resolve_shared_code_list(cls, value: object, info: ValidationInfo) -> object:
        """A string names a shared list in ``data_contracts/code_lists/``."""
        if isinstance(value, str):
            shared = (info.context or {}).get("code_lists", {})
            if value not in shared:
                known = ", ".join(sorted(shared)) or "none loaded"
                raise ValueError(f"unknown code list {value!r} (known: {known})")
            return shared[value]
        return value

    @model_validator(mode="after")
    def _levels_consistent(self) -> "Variable":
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate level names {names}")
        self._check_type_rules()
        for level in self.levels[1:]:
            self._check_derivable(level)
        self._check_protection_default(names)
        return self

    def _check_type_rules(self) -> None:
        is_identifier = self.type is VariableType.identifier
        if is_identifier != (self.identifier is not None):
            raise ValueError("'identifier' (person, employer or provider) is required exactly when type is identifier")
        if is_identifier:
            if len(self.levels) != 1 or not self.levels[0].pseudonym:
                raise ValueError("an identifier has exactly one level, a pseudonym level")
            if self.identifier_format is None:
                raise ValueError("an identifier needs an 'identifier_format'")
        elif self.levels[0].pseudonym:
            raise ValueError("only identifiers can be delivered as a pseudonym")
        if not is_identifier and not self.levels[0].is_as_delivered:
            raise ValueError(f"the first level {self.levels[0].name!r} is the finest and must be as delivered")
        if (self.type is VariableType.code) != (self.codes is not None):
            raise ValueError("'codes' is required exactly when type is code")
        if (self.min is not None or self.max is not None) and self.type not in (
            VariableType.integer,
            VariableType.decimal,
        ):
            raise ValueError("'min' and 'max' apply to integer and decimal variables only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min:g} is above 'max' {self.max:g}")

    def _check_derivable(self, level: Level) -> None:
        if level.is_as_delivered:
            raise ValueError(f"level {level.name!r} is not the finest and names no derivation")
        if level.pseudonym:
            raise ValueError(f"level {level.name!r}: only identifiers can be delivered as a pseudonym")
        if level.truncate and self.type not in (VariableType.date, VariableType.month):
            raise ValueError(f"level {level.name!r}: 'truncate' applies to date and month variables only")
        if level.truncate and self.type is VariableType.month and level.truncate != "year":
            raise ValueError(f"level {level.name!r}: a month variable can only be truncated to the year")
        if level.band and self.type not in (VariableType.integer, VariableType.decimal):
            raise ValueError(f"level {level.name!r}: 'band' applies to integer and decimal variables only")
        if level.code_level:
            if self.codes is None:
                raise ValueError(f"level {level.name!r}: 'code_level' needs a code list")
            if level.code_level not in self.codes.level_names[1:]:
                raise ValueError(
                    f"level {level.name!r}: code_level {level.code_level!r} is not a coarser level of "
                    f"code list {self.codes.name!r} (levels: {self.codes.level_names})"
                )

    def _check_protection_default(self, names: list[str]) -> None:
        if self.default == NOT_DELIVERED:
            if self.protection is not Protection.restricted:
                raise ValueError(f"only a restricted variable has default {NOT_DELIVERED!r}")
            return
        if self.default not in names:
            raise ValueError(f"default level {self.default!r} is not among the levels {names}")
        if self.protection is Protection.restricted:
            raise ValueError(f"a restricted variable is not delivered by default: default must be {NOT_DELIVERED!r}")
        is_finest = self.default == names[0]
        if self.protection is Protection.open and not is_finest:
            raise ValueError(f"an open variable is delivered as is: default must be the finest level {names[0]!r}")
        if self.protection is Protection.aggregated and is_finest:
            raise ValueError("an aggregated variable must default to a level coarser than the finest")

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(f"variable {self.name!r} has no level {name!r} (levels: {[lv.name for lv in self.levels]})")

    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]


class Delivery(_Strict):
    """How the source agency sends the register: a monthly CSV."""

    format: Literal["csv"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: Literal["utf-8"] = "utf-8"
    header: bool = True
    month_column: str


class DirectIdentifier(_Strict):
    """A column the source sends that is dropped at ingestion, before anything is stored."""

    name: str = Field(pattern=r"^[a-z]{1,3}_[a-z0-9_]+$")
    kind: Literal["name", "address", "postcode", "phone", "email", "free_text"]
    description: str


class Reference(_Strict):
    """Referential integrity: every value of ``column`` exists in another register."""

    column: str
    register: str
    to_column: str
    same_month: bool = True


class VolumeRule(_Strict):
    """Month-to-month change in row count beyond which a delivery is flagged."""

    max_change: float = Field(gt=0)
    severity: Literal["warn", "error"] = "warn"


class Quality(_Strict):
    references: list[Reference] = Field(default_factory=list)
    volume: VolumeRule | None = None
    min_rows: int = Field(default=1, ge=0)
    """Fewest data rows a delivery may have; 0 for registers of rare events."""


class Contract(_Strict):
    register: str = Field(pattern=r"^[a-z][a-z_]*$")
    prefix: str = Field(pattern=r"^[a-z]{1,3}_$")
    title: str
    description: str
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    source: str
    grain: str
    protection: Literal["open", "restricted"]
    delivery: Delivery
    key: list[str] = Field(min_length=1)
    direct_identifiers: list[DirectIdentifier] = Field(default_factory=list)
    variables: list[Variable] = Field(min_length=1)
    quality: Quality = Field(default_factory=Quality)

    @model_validator(mode="after")
    def _columns_consistent(self) -> "Contract":
        names = [v.name for v in self.variables]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate variables {sorted(duplicates)}")
        dropped = [d.name for d in self.direct_identifiers]
        clash = set(dropped) & set(names)
        if clash:
            raise ValueError(f"{sorted(clash)} are both variables and direct identifiers")
        for column in names + dropped:
            if not column.startswith(self.prefix):
                raise ValueError(f"column {column!r} does not start with the register prefix {self.prefix!r}")
        for column in self.key:
            if column not in names:
                raise ValueError(f"key column {column!r} is not a variable")
        if self.delivery.month_column not in names:
            raise ValueError(f"month column {self.delivery.month_column!r} is not a variable")
        month = self.variable(self.delivery.month_column)
        if month.type is not VariableType.month:
            raise ValueError(f"month column {month.name!r} must have type month")
        for ref in self.quality.references:
            if ref.column not in names:
                raise ValueError(f"reference column {ref.column!r} is not a variable")
        return self

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(f"register {self.register!r} has no variable {name!r}")

    @cached_property
    def referenced_registers(self) -> list[str]:
        """The other registers this one's reference checks read: their month is ingested before this one's."""
        return sorted({ref.register for ref in self.quality.references} - {self.register})

    @cached_property
    def delivered_columns(self) -> list[str]:
        """Every column of a delivery file, in file order: variables then dropped identifiers."""
        return [v.name for v in self.variables] + [d.name for d in self.direct_identifiers]

    @property
    def identifiers(self) -> list[Variable]:
        return [v for v in self.variables if v.identifier is not None]

    @property
    def has_persons(self) -> bool:
        """Whether rows are about persons (every register but enterprises)."""
        return any(v.identifier is IdentifierKind.person for v in self.identifiers)

    @property
    def person_identifier(self) -> Variable:
        """The column that names the person a row is about (the register's first person identifier)."""
        for variable in self.identifiers:
            if variable.identifier is IdentifierKind.person:
                return variable
        raise KeyError(f"register {self.register!r} has no person identifier")

"""Approval specs: what a project was granted, parsed strictly into typed models.

The request-management application exports one YAML file per project. The file is read
with a loader that refuses what YAML allows but an approval never needs: anchors and
aliases (a 1 KB file of nested aliases expands to gigabytes), duplicate keys (a file
showing ``status: revoked`` twice must not quietly read as the last one), and files
beyond ``MAX_APPROVAL_BYTES``. Every message is bounded, so no input can turn into a
megabyte of error text in a log.

The models check the shape of each field; ``rules`` checks the approval against the
contracts and the warehouse (need-to-know, levels, period).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from ..paths import InvalidProjectId, project_id
from ..period import MONTH_PATTERN

MAX_APPROVAL_BYTES = 64 * 1024
"""The largest approval file read; real ones are a few kilobytes."""
MAX_PROBLEMS = 40
MAX_PROBLEM_CHARS = 300
LATEST = "latest"
"""``period.to: latest``: a rolling period, up to the newest month in the warehouse."""
JUSTIFICATION_WORDS = 3


def bounded(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """``text`` cut to ``limit`` characters: no input makes a message unbounded."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_problems(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS lines of at most MAX_PROBLEM_CHARS characters, and how many more there were."""
    kept = [bounded(p) for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        kept.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
    return kept


class ApprovalError(ValueError):
    """An approval that cannot be built; one line per problem, each naming file and field."""

    def __init__(self, problems: list[str]):
        kept = bounded_problems(problems)
        self.problems = kept
        super().__init__("\n".join(kept))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# "register" is the spec's own word; pydantic only warns that BaseModel has the name too.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


def _justification(text: str) -> str:
    """A reason a reviewer can weigh: non-blank text of at least three words."""
    words = re.findall(r"\w+", text)
    if len(words) < JUSTIFICATION_WORDS:
        raise ValueError(f"a justification is a sentence of at least {JUSTIFICATION_WORDS} words saying why the project needs it")
    return text.strip()


Justification = Annotated[str, AfterValidator(_justification)]
Account = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{1,63}$")]
AgeRecipient = Annotated[str, StringConstraints(pattern=r"^age1[02-9ac-hj-np-z]{58}$")]
Scalar = str | bool | int | float | dt.date


class Condition(_Strict):
    """One operator on one variable: in, not_in, between (inclusive) or eq; values are scalars."""

    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(default=None, min_length=1)
    between: tuple[Scalar, Scalar] | None = None
    eq: Scalar | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> "Condition":
        given = [name for name in ("in_", "not_in", "between", "eq") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a condition has exactly one operator: in, not_in, between or eq")
        return self

    @property
    def operator(self) -> str:
        return next(name for name in ("in_", "not_in", "between", "eq") if getattr(self, name) is not None).rstrip("_")

    @property
    def values(self) -> list[Any]:
        value = getattr(self, self.operator if self.operator != "in" else "in_")
        return list(value) if isinstance(value, (list, tuple)) else [value]


class PopulationBlock(_Strict):
    register: str
    where: dict[str, Condition] = Field(min_length=1)


class PeriodSpec(_Strict):
    """The months granted: ``from`` a month ``to`` a month, or ``to: latest`` for a rolling period."""

    from_: str = Field(alias="from", pattern=MONTH_PATTERN.pattern)
    to: str = Field(pattern=rf"^([0-9]{{4}}-(0[1-9]|1[0-2])|{LATEST})$")

    @model_validator(mode="after")
    def _ordered(self) -> "PeriodSpec":
        if self.to != LATEST and self.to < self.from_:
            raise ValueError(f"the period ends ({self.to}) before it starts ({self.from_})")
        return self

    @property
    def rolling(self) -> bool:
        return self.to == LATEST


class ExternalColumn(_Strict):
    type: Literal["integer", "decimal", "string", "date"]
    values: list[Scalar] | None = Field(default=None, min_length=1)
    quasi_identifier: bool = True
    """Always true: the researchers hold the file, so they know every value of it for each respondent and can find
    the respondent's row by it (and with it the pseudonym and every register row). Every column counts in the risk
    measures; ``true`` may be written, ``false`` is refused rather than let a declaration hide a key."""

    @field_validator("quasi_identifier")
    @classmethod
    def _always_known(cls, value: bool) -> bool:
        if not value:
            raise ValueError("every column of the researchers' own file is a quasi-identifier: they know its value for each "
                             "respondent and could find the respondent's row by it; remove 'quasi_identifier: false'")
        return value

    @model_validator(mode="after")
    def _values_of_the_type(self) -> "ExternalColumn":
        """Declared values are codes of the column's type; text codes carry no spaces (labels go in the docs)."""
        parse = {"integer": int, "decimal": float, "date": dt.date.fromisoformat, "string": str}[self.type]
        for value in self.values or []:
            try:
                parse(str(value))
            except ValueError:
                raise ValueError(f"value {bounded(repr(value), 40)} is not of type {self.type}") from None
            if self.type == "string" and (not str(value) or any(c.isspace() for c in str(value))):
                raise ValueError(f"value {bounded(repr(value), 40)}: text codes must be non-empty and without spaces")
        return self


RESERVED_PREFIX = "lmdp_"
"""Column names the platform uses for its own bookkeeping; never a researcher's column."""


class ExternalDataset(_Strict):
    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.(csv|parquet)$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The checksum of the file the reviewers approved. Its rows are the researchers' choice of persons, so a new file
    is reviewed like a new approval: re-delivering files freely let the researchers compare builds (who a new row
    linked, which cell changed) and find the persons they added."""
    id_column: str = Field(min_length=1, max_length=64)
    columns: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")], ExternalColumn] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_apart(self) -> "ExternalDataset":
        if self.id_column in self.columns:
            raise ValueError(f"the id column {self.id_column!r} is not a declared column: it is replaced by person_id")
        reserved = sorted(c for c in [*self.columns, self.id_column] if c.lower().startswith(RESERVED_PREFIX) or c.lower() == "person_id")
        if reserved:
            raise ValueError(f"column names {reserved} are reserved by the platform (person_id, {RESERVED_PREFIX}*): rename them")
        return self


Share = Annotated[float, Field(gt=0, le=1, strict=True)]
"""A figure as a number between 0 and 1: ``true`` or ``"8%"`` is refused, not read as 100% or parsed."""


class AcceptedFigures(_Strict):
    """The worst figures an acceptance covers, one per rule of the risk policy, as shares (0.08 is 8%).

    Reviewers accept figures they have read in ``lmdp approvals check``, not whatever a
    later build measures: a rolling period, a re-delivered month or a replaced external
    file that raises a figure beyond its ceiling is refused like an unaccepted risk. A
    rule without a ceiling is accepted only within the policy.
    """

    persons_at_risk: Share | None = None
    """Share of the extract's persons at risk in some month."""
    reidentification_rate: Share | None = None
    """Expected re-identifications per person, in the worst table and month."""
    respondents_at_risk: Share | None = None
    """Share of the persons of the researchers' own files at risk in some month."""

    @model_validator(mode="after")
    def _names_a_figure(self) -> "AcceptedFigures":
        if self.persons_at_risk is None and self.reidentification_rate is None and self.respondents_at_risk is None:
            raise ValueError("name the worst figure accepted for at least one rule: persons_at_risk, reidentification_rate, "
                             "respondents_at_risk")
        return self


class RiskAcceptance(_Strict):
    """A re-identification risk above the platform's policy, accepted up to stated figures with the measures that compensate it."""

    justification: Justification
    compensating_measures: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)
    accepted_by: list[Account] = Field(min_length=1)
    up_to: AcceptedFigures
    output_threshold: int | None = Field(default=None, ge=2)
    """Persons per cell that the project's outputs need: a compensating measure the platform enforces
    (output checking applies it when it is above the policy's threshold), where the others are commitments."""


class Approval(_Strict):
    project: str
    title: str = Field(min_length=1)
    institution: str = Field(min_length=1)
    status: Literal["approved", "revoked"]
    approved_on: dt.date
    expires_on: dt.date
    approved_by: list[Account] = Field(min_length=2)
    researchers: list[Account] = Field(min_length=1)
    recipients: list[AgeRecipient] = Field(default_factory=list)
    period: PeriodSpec
    population: list[PopulationBlock] = Field(min_length=1)
    variables: dict[str, dict[str, str]] = Field(min_length=1)
    justifications: dict[str, Justification] = Field(default_factory=dict)
    risk_acceptance: RiskAcceptance | None = None
    external: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")], ExternalDataset] = Field(default_factory=dict)

    @field_validator("project")
    @classmethod
    def _project_id(cls, value: str) -> str:
        try:
            return project_id(value)
        except InvalidProjectId as error:
            raise ValueError(str(error)) from None

    @field_validator("period", mode="before")
    @classmethod
    def _months_as_text(cls, value: Any) -> Any:
        """YAML reads ``2022-01`` as text but ``2022-01-01`` as a date: accept neither silently."""
        if isinstance(value, dict):
            return {k: (v if isinstance(v, str) else str(v)) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _people(self) -> "Approval":
        """Peer validation: two distinct reviewers, none of whom is a researcher of the project."""
        reviewers = {r.casefold() for r in self.approved_by}
        if len(reviewers) < 2:
            raise ValueError("approved_by: an approval needs at least two distinct reviewers")
        judges_themselves = sorted(reviewers & {r.casefold() for r in self.researchers})
        if judges_themselves:
            raise ValueError(f"approved_by: {', '.join(judges_themselves)} cannot approve a project they research")
        if len({r.casefold() for r in self.researchers}) != len(self.researchers):
            raise ValueError("researchers: an account is listed twice")
        if self.expires_on < self.approved_on:
            raise ValueError(f"expires_on {self.expires_on} is before approved_on {self.approved_on}")
        return self


def _field(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(p.rstrip("_") if p in ("in_", "from_") else p for p in parts) or "(top level)"


class _ApprovalLoader(yaml.SafeLoader):
    """YAML without anchors, aliases or duplicate keys: an approval is plain data, written once per field."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "anchors (&) and aliases (*) are not allowed in an approval: write each value out", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {bounded(repr(key), 60)} appears twice in one mapping; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_APPROVAL_BYTES:
            raise ApprovalError([f"{path}: the file is {size:,} bytes; an approval is at most {MAX_APPROVAL_BYTES:,}"])
        text = path.read_bytes().decode("utf-8")
        return yaml.load(text, Loader=_ApprovalLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ApprovalError([f"{path}: not a valid approval file: {where}{bounded(error.problem or error.context or 'YAML error', 120)}"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ApprovalError([f"{path}: cannot be read as UTF-8 YAML ({error.__class__.__name__})"]) from None


def parse_approval(path: Path) -> Approval:
    """Read and type one approval file; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise ApprovalError([f"{path}: the file does not exist"])
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ApprovalError([f"{path}: expected a mapping at the top level"])
    try:
        approval = Approval.model_validate(data)
    except ValidationError as error:
        raise ApprovalError([
            f"{path}: field {_field(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors(include_url=False)
        ]) from None
    if path.stem != approval.project:
        raise ApprovalError([f"{path}: field project: {approval.project!r} must match the file name {path.stem!r}"])
    return approval

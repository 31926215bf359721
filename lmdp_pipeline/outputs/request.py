"""Output requests and reviews: what a researcher asks to take out, and what an output checker decided.

A request (``outputs/<project>/requests/<request>.yaml``) names its requester and asks
for tables that the platform computes itself from the project's extract, and for
attached files it cannot recompute (figures, model results), each with what the
researcher declares about it. A review (``outputs/<project>/reviews/<request>.yaml``)
is an output checker's decision on a request sent to review; it names the sha256 of the
request it judged, so editing a request after its review voids the review.

Both are read as strictly as approvals (no anchors, aliases or duplicate keys, a size
limit) and typed here; their names are checked against the extract in ``extract``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ..paths import InvalidProjectId, InvalidRequestId, project_id, request_id
from ..projects.approval import Account, Condition, Justification, _ApprovalLoader, bounded, bounded_problems

MAX_REQUEST_BYTES = 64 * 1024
"""The largest request or review file read; real ones are a few kilobytes."""

COUNT_STATISTICS = ("count", "share")
"""Statistics of persons: the number of persons in a cell, or that number as a percentage of the table's."""
MAGNITUDE_STATISTICS = ("sum", "mean", "median")
"""Statistics of a value variable over the rows of a cell."""
DOMINANCE_STATISTICS = ("sum", "mean")
"""Statistics a few large contributors can dominate: (n, k) dominance and the p-percent rule apply."""

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
TableName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,60}(\.[A-Za-z0-9]{1,10})+$")]
Scalar = str | bool | int | float | dt.date


class OutputRequestError(ValueError):
    """A request (or review) that cannot be checked; one line per problem, each naming the file and the field."""

    def __init__(self, problems: list[str]):
        self.problems = bounded_problems(problems)
        super().__init__("\n".join(self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TableSpec(_Strict):
    """One table: counts or a statistic of a value, by one row variable and at most one column variable."""

    from_: Name = Field(alias="from")
    with_individuals: bool = False
    """Join ``individuals`` on person and month (on person and the person's latest month for tables without months)."""
    rows: Name
    columns: Name | None = None
    statistic: Literal["count", "sum", "mean", "median", "share"]
    value: Name | None = None
    filter: dict[Name, Condition] | None = Field(default=None, min_length=1)
    structural_zeros: list[dict[Name, Scalar]] = Field(default_factory=list)
    """Cells empty by definition (men on maternity leave): published as 0 instead of suppressed."""

    @model_validator(mode="after")
    def _consistent(self) -> "TableSpec":
        if self.statistic in MAGNITUDE_STATISTICS and self.value is None:
            raise ValueError(f"statistic {self.statistic} needs a value variable (value: ...)")
        if self.statistic in COUNT_STATISTICS and self.value is not None:
            raise ValueError(f"statistic {self.statistic} counts persons: remove value ({self.value})")
        if self.columns is not None and self.columns == self.rows:
            raise ValueError(f"rows and columns are both {self.rows}")
        if self.from_ == "individuals" and self.with_individuals:
            raise ValueError("a table from individuals cannot be joined to individuals again")
        for position, zero in enumerate(self.structural_zeros):
            grouping = {self.rows, self.columns} - {None}
            if not zero or set(zero) - grouping:
                raise ValueError(f"structural_zeros[{position}] names a cell by its row and column values "
                                 f"({', '.join(sorted(grouping))}), nothing else")
        return self

    @property
    def grouping(self) -> list[str]:
        return [self.rows] + ([self.columns] if self.columns else [])


class Attachment(_Strict):
    """A file the platform cannot recompute; the researcher's declaration goes to the output checker."""

    kind: Literal["figure", "model"]
    description: Justification
    residual_dof: int | None = Field(default=None, ge=0)
    """Models: the residual degrees of freedom of the fitted model, as the researcher declares them."""

    @model_validator(mode="after")
    def _declared(self) -> "Attachment":
        if self.kind == "model" and self.residual_dof is None:
            raise ValueError("a model declares its residual degrees of freedom (residual_dof: ...)")
        if self.kind == "figure" and self.residual_dof is not None:
            raise ValueError("residual_dof is declared for models only")
        return self


class OutputRequest(_Strict):
    project: str
    requester: Account
    title: str = Field(min_length=1, max_length=200)
    tables: dict[TableName, TableSpec] = Field(default_factory=dict)
    attachments: dict[FileName, Attachment] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> "OutputRequest":
        try:
            project_id(self.project)
        except InvalidProjectId as error:
            raise ValueError(f"project: {error}") from None
        if not self.tables and not self.attachments:
            raise ValueError("a request asks for at least one table or attached file")
        return self


class Review(_Strict):
    """An output checker's decision on one version of a request."""

    request_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reviewer: Account
    decision: Literal["release", "refuse"]
    reason: Justification


def _field(loc) -> str:
    return ".".join(str(p).rstrip("_") for p in loc if not str(p).startswith("function-")) or "(top level)"


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    """A small YAML mapping read without anchors, aliases or duplicate keys; OutputRequestError names the file."""
    try:
        size = path.stat().st_size
        if size > MAX_REQUEST_BYTES:
            raise OutputRequestError([f"{path}: the file is {size:,} bytes; a {what} is at most {MAX_REQUEST_BYTES:,}"])
        data = yaml.load(path.read_bytes().decode("utf-8"), Loader=_ApprovalLoader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise OutputRequestError([f"{path}: the file does not exist"]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = bounded(error.problem or error.context or "YAML error", 120).replace("an approval", f"a {what}")
        raise OutputRequestError([f"{path}: not a valid {what} file: {where}{problem}"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise OutputRequestError([f"{path}: cannot be read as UTF-8 YAML ({error.__class__.__name__})"]) from None
    if not isinstance(data, dict):
        raise OutputRequestError([f"{path}: expected a mapping at the top level"])
    return data


def _typed(model, path: Path, what: str):
    data = read_yaml(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise OutputRequestError([
            f"{path}: field {_field(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors(include_url=False)
        ]) from None


def request_names(path: Path) -> tuple[str, str]:
    """(project, request) from a request file's place: ``outputs/<project>/requests/<request>.yaml``."""
    path = Path(path)
    try:
        if path.suffix != ".yaml" or path.parent.name != "requests":
            raise InvalidRequestId("not in a requests folder")
        return project_id(path.parent.parent.name), request_id(path.stem)
    except (InvalidProjectId, InvalidRequestId):
        raise OutputRequestError([
            f"{path}: a request file is outputs/<project>/requests/<request>.yaml under LMDP_HOME "
            "(request: letters, digits, - and _)"
        ]) from None


def parse_request(path: Path) -> OutputRequest:
    """Read and type one request file; its project must be the folder it sits in."""
    project, _ = request_names(path)
    request = _typed(OutputRequest, Path(path), "request")
    if request.project != project:
        raise OutputRequestError([f"{path}: field project: {request.project!r} must be the project whose folder holds "
                                  f"the request ({project!r})"])
    return request


def parse_review(path: Path) -> Review:
    return _typed(Review, Path(path), "review")

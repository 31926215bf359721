"""Hierarchical code lists: the classifications variables are coded in.

A code list is a chain of levels, finest first. Every code of a level except the
coarsest names its ``parent`` in the next coarser level, so any coarser level of a
variable (commune to canton, NACE class to section, country to citizenship group) is a
lookup, never code written per variable.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    """Base for every contract model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Code(_Strict):
    code: str = Field(min_length=1)
    label: str = Field(min_length=1)
    parent: str | None = None


class CodeLevel(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str | None = None
    codes: list[Code] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_unique(self) -> "CodeLevel":
        seen: set[str] = set()
        for code in self.codes:
            if code.code in seen:
                raise ValueError(f"duplicate code {code.code!r} in level {self.name!r}")
            seen.add(code.code)
        return self

    @cached_property
    def labels(self) -> dict[str, str]:
        return {c.code: c.label for c in self.codes}


class CodeList(_Strict):
    """A classification with one or more levels, finest first."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    source: str | None = None
    description: str | None = None
    levels: list[CodeLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def _hierarchy_consistent(self) -> "CodeList":
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate level name in {names}")
        for finer, coarser in zip(self.levels, self.levels[1:]):
            known = coarser.labels
            for code in finer.codes:
                if code.parent is None:
                    raise ValueError(
                        f"code {code.code!r} of level {finer.name!r} has no parent in level {coarser.name!r}"
                    )
                if code.parent not in known:
                    raise ValueError(
                        f"code {code.code!r} of level {finer.name!r} maps to {code.parent!r}, "
                        f"which is not a code of level {coarser.name!r}"
                    )
        for code in self.levels[-1].codes:
            if code.parent is not None:
                raise ValueError(
                    f"code {code.code!r} of the coarsest level {self.levels[-1].name!r} cannot have a parent"
                )
        return self

    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]

    def level(self, name: str) -> CodeLevel:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(f"code list {self.name!r} has no level {name!r} (levels: {self.level_names})")

    @property
    def finest(self) -> CodeLevel:
        return self.levels[0]

    def mapping(self, to_level: str) -> dict[str, str]:
        """Finest code -> code at ``to_level``, following parents up the chain."""
        target = self.level_names.index(self.level(to_level).name)
        current = {c.code: c.code for c in self.finest.codes}
        for finer in self.levels[:target]:
            parents = {c.code: c.parent for c in finer.codes}
            current = {code: parents[at] for code, at in current.items()}
        return current

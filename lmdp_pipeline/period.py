"""A run of consecutive months, the unit every delivery and approval is dated in."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> np.datetime64:
    if not MONTH_PATTERN.match(text):
        raise ValueError(f"{text!r} is not a month in the form YYYY-MM")
    return np.datetime64(text, "M")


@dataclass(frozen=True)
class Period:
    first: np.datetime64
    last: np.datetime64

    @classmethod
    def parse(cls, text: str) -> "Period":
        """``2024-01:2024-12`` (inclusive) or a single month ``2024-03``."""
        first, _, last = text.partition(":")
        period = cls(parse_month(first), parse_month(last or first))
        if period.last < period.first:
            raise ValueError(f"period {text!r} ends before it starts")
        return period

    def __len__(self) -> int:
        return int((self.last - self.first).astype(int)) + 1

    @property
    def months(self) -> list[str]:
        return [str(self.first + i) for i in range(len(self))]

    @property
    def month_starts(self) -> np.ndarray:
        return (self.first + np.arange(len(self))).astype("datetime64[D]")

    @property
    def month_ends(self) -> np.ndarray:
        return (self.first + np.arange(1, len(self) + 1)).astype("datetime64[D]") - 1

    @property
    def start(self) -> np.datetime64:
        return self.first.astype("datetime64[D]")

    @property
    def end(self) -> np.datetime64:
        return (self.last + 1).astype("datetime64[D]") - 1

    def __str__(self) -> str:
        return f"{self.first}:{self.last}"

"""Variable names and label texts that fit each format's limits, without collisions.

Extract names are contract names (``i_citizenship``) or the researchers' declared
column names (up to 64 characters, upper case allowed). Stata takes 32 characters and
tells case apart; SPSS takes 64 bytes, ignores case, and also needs an 8-byte short
name per variable. Each format has words a variable cannot be called. A name that does
not fit is cut, and a clash is resolved with a ``_2``, ``_3``... suffix, in column
order, so the same columns always get the same names; the codebook lists every name
that differs from the extract's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

STATA_RESERVED = frozenset(
    "_all _b byte _coef _cons double float if in int long _n _N _pi _pred _rc _skip strL using with".split()
) | {f"str{n}" for n in range(1, 2046)}
SPSS_RESERVED = frozenset("ALL AND BY EQ GE GT LE LT NE NOT OR TO WITH".split())


@dataclass(frozen=True)
class NameRule:
    limit: int  # characters (Stata) or bytes (SPSS); names here are ASCII
    reserved: frozenset[str]
    ignore_case: bool

    def _key(self, name: str) -> str:
        return name.upper() if self.ignore_case else name

    def _is_reserved(self, name: str) -> bool:
        return self._key(name) in {self._key(r) for r in self.reserved}

    def names(self, columns: list[str]) -> dict[str, str]:
        """Extract name -> a name valid in the format, unique (in its sense of unique), in column order."""
        taken: set[str] = set()
        chosen = {}
        for column in columns:
            name = column[: self.limit]
            if self._is_reserved(name):
                name = name[: self.limit - 1] + "_"
            suffix = 1
            while self._key(name) in taken:
                suffix += 1
                name = f"{column[: self.limit - len(str(suffix)) - 1]}_{suffix}"
            taken.add(self._key(name))
            chosen[column] = name
        return chosen


STATA_NAMES = NameRule(32, STATA_RESERVED, ignore_case=False)
SPSS_NAMES = NameRule(64, SPSS_RESERVED, ignore_case=True)


def spss_short_names(names: list[str]) -> list[str]:
    """SPSS's 8-byte, upper-case, unique short names (the long names are given beside them)."""
    taken: set[str] = set()
    spare = (f"V{n}" for n in itertools.count(1))
    shorts = []
    for name in names:
        short = name.upper()[:8]
        while short in taken or short in SPSS_RESERVED:
            short = next(spare)
        taken.add(short)
        shorts.append(short)
    return shorts


def fit(text: str, max_bytes: int, max_chars: int | None = None) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (and ``max_chars`` characters), never inside a character,
    ending with an ellipsis when cut (the codebook has every label in full)."""
    max_chars = max_chars or max_bytes
    if len(text) <= max_chars and len(text.encode("utf-8")) <= max_bytes:
        return text
    cut = text[: max_chars - 1]
    while len(cut.encode("utf-8")) > max_bytes - 3:
        cut = cut[:-1]
    return cut + "\N{HORIZONTAL ELLIPSIS}"

"""Identifier formats and check digits, in DuckDB SQL, for millions of values at once.

A monthly delivery holds millions of matricules and employer numbers; checking them
one by one in Python (python-stdnum, ~15 us each) would cost more than the whole
ingestion. So the Luhn and Verhoeff digits are compiled here into plain SQL macros
(integer arithmetic and lookups in constant lists, unrolled over the positions) that
DuckDB runs vectorised on every core. python-stdnum stays the reference: ``matricule.validate``
uses it for single values, and the tests hold these macros equal to it.

``lmdp_<format>_ok(n)`` takes the number as a BIGINT and is only meaningful for values
that have the format (``identifier_checks`` gives both tests).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from .contracts.models import IdentifierFormat

LENGTHS = {
    IdentifierFormat.matricule: 13,
    IdentifierFormat.employer_number: 11,
    IdentifierFormat.provider_code: 8,
}
MATRICULE_PAYLOAD = 11

_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]
_LUHN_DOUBLED = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]


def format_pattern(fmt: IdentifierFormat) -> str:
    return f"[0-9]{{{LENGTHS[fmt]}}}"


def _digit(k: int) -> str:
    """Digit ``k`` places from the right of the BIGINT ``n`` (integer arithmetic beats substrings 3x)."""
    return f"((n // {10 ** k}) % 10)"


def luhn_digit_sql(width: int) -> str:
    """SQL for the Luhn check digit of a ``width``-digit payload ``n`` (BIGINT)."""
    terms = [f"{_LUHN_DOUBLED}[{_digit(k)} + 1]" if k % 2 == 0 else _digit(k) for k in range(width)]
    return f"((10 - ({' + '.join(terms)}) % 10) % 10)"


def verhoeff_digit_sql(width: int) -> str:
    """SQL for the Verhoeff check digit of a ``width``-digit payload ``n`` (BIGINT)."""
    flat = [value for row in _VERHOEFF_D for value in row]
    state = "0"
    for k in range(width):
        state = f"{flat}[({state}) * 10 + {_VERHOEFF_P[(k + 1) % 8]}[{_digit(k)} + 1] + 1]"
    return f"{_VERHOEFF_INV}[({state}) + 1]"


def _matricule_ok_sql() -> str:
    """A 13-digit matricule ``n`` (BIGINT): birth-date part (00 = unknown) and both check digits."""
    year, month, day = "(n // 1000000000)", "((n // 10000000) % 100)", "((n // 100000) % 100)"
    leap = f"({year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    days = f"[31, CASE WHEN {leap} THEN 29 ELSE 28 END, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][{month}]"
    date_ok = f"({year} >= 1850 AND CASE WHEN {month} = 0 THEN {day} = 0 WHEN {month} > 12 THEN false ELSE {day} <= {days} END)"
    return f"({date_ok} AND n % 100 = lmdp_luhn_11(n // 100) * 10 + lmdp_verhoeff_11(n // 100))"


MACROS = {  # name -> (parameter, body), in dependency order
    "lmdp_luhn_11": ("n", luhn_digit_sql(MATRICULE_PAYLOAD)),
    "lmdp_verhoeff_11": ("n", verhoeff_digit_sql(MATRICULE_PAYLOAD)),
    "lmdp_luhn_10": ("n", luhn_digit_sql(LENGTHS[IdentifierFormat.employer_number] - 1)),
    "lmdp_matricule_ok": ("n", _matricule_ok_sql()),
    "lmdp_employer_number_ok": ("n", "n % 10 = lmdp_luhn_10(n // 10)"),
    "lmdp_provider_code_ok": ("n", "true"),  # provider codes carry no check digit
}


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the identifier macros on a connection (in dependency order), as temporary macros.

    Temporary, so that they never become part of a database file the connection writes
    (an extract checking external matricules would otherwise ship them).
    """
    for name, (parameter, body) in MACROS.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {name}({parameter}) AS {body}")


def identifier_checks(text: str, fmt: IdentifierFormat) -> tuple[str, str]:
    """SQL for (well formed, check digits hold) of the text expression ``text``.

    The check is only meaningful where the value is well formed. Both are plain
    expressions, never CASE branches: DuckDB shares the repeated ``::BIGINT`` cast
    between them only outside CASE, which makes a threefold difference here.
    """
    well_formed = f"regexp_full_match({text}, '{format_pattern(fmt)}')"
    return well_formed, f"lmdp_{fmt}_ok(TRY_CAST({text} AS BIGINT))"


def with_check_digits(payloads: np.ndarray, fmt: IdentifierFormat) -> np.ndarray:
    """Complete numeric payloads (zero-padded) with their check digits; used to make synthetic data."""
    width = LENGTHS[fmt] - (2 if fmt is IdentifierFormat.matricule else 1)
    digits = "lmdp_luhn_11(n) || lmdp_verhoeff_11(n)" if fmt is IdentifierFormat.matricule else "lmdp_luhn_10(n)"
    con = duckdb.connect()
    try:
        install_macros(con)
        con.register("payloads", pa.table({"p": pa.array(np.asarray(payloads, dtype=np.int64))}))
        numbers = con.execute(
            f"SELECT lpad(n::VARCHAR, {width}, '0') || {digits} AS number FROM (SELECT p AS n FROM payloads)"
        ).fetchnumpy()["number"]
        return np.asarray(numbers, dtype=str)
    finally:
        con.close()

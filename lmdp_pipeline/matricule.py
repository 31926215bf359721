"""The Luxembourg national identification number (matricule).

13 digits: birth date YYYYMMDD, 3 sequence digits, then a Luhn check digit and a
Verhoeff check digit, each computed over the first 11 digits. 00 as month or day means
that part of the birth date is unknown (a day in an unknown month is not a date, so a
00 month needs a 00 day).

Single values are checked with python-stdnum's ``luhn`` and ``verhoeff``. Millions of
numbers (generating or validating a monthly delivery) go through the NumPy twin
``check_digits_bulk``, which the tests hold equal to stdnum on random samples.
"""

from __future__ import annotations

import calendar

import numpy as np
from stdnum import luhn, verhoeff

LENGTH = 13
PAYLOAD_LENGTH = 11


class InvalidMatricule(ValueError):
    """Why a matricule is not valid. Never carries the number itself: messages end up in logs."""


def check_digits(payload: str) -> str:
    """The two check digits (Luhn, then Verhoeff) for an 11-digit payload."""
    if len(payload) != PAYLOAD_LENGTH or not payload.isdigit():
        raise InvalidMatricule(f"a matricule payload is {PAYLOAD_LENGTH} digits")
    return luhn.calc_check_digit(payload) + verhoeff.calc_check_digit(payload)


def _check_birth_date(year: int, month: int, day: int) -> None:
    if month == 0:
        if day != 0:
            raise InvalidMatricule("birth date part has an unknown month (00) but a known day")
        return
    if month > 12:
        raise InvalidMatricule("birth date part has a month above 12")
    if day > calendar.monthrange(year, month)[1]:
        raise InvalidMatricule("birth date part has a day that does not exist in its month")


def validate(value: str) -> str:
    """Return the matricule if valid; raise ``InvalidMatricule`` saying which rule failed."""
    if not isinstance(value, str):
        raise InvalidMatricule(f"a matricule is text of {LENGTH} digits, not {type(value).__name__}")
    if len(value) != LENGTH:
        raise InvalidMatricule(f"a matricule has {LENGTH} digits, this value has {len(value)} characters")
    if not value.isascii() or not value.isdigit():
        raise InvalidMatricule("a matricule contains digits only")
    year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
    if year < 1850:
        raise InvalidMatricule("birth year part is before 1850")
    _check_birth_date(year, month, day)
    expected = check_digits(value[:PAYLOAD_LENGTH])
    if value[11] != expected[0]:
        raise InvalidMatricule("Luhn check digit (12th digit) does not match")
    if value[12] != expected[1]:
        raise InvalidMatricule("Verhoeff check digit (13th digit) does not match")
    return value


def is_valid(value: str) -> bool:
    try:
        validate(value)
    except InvalidMatricule:
        return False
    return True


# Verhoeff's dihedral-group tables (the same constants as stdnum.verhoeff).
_VERHOEFF_D = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ],
    dtype=np.uint8,
)
_VERHOEFF_P = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ],
    dtype=np.uint8,
)
_VERHOEFF_INV = np.array([0, 4, 3, 2, 1, 5, 6, 7, 8, 9], dtype=np.uint8)
_LUHN_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)


def luhn_bulk(digits: np.ndarray) -> np.ndarray:
    """Luhn check digit of every row of an (n, width) digit array."""
    digits = _as_digit_matrix(digits)
    total = np.zeros(len(digits), dtype=np.uint32)
    for position_from_right in range(digits.shape[1]):
        column = digits[:, -1 - position_from_right]
        total += _LUHN_DOUBLED[column] if position_from_right % 2 == 0 else column
    return ((10 - total % 10) % 10).astype(np.uint8)


def verhoeff_bulk(digits: np.ndarray) -> np.ndarray:
    """Verhoeff check digit of every row of an (n, width) digit array."""
    digits = _as_digit_matrix(digits)
    state = np.zeros(len(digits), dtype=np.uint8)
    for position_from_right in range(digits.shape[1]):
        column = digits[:, -1 - position_from_right]
        state = _VERHOEFF_D[state, _VERHOEFF_P[(position_from_right + 1) % 8, column]]
    return _VERHOEFF_INV[state]


def _as_digit_matrix(digits: np.ndarray) -> np.ndarray:
    matrix = np.asarray(digits, dtype=np.uint8)
    if matrix.ndim != 2 or matrix.size and matrix.max() > 9:
        raise ValueError(f"expected an (n, width) array of digits 0-9, got shape {matrix.shape}")
    return matrix


def digit_matrix(numbers: np.ndarray, width: int) -> np.ndarray:
    """Split non-negative integers into an (n, width) array of decimal digits, zero-padded."""
    values = np.asarray(numbers, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10).astype(np.uint8)


def check_digits_bulk(payloads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Luhn and Verhoeff check digits for many 11-digit payloads at once.

    Equal to ``check_digits`` digit for digit; the loops run over the 11 positions,
    never over the rows.
    """
    matrix = _as_digit_matrix(payloads)
    if matrix.shape[1] != PAYLOAD_LENGTH:
        raise ValueError(f"a matricule payload has {PAYLOAD_LENGTH} digits, got {matrix.shape[1]}")
    return luhn_bulk(matrix), verhoeff_bulk(matrix)


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([31, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)]
    return np.where((month == 2) & leap, 29, days)


def validate_bulk(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(format_ok, valid) for many matricules: the same rules as ``validate``, vectorised.

    ``format_ok`` is 13 ASCII digits; ``valid`` adds the birth-date part and both check
    digits. Missing values (None) count as valid: whether a value is required is the
    contract's business, not the number's.
    """
    text = np.asarray(values, dtype=object)
    present = np.array([v is not None for v in text], dtype=bool)
    strings = np.where(present, text, "0000000000000").astype(f"U{LENGTH + 1}")
    codes = strings.view(np.uint32).reshape(len(strings), LENGTH + 1)
    digits = codes[:, :LENGTH].astype(np.int64) - ord("0")
    format_ok = (np.char.str_len(strings) == LENGTH) & ((digits >= 0) & (digits <= 9)).all(axis=1)
    digits = np.where(format_ok[:, None], digits, 0)
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    date_ok = (year >= 1850) & (month <= 12) & np.where(month == 0, day == 0, day <= _days_in_month(year, month))
    luhn_digit, verhoeff_digit = check_digits_bulk(digits[:, :PAYLOAD_LENGTH])
    valid = format_ok & date_ok & (digits[:, 11] == luhn_digit) & (digits[:, 12] == verhoeff_digit)
    return format_ok | ~present, valid | ~present

"""The Luxembourg national identification number (matricule).

13 digits: birth date YYYYMMDD, 3 sequence digits, then a Luhn check digit and a
Verhoeff check digit, each computed over the first 11 digits. 00 as month or day means
that part of the birth date is unknown (a day in an unknown month is not a date, so a
00 month needs a 00 day).

Single values are checked here with python-stdnum's ``luhn`` and ``verhoeff``. Millions
of numbers (a monthly delivery) go through the SQL macros in ``identifiers``, which the
tests hold equal to this module.
"""

from __future__ import annotations

import calendar

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

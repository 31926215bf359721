"""Bulk format and check-digit validation for every identifier format a contract names."""

from __future__ import annotations

import numpy as np

from .contracts.models import IdentifierFormat
from .matricule import digit_matrix, luhn_bulk, validate_bulk

EMPLOYER_NUMBER_LENGTH = 11
PROVIDER_CODE_LENGTH = 8


def _digits_only(values: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(present, format_ok) for text that must be exactly ``length`` ASCII digits."""
    text = np.asarray(values, dtype=object)
    present = np.array([v is not None for v in text], dtype=bool)
    strings = np.where(present, text, "").astype(str)
    format_ok = (np.char.str_len(strings) == length) & np.char.isdigit(strings) & np.array(
        [s.isascii() for s in strings], dtype=bool
    )
    return present, format_ok


def validate_identifiers(values: np.ndarray, fmt: IdentifierFormat) -> tuple[np.ndarray, np.ndarray]:
    """(format_ok, valid) per value; missing values pass both (nullability is checked elsewhere)."""
    if fmt is IdentifierFormat.matricule:
        return validate_bulk(values)
    length = EMPLOYER_NUMBER_LENGTH if fmt is IdentifierFormat.employer_number else PROVIDER_CODE_LENGTH
    present, format_ok = _digits_only(values, length)
    valid = format_ok.copy()
    if fmt is IdentifierFormat.employer_number and format_ok.any():
        numbers = np.array([int(v) for v in np.asarray(values, dtype=object)[format_ok]], dtype=np.int64)
        valid[format_ok] = luhn_bulk(digit_matrix(numbers // 10, EMPLOYER_NUMBER_LENGTH - 1)) == numbers % 10
    return format_ok | ~present, valid | ~present

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn, verhoeff

from lmdp_pipeline import matricule
from lmdp_pipeline.matricule import InvalidMatricule


def with_check_digits(payload: str) -> str:
    return payload + matricule.check_digits(payload)


@pytest.mark.parametrize(
    "value",
    [
        "1893120105732",  # the reference number
        with_check_digits("19850314123"),
        with_check_digits("20000229001"),  # leap day
        with_check_digits("19770500042"),  # unknown day
        with_check_digits("19770000042"),  # unknown month and day
    ],
)
def test_valid_matricules(value):
    assert matricule.validate(value) == value
    assert matricule.is_valid(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("189312010573", "13 digits"),
        ("18931201057321", "13 digits"),
        ("18931201O5732", "digits only"),
        ("１８９３１２０１０５７３２", "digits only"),  # full-width digits are not ASCII digits
        ("1893120105742", "Luhn"),
        ("1893120105733", "Verhoeff"),
        (with_check_digits("19851314123"), "month above 12"),
        (with_check_digits("19850230123"), "does not exist"),
        (with_check_digits("19850431123"), "does not exist"),
        (with_check_digits("19010229123"), "does not exist"),  # 1901 is not a leap year
        (with_check_digits("19770012042"), "unknown month"),
        (with_check_digits("17991231001"), "before 1850"),
    ],
)
def test_invalid_matricules_say_which_rule_failed(value, reason):
    with pytest.raises(InvalidMatricule, match=reason) as raised:
        matricule.validate(value)
    assert value not in str(raised.value), "the number itself must never be in a message"
    assert not matricule.is_valid(value)


def test_transposed_digits_are_caught():
    valid = "1893120105732"
    swapped = valid[:8] + valid[9] + valid[8] + valid[10:]
    assert not matricule.is_valid(swapped)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=99_999_999_999), min_size=1, max_size=50))
def test_bulk_check_digits_equal_stdnum(payloads):
    digits = matricule.digit_matrix(np.array(payloads), 11)
    luhn_digits, verhoeff_digits = matricule.check_digits_bulk(digits)
    for payload, l_digit, v_digit in zip(payloads, luhn_digits, verhoeff_digits):
        text = f"{payload:011d}"
        assert str(l_digit) == luhn.calc_check_digit(text)
        assert str(v_digit) == verhoeff.calc_check_digit(text)


def test_bulk_rejects_wrong_shape():
    with pytest.raises(ValueError, match="11 digits"):
        matricule.check_digits_bulk(np.zeros((3, 10), dtype=np.uint8))

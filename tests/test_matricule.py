import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn, verhoeff

from lmdp_pipeline import matricule
from lmdp_pipeline.contracts.models import IdentifierFormat
from lmdp_pipeline.identifiers import identifier_checks, install_macros
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


@pytest.fixture(scope="module")
def sql():
    con = duckdb.connect()
    install_macros(con)
    yield con
    con.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=99_999_999_999), min_size=1, max_size=50))
def test_sql_check_digits_equal_stdnum(sql, payloads):
    texts = [f"{p:011d}" for p in payloads]
    rows = sql.execute("SELECT lmdp_luhn_11(x::BIGINT), lmdp_verhoeff_11(x::BIGINT) FROM unnest(?) t(x)", [texts]).fetchall()
    assert [f"{a}{b}" for a, b in rows] == [luhn.calc_check_digit(t) + verhoeff.calc_check_digit(t) for t in texts]


def sql_valid(sql, value: str | None, fmt=IdentifierFormat.matricule) -> bool | None:
    well_formed, checked = identifier_checks("?", fmt)
    return sql.execute(f"SELECT {well_formed} AND {checked}", [value, value]).fetchone()[0]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(0, 99), st.booleans())
def test_sql_matricule_check_agrees_with_validate(sql, payload, suffix, use_check_digits):
    value = payload + (matricule.check_digits(payload) if use_check_digits else f"{suffix:02d}")
    assert sql_valid(sql, value) == matricule.is_valid(value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("1893120105732", True),
        ("1893120105733", False),
        (with_check_digits("19851314123"), False),  # month 13
        (with_check_digits("19850229123"), False),  # not a leap year
        (with_check_digits("20000229123"), True),
        (with_check_digits("19770000042"), True),  # unknown month and day
        ("189312010573", False),
        ("18931201O5732", False),
    ],
)
def test_sql_matricule_check(sql, value, valid):
    assert sql_valid(sql, value) is valid


def test_sql_employer_numbers(sql):
    good = "1999299999" + luhn.calc_check_digit("1999299999")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    results = [sql_valid(sql, v, IdentifierFormat.employer_number) for v in (good, bad, "123")]
    assert results == [True, False, False]

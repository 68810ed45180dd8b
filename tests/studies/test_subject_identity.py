"""Identity validation at entry (GB 11643 ID numbers, mainland mobiles) and subject codes."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studies.kernel.errors import InvalidInput
from studies.subjects import codes
from studies.subjects.identity import (
    ID_CHECK_CHARS,
    PROVINCES,
    compose_resident_id,
    validate_identity,
    validate_mobile,
    validate_resident_id,
)

valid_ids = st.builds(
    compose_resident_id,
    region=st.tuples(st.sampled_from(sorted(PROVINCES)), st.integers(1, 9999)).map(
        lambda t: f"{t[0]}{t[1]:04d}"),
    birth=st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    sequence=st.integers(0, 999),
)


def test_published_example_number_is_accepted() -> None:
    # The worked example of GB 11643-1999 (region 110105, born 1949-12-31, sequence 001).
    assert validate_resident_id("11010519491231002X") == "11010519491231002X"
    assert validate_resident_id(" 11010519491231002x ") == "11010519491231002X"


@settings(max_examples=200, deadline=None)
@given(valid_ids)
def test_valid_numbers_are_accepted(number: str) -> None:
    assert validate_resident_id(number) == number


@settings(max_examples=150, deadline=None)
@given(valid_ids)
def test_every_single_character_corruption_is_refused(number: str) -> None:
    for i, original in enumerate(number):
        alphabet = ID_CHECK_CHARS if i == 17 else "0123456789"
        for c in alphabet + "AZ":
            if c == original:
                continue
            corrupted = number[:i] + c + number[i + 1:]
            with pytest.raises(InvalidInput) as err:
                validate_resident_id(corrupted)
            assert err.value.field == "resident_id"


@pytest.mark.parametrize(("value", "rule"), [
    ("", "18 characters"),
    ("1101051949123100", "18 characters"),
    ("11010519491231002XX", "18 characters"),
    ("1101051949123100X2", "17 digits"),
    ("99010519491231002X", "region"),
    ("110000194912310029", "region"),
    ("110105194913310021", "date of birth"),
    ("110105189912310021", "date of birth"),
    ("110105194912310021", "check digit"),
])
def test_malformed_numbers_are_refused_naming_the_field(value: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_resident_id(value)
    assert err.value.field == "resident_id"
    assert rule in err.value.message


def test_a_birth_date_in_the_future_is_refused() -> None:
    n = compose_resident_id("110105", dt.date(2030, 1, 1), 1)
    with pytest.raises(InvalidInput, match="date of birth"):
        validate_resident_id(n, today=dt.date(2026, 11, 28))


@pytest.mark.parametrize("raw", ["13912345678", "+86 139 1234 5678", "0086-13912345678",
                                 "１３９１２３４５６７８"])
def test_mainland_mobiles_are_accepted_and_normalised(raw: str) -> None:
    assert validate_mobile(raw) == "13912345678"


@pytest.mark.parametrize("raw", ["12912345678", "1391234567", "139123456789", "010-88881234",
                                 "abc"])
def test_other_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_mobile(raw)
    assert err.value.field == "phone"


def test_identity_errors_name_the_field() -> None:
    good = compose_resident_id("310104", dt.date(1980, 5, 6), 12)
    for kwargs, field in [
        (dict(name="  ", resident_id=good), "name"),
        (dict(name="张三", resident_id=good, phone="123"), "phone"),
        (dict(name="张三", resident_id=good, date_of_birth="1980-05-07"), "date_of_birth"),
        (dict(name="张三", resident_id=good, date_of_birth="06/05/1980"), "date_of_birth"),
        (dict(name="张\x00三", resident_id=good), "name"),
        (dict(name="张三", resident_id=good, address="x" * 301), "address"),
    ]:
        with pytest.raises(InvalidInput) as err:
            validate_identity(**kwargs)  # type: ignore[arg-type]
        assert err.value.field == field
    ident = validate_identity(name=" 张 三 ", resident_id=good, phone="13800000000")
    assert (ident.name, ident.date_of_birth) == ("张 三", dt.date(1980, 5, 6))


def test_subject_codes_have_site_prefix_and_check_character() -> None:
    seen = {codes.new_code("S01") for _ in range(300)}
    assert len(seen) == 300
    for code in seen:
        assert code.startswith("S01-") and len(code) == 10
        assert codes.is_valid_code(code)
        assert not set(code[4:]) & set("01OIL U")


@settings(max_examples=200, deadline=None)
@given(st.text(codes.ALPHABET, min_size=5, max_size=5))
def test_every_single_character_change_of_a_code_is_detected(body: str) -> None:
    full = body + codes.luhn_mod_n_check(body)
    assert codes.is_valid_body(full)
    for i, original in enumerate(full):
        for c in codes.ALPHABET:
            if c != original:
                assert not codes.is_valid_body(full[:i] + c + full[i + 1:])

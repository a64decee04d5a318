"""GB 11643-1999 citizen identity numbers: valid numbers pass, every defect is named."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.identity.id_number import (
    Sex,
    birth_date,
    id_check_char,
    make_id_number,
    sex,
    validate_id_number,
)

TODAY = date(2025, 6, 1)
# The worked example of GB 11643-1999 (check character X, a woman born 1949-12-31).
STANDARD_EXAMPLE = "11010519491231002X"
# The standard's other example is born in 1880 — structurally valid, but below our 1900 floor.
STANDARD_1880 = "440524188001010014"
GUIYANG_X = "52010219900517014X"  # make_id_number("520102", 1990-05-17, 14)
GUIYANG_MAN = "520102199005170019"  # make_id_number("520102", 1990-05-17, 1)
WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def naive_check(first17: str) -> str:
    """ISO 7064 MOD 11-2 as written: find the check value a with (Σ a_i·W_i + a) ≡ 1 (mod 11)."""
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def expect(value: str, fragment: str, today: date = TODAY) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        validate_id_number(value, today=today)
    assert info.value.code == "invalid_id_number"
    assert fragment in info.value.message, info.value.message
    return info.value


@pytest.mark.parametrize("number", [STANDARD_EXAMPLE, GUIYANG_X, GUIYANG_MAN])
def test_valid_examples(number: str) -> None:
    assert validate_id_number(number, today=TODAY) == number
    assert id_check_char(number[:17]) == number[17] == naive_check(number[:17])


def test_weights_are_the_standard_table() -> None:
    assert WEIGHTS == [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def test_birth_date_and_sex() -> None:
    assert birth_date(STANDARD_EXAMPLE, today=TODAY) == date(1949, 12, 31)
    assert sex(STANDARD_EXAMPLE, today=TODAY) is Sex.FEMALE
    assert sex(GUIYANG_MAN, today=TODAY) is Sex.MALE
    assert birth_date(GUIYANG_X) == date(1990, 5, 17)  # default today = the real date


def test_birth_date_and_sex_validate_first() -> None:
    with pytest.raises(InvalidInput) as info:
        sex("11010519491231002Y")
    assert info.value.code == "invalid_id_number"
    with pytest.raises(InvalidInput):
        birth_date("110105194912310020")


def test_lower_case_x_blanks_and_full_width_are_normalised() -> None:
    assert validate_id_number(" 11010519491231002x ", today=TODAY) == STANDARD_EXAMPLE
    assert validate_id_number("１１０１０５１９４９１２３１００２ｘ", today=TODAY) == STANDARD_EXAMPLE


@pytest.mark.parametrize(
    ("value", "length"), [("", 0), ("1101051949123100", 16), (STANDARD_EXAMPLE + "0", 19)]
)
def test_rejects_wrong_length(value: str, length: int) -> None:
    err = expect(value, f"exactly 18 characters, got {length}")
    assert err.details["length"] == length


def test_rejects_first_generation_15_digits_with_hint() -> None:
    expect("110105491231002", "15-digit first-generation numbers are not accepted")


def test_rejects_non_string() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_id_number(110105194912310020)  # type: ignore[arg-type]
    assert info.value.code == "invalid_id_number"
    assert "must be a string" in info.value.message


@pytest.mark.parametrize(
    ("value", "pos", "ch"),
    [
        ("X10105194912310020", 1, "X"),
        ("1101051949A2310020", 11, "A"),
        ("11010519491231002Y", 18, "Y"),
        ("1101051949123100-X", 17, "-"),
    ],
)
def test_rejects_bad_character_with_position(value: str, pos: int, ch: str) -> None:
    allowed = "a digit or X" if pos == 18 else "a digit"
    err = expect(value, f"bad character {ch!r} at position {pos}: must be {allowed}")
    assert err.details["position"] == pos


@pytest.mark.parametrize(
    ("birth", "fragment"),
    [
        ("19490231", "not a calendar date"),
        ("19491301", "not a calendar date"),
        ("19490001", "not a calendar date"),
        ("20230229", "not a calendar date"),
        ("18991231", "year before 1900"),
        ("20250602", "in the future (today is 2025-06-01)"),
    ],
)
def test_rejects_bad_birth_dates(birth: str, fragment: str) -> None:
    first17 = "110105" + birth + "002"
    err = expect(first17 + id_check_char(first17), f"bad birth date {birth} at positions 7-14: {fragment}")
    assert err.details["position"] == 7


def test_leap_day_and_today_are_accepted() -> None:
    assert validate_id_number(make_id_number("520102", date(2000, 2, 29), 1), today=TODAY)
    assert validate_id_number(make_id_number("520102", TODAY, 2), today=TODAY)


def test_standard_1880_example_is_rejected_by_the_1900_floor() -> None:
    assert id_check_char(STANDARD_1880[:17]) == STANDARD_1880[17]  # checksum itself is fine
    expect(STANDARD_1880, "year before 1900")


def test_rejects_bad_check_char() -> None:
    err = expect("110105194912310021", "bad check character at position 18: expected X, got 1")
    assert err.details == {"position": 18, "expected": "X", "actual": "1"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("52010", date(1990, 1, 1), 1), "division must be 6 digits"),
        (("52O102", date(1990, 1, 1), 1), "division must be 6 digits"),
        (("520102", date(1899, 12, 31), 1), "birth year must be 1900 or later"),
        (("520102", date(1990, 1, 1), 1000), "seq must be an int in 0..999"),
        (("520102", date(1990, 1, 1), -1), "seq must be an int in 0..999"),
    ],
)
def test_make_id_number_rejects_bad_arguments(args: tuple[str, date, int], fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make_id_number(*args)
    assert info.value.code == "invalid_id_number"
    assert fragment in info.value.message


def test_id_check_char_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput, match="first 17 digits"):
        id_check_char("1101051949123100X")


def test_every_check_value_occurs_including_x() -> None:
    seen = {make_id_number("520102", date(1990, 5, 17), s)[17] for s in range(200)}
    assert seen == set("0123456789X")


def test_weights_detect_every_single_substitution() -> None:
    # 11 is prime and no weight is 0 mod 11: changing one digit by d (0 < |d| < 10) changes the
    # sum by w*d != 0 mod 11, and the 11 check values map one-to-one onto "10X98765432".
    assert all(w % 11 for w in WEIGHTS)
    assert len(set("10X98765432")) == 11


@pytest.mark.parametrize("number", [STANDARD_EXAMPLE, GUIYANG_X, GUIYANG_MAN])
def test_every_single_substitution_rejected_exhaustively(number: str) -> None:
    for pos in range(18):
        for ch in "0123456789X":
            if ch != number[pos]:
                with pytest.raises(InvalidInput):
                    validate_id_number(number[:pos] + ch + number[pos + 1 :], today=TODAY)


numbers = st.builds(
    make_id_number,
    st.text("0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.integers(0, 999),
)


@given(numbers)
def test_generated_numbers_validate(number: str) -> None:
    assert validate_id_number(number, today=TODAY) == number
    assert naive_check(number[:17]) == number[17]


@given(
    st.text("0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.integers(0, 999),
)
def test_round_trip_birth_and_sex(division: str, born: date, seq: int) -> None:
    number = make_id_number(division, born, seq)
    assert birth_date(number, today=TODAY) == born
    assert sex(number, today=TODAY) is (Sex.MALE if seq % 2 else Sex.FEMALE)


@given(numbers, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_single_substitution_rejected(number: str, pos: int, ch: str) -> None:
    if ch == number[pos]:
        return
    with pytest.raises(InvalidInput) as info:
        validate_id_number(number[:pos] + ch + number[pos + 1 :], today=TODAY)
    assert info.value.code == "invalid_id_number"

"""GB 32100-2015 unified social credit codes: valid codes pass, every defect is named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.identity.uscc import (
    MAX_SEQ,
    USCC_CHARSET,
    make_uscc,
    org_code_check_char,
    uscc_check_char,
    validate_uscc,
)

# Checked by hand against GB 32100-2015 §5 and GB 11714-1997 (both check characters).
REAL_VALID = ["91350100M000100Y43", "91110000600037341L"]
# DESIGN.md's example party (贵阳市民政局 placeholder): valid, and exactly make_uscc(2).
DESIGN_EXAMPLE = "11520100000000027J"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Every character a code could be mistyped as: the charset plus the five excluded letters.
TYPO_CHARS = USCC_CHARSET + "IOSVZ"


def naive_check(first17: str) -> str:
    """Reference straight from the standard's text, independent of the module's tables."""
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def expect(code: str, fragment: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        validate_uscc(code)
    assert info.value.code == "invalid_uscc"
    assert fragment in info.value.message, info.value.message
    return info.value


@pytest.mark.parametrize("code", [*REAL_VALID, DESIGN_EXAMPLE])
def test_valid_examples(code: str) -> None:
    assert validate_uscc(code) == code
    assert uscc_check_char(code[:17]) == code[17] == naive_check(code[:17])
    assert org_code_check_char(code[8:16]) == code[16]


def test_design_example_is_make_uscc_2() -> None:
    assert make_uscc(2) == DESIGN_EXAMPLE


def test_normalises_case_blanks_and_full_width() -> None:
    assert validate_uscc(" 91110000600037341l\n") == "91110000600037341L"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "91350100M000100Y43")
    assert validate_uscc(full_width) == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "length"), [("", 0), ("9135010", 7), ("91350100M000100Y4", 17), ("91350100M000100Y430", 19)]
)
def test_rejects_wrong_length(code: str, length: int) -> None:
    err = expect(code, f"exactly 18 characters, got {length}")
    assert err.details["length"] == length


def test_rejects_non_string() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_uscc(91350100)  # type: ignore[arg-type]
    assert info.value.code == "invalid_uscc"
    assert "must be a string" in info.value.message


@pytest.mark.parametrize("bad", ["I", "O", "S", "V", "Z", "-", "中", "!"])
def test_rejects_bad_character_with_position(bad: str) -> None:
    code = "91350100M000100Y43"
    err = expect(code[:9] + bad + code[10:], f"bad character {bad!r} at position 10")
    assert err.details["position"] == 10


def test_rejects_letter_in_division_code() -> None:
    err = expect("9135A100M000100Y43", "bad character 'A' at position 5")
    assert "administrative division code" in err.message
    assert err.details["position"] == 5


def test_rejects_bad_organization_check_char() -> None:
    # Position 17 changed; the GB 11714 check is reported before the overall check.
    err = expect("91350100M000100Y53", "organization code check character at position 17: expected 4, got 5")
    assert err.details == {"position": 17, "expected": "4", "actual": "5"}


def test_rejects_bad_check_char() -> None:
    err = expect("91110000600037341K", "bad check character at position 18: expected L, got K")
    assert err.details == {"position": 18, "expected": "L", "actual": "K"}


def test_org_check_char_10_and_11() -> None:
    # GB 11714: 11 - sum%11 == 10 is written X, == 11 (sum%11 == 0) is written 0.
    assert org_code_check_char("00000001") == "9"  # 1*2 = 2 -> 11 - 2
    body_x = next(f"{i:08d}" for i in range(1000) if org_code_check_char(f"{i:08d}") == "X")
    assert validate_uscc(make_uscc(int(body_x)))[16] == "X"
    assert org_code_check_char("00000000") == "0"


def test_check_char_31_maps_to_zero() -> None:
    code = next(c for c in (make_uscc(i) for i in range(2000)) if c[17] == "0")
    assert naive_check(code[:17]) == "0"
    assert validate_uscc(code) == code


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"seq": -1}, "seq must be an int"),
        ({"seq": MAX_SEQ + 1}, "seq must be an int"),
        ({"seq": True}, "seq must be an int"),
        ({"seq": 1, "division": "52010"}, "division must be 6 digits"),
        ({"seq": 1, "division": "5201OO"}, "division must be 6 digits"),
        ({"seq": 1, "authority": "I"}, "authority must be one character"),
        ({"seq": 1, "kind": "12"}, "kind must be one character"),
    ],
)
def test_make_uscc_rejects_bad_arguments(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make_uscc(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == "invalid_uscc"
    assert fragment in info.value.message


def test_check_char_helpers_reject_bad_input() -> None:
    with pytest.raises(InvalidInput, match="first 17 characters"):
        uscc_check_char("9135")
    with pytest.raises(InvalidInput, match="at position 3"):
        uscc_check_char("91I50100M000100Y4")
    with pytest.raises(InvalidInput, match="organization code body"):
        org_code_check_char("M00010")


def test_weights_detect_every_single_substitution() -> None:
    # Why single substitutions are always caught: 31 and 11 are prime and no weight is 0 mod
    # the modulus, so changing one value by d (0 < |d| < modulus) changes the sum by w*d != 0.
    assert all(w % 31 and w == pow(3, i, 31) for i, w in enumerate(WEIGHTS))
    assert all(w % 11 for w in (3, 7, 9, 10, 5, 8, 4, 2))
    # GB 11714 values reach 35 (Z): two body characters 11 apart (e.g. '1' and 'C') collide
    # modulo 11 — the GB 32100 check at position 18 still catches them (values differ < 31).
    assert org_code_check_char("C0000000") == org_code_check_char("10000000")


@pytest.mark.parametrize("code", [*REAL_VALID, DESIGN_EXAMPLE])
def test_every_single_substitution_rejected_exhaustively(code: str) -> None:
    for pos in range(18):
        for ch in TYPO_CHARS:
            if ch != code[pos]:
                with pytest.raises(InvalidInput):
                    validate_uscc(code[:pos] + ch + code[pos + 1 :])


codes = st.builds(
    make_uscc,
    st.integers(0, MAX_SEQ),
    division=st.text("0123456789", min_size=6, max_size=6),
    authority=st.sampled_from(USCC_CHARSET),
    kind=st.sampled_from(USCC_CHARSET),
)


@given(codes)
def test_generated_codes_validate(code: str) -> None:
    assert validate_uscc(code) == code
    assert naive_check(code[:17]) == code[17]


@given(codes, st.integers(0, 17), st.sampled_from(TYPO_CHARS))
def test_single_substitution_rejected(code: str, pos: int, ch: str) -> None:
    if ch == code[pos]:
        return
    with pytest.raises(InvalidInput) as info:
        validate_uscc(code[:pos] + ch + code[pos + 1 :])
    assert info.value.code == "invalid_uscc"


@given(st.integers(0, MAX_SEQ))
def test_make_uscc_is_deterministic(seq: int) -> None:
    assert make_uscc(seq) == make_uscc(seq)
    assert make_uscc(seq)[8:16] == f"{seq:08d}"

"""脱敏 rules: every rule on well-formed, edge and garbage input; pseudonyms; subject hashes."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.gateway.masking import Masker, mask_name, mask_phone, subject_hash
from ledger.identity.id_number import make_id_number
from ledger.sharing.catalog import FieldSpec
from ledger.types import MaskingRule

KEY = b"k" * 32
M = Masker(pseudonym_key=KEY, scope="grant-1")


def mask(rule: MaskingRule, value: Any) -> Any:
    return M.mask(rule, value)


# --- ID numbers (GB 11643-1999) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("52010219900307123X", "520102********123X"),
        ("52010219900307123x", "520102********123X"),  # lower-case check character normalised
        (" 520102199003071234\n", "520102********1234"),
        ("５２０１０２１９９００３０７１２３４", "520102********1234"),  # full-width digits
        ("520102900307123", "520102******123"),  # 15-digit first generation: 6 + 3 kept
    ],
)
def test_id_number(value: str, masked: str) -> None:
    assert mask(MaskingRule.ID_NUMBER, value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("5201021990030712", "****************"),  # 16 characters: not an ID number
        ("52010219900307123Y", "******************"),  # bad last character
        ("abc", "***"),
        ("", ""),
        (520102199003071234, "520102********1234"),  # an int from a careless source still masks
        (12345, "*****"),
    ],
)
def test_id_number_garbage_keeps_only_length(value: Any, masked: str) -> None:
    assert mask(MaskingRule.ID_NUMBER, value) == masked


@given(
    division=st.sampled_from(["520102", "520103", "110105", "440604"]),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2024, 12, 31)),
    seq=st.integers(0, 999),
    lower=st.booleans(),
)
def test_id_number_mask_never_reveals_birth_and_keeps_length(
    division: str, birth: date, seq: int, lower: bool
) -> None:
    number = make_id_number(division, birth, seq)
    masked = mask(MaskingRule.ID_NUMBER, number.lower() if lower else number)
    assert len(masked) == len(number) == 18
    assert masked[6:14] == "********"
    assert masked[:6] == number[:6] and masked[14:] == number[14:]


@given(st.text(max_size=40))
def test_id_number_mask_never_raises_and_hides_positions_7_to_14(text: str) -> None:
    masked = mask(MaskingRule.ID_NUMBER, text)
    assert isinstance(masked, str)
    assert set(masked[6:14]) <= {"*"}


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("张伟", "张*"),
        ("张小明", "张**"),
        ("欧阳娜", "欧阳*"),
        ("欧阳娜娜", "欧阳**"),
        ("司马相如", "司马**"),
        ("诸葛亮", "诸葛*"),
        ("上官婉儿", "上官**"),
        ("王大小明", "王***"),  # a 4-character name without a compound surname
        ("欧阳", "欧*"),  # two characters: surname + given name, not a lone compound surname
        ("李", "*"),
        ("买买提·艾力", "买**·**"),  # the middle dot of minority names keeps the shape
        ("John Smith", "J*** S****"),
        ("  Li  Lei ", "L* L**"),
        ("", ""),
    ],
)
def test_name(value: str, masked: str) -> None:
    assert mask(MaskingRule.NAME, value) == masked


# --- phones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("+86 138 1234 5678", "+86 138****5678"),
        ("008613812345678", "0086138****5678"),
        ("0851-12345678", "0851-******78"),
        ("010-1234567", "010-*****67"),
        ("(0851)12345678", "0851-******78"),
        ("0851 12345678-801", "0851-******78"),  # extension dropped
        ("12345", "***45"),  # unknown shape: last 2 kept
        ("ab", "**"),
        ("", ""),
    ],
)
def test_phone(value: str, masked: str) -> None:
    assert mask(MaskingRule.PHONE, value) == masked


# --- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("贵州省贵阳市云岩区中华北路1号", "贵州省贵阳市云岩区****"),
        ("贵州省贵阳市观山湖区林城西路8号3栋", "贵州省贵阳市观山湖区****"),
        ("贵阳市南明区遵义路2号", "贵阳市南明区****"),
        ("北京市朝阳区建国路88号", "北京市朝阳区****"),
        ("广西壮族自治区南宁市青秀区民族大道1号", "广西壮族自治区南宁市青秀区****"),
        ("贵州省黔南布依族苗族自治州都匀市剑江路1号", "贵州省黔南布依族苗族自治州都匀市****"),
        ("贵州省贵阳市修文县龙场镇1号", "贵州省贵阳市修文县****"),
        ("贵州省清镇市红枫湖镇1号", "贵州省清镇市****"),
        ("贵州省贵阳市花果园小区1栋", "贵州省贵阳市****"),  # a 小区 is not a district
        ("贵阳市南明区花果园社区", "贵阳市南明区****"),
        ("云岩区中华北路1号", "云岩区中****"),  # no province or city: fallback
        ("中华北路123号4栋", "中华北路****"),  # fallback: at most 6 characters, half, and no digit
        ("大院1号", "大院****"),
        ("", ""),
    ],
)
def test_address(value: str, masked: str) -> None:
    assert mask(MaskingRule.ADDRESS, value) == masked


# --- bank cards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("6222021234561234", "622202******1234"),
        ("6222 0212 3456 1234", "622202******1234"),
        ("6222-0212-3456-1234-567", "622202*********4567"),  # 19 digits
        ("622202123456", "622202**3456"),  # 12 digits
        ("62220212345", "***********"),  # 11 digits: not a card, length only
        ("6222A21234561234", "****************"),
    ],
)
def test_bank_card(value: str, masked: str) -> None:
    assert mask(MaskingRule.BANK_CARD, value) == masked


# --- pseudonyms ---------------------------------------------------------------------------------


def test_pseudonym_is_the_documented_hmac() -> None:
    expected = hmac.new(KEY, b"grant-1\x00id_number\x0052010219900307123X", hashlib.sha256).hexdigest()
    assert M.mask(MaskingRule.PSEUDONYM, "52010219900307123X", field="id_number") == "p_" + expected[:16]


def test_pseudonym_is_deterministic_per_scope_field_and_value() -> None:
    again = Masker(pseudonym_key=KEY, scope="grant-1")
    other_scope = Masker(pseudonym_key=KEY, scope="grant-2")
    other_key = Masker(pseudonym_key=b"q" * 32, scope="grant-1")
    value = "52010219900307123X"
    first = M.pseudonym("id_number", value)
    assert first.startswith("p_") and len(first) == 18
    assert again.pseudonym("id_number", value) == first
    assert other_scope.pseudonym("id_number", value) != first  # two grantees cannot link records
    assert other_key.pseudonym("id_number", value) != first
    assert M.pseudonym("owner_id_number", value) != first
    assert M.pseudonym("id_number", "52010219900307124X") != first


def test_pseudonym_separates_types() -> None:
    assert M.pseudonym("n", 123) != M.pseudonym("n", "123x")
    assert M.pseudonym("n", True) != M.pseudonym("n", 1)


def test_pseudonym_scope_and_field_cannot_shift_the_boundary() -> None:
    a = Masker(pseudonym_key=KEY, scope="g")
    b = Masker(pseudonym_key=KEY, scope="g\x01")
    assert a.pseudonym("f", "v") != b.pseudonym("f", "v")
    with pytest.raises(InvalidInput) as info:
        a.pseudonym("f\x00x", "v")
    assert info.value.code == "invalid_field"


@pytest.mark.parametrize("key", [b"", b"short", "a string key of enough length"])
def test_masker_rejects_weak_key(key: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        Masker(pseudonym_key=key, scope="grant-1")
    assert info.value.code == "invalid_pseudonym_key"


@pytest.mark.parametrize("scope", ["", "a\x00b", None])
def test_masker_rejects_bad_scope(scope: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        Masker(pseudonym_key=KEY, scope=scope)
    assert info.value.code == "invalid_scope"


# --- generalisation, redaction, none -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (35, "30-39"),
        (30, "30-39"),
        (39.99, "30-39"),
        (0, "0-9"),
        (7, "0-9"),
        (-5, "-10--1"),
        (18500, "18500-18509"),
        ("1990-03-07", "1990"),
        ("1990-03-07T08:00:00Z", "1990"),
        (date(1990, 3, 7), "1990"),
        ("城镇职工", "城*"),
        ("", ""),
        (True, "***"),
        (float("nan"), "***"),
        (float("inf"), "***"),
    ],
)
def test_generalize(value: Any, masked: str) -> None:
    assert mask(MaskingRule.GENERALIZE, value) == masked


@pytest.mark.parametrize("value", ["secret", 42, 3.5, False, ""])
def test_redact(value: Any) -> None:
    assert mask(MaskingRule.REDACT, value) == "***"


@pytest.mark.parametrize("value", ["52010219900307123X", 42, True, 1.5])
def test_none_rule_is_identity(value: Any) -> None:
    assert mask(MaskingRule.NONE, value) == value


@pytest.mark.parametrize("rule", list(MaskingRule))
def test_none_value_passes_through_every_rule(rule: MaskingRule) -> None:
    assert M.mask(rule, None, field="f") is None


# --- rows ---------------------------------------------------------------------------------------

FIELDS = [
    FieldSpec("id_number", "string", True, MaskingRule.ID_NUMBER),
    FieldSpec("name", "string", True, MaskingRule.NAME),
    FieldSpec("phone", "string", True, MaskingRule.PHONE),
    FieldSpec("district", "string"),
    FieldSpec("monthly_base", "integer", True, MaskingRule.GENERALIZE),
]


def test_mask_row_masks_sensitive_fields_only() -> None:
    row = {
        "id_number": "52010219900307123x",
        "name": "欧阳娜娜",
        "phone": None,
        "district": "云岩区",
        "monthly_base": 5300,
        "extra": "kept",
    }
    assert M.mask_row(row, FIELDS) == {
        "id_number": "520102********123X",
        "name": "欧阳**",
        "phone": None,
        "district": "云岩区",
        "monthly_base": "5300-5309",
        "extra": "kept",
    }
    assert row["name"] == "欧阳娜娜"  # the input is not modified


@dataclass(frozen=True)
class LooseField:
    name: str
    sensitive: bool
    masking: MaskingRule


def test_mask_row_redacts_a_sensitive_field_without_rule() -> None:
    fields = [LooseField("salary", True, MaskingRule.NONE), LooseField("age", False, MaskingRule.NONE)]
    assert M.mask_row({"salary": 9000, "age": 30}, fields) == {"salary": "***", "age": 30}


# --- subject hashes -----------------------------------------------------------------------------


def test_subject_hash_is_hmac_of_the_normalised_number() -> None:
    expected = "0x" + hmac.new(KEY, b"52010219900307123X", hashlib.sha256).hexdigest()
    assert subject_hash(KEY, "52010219900307123X") == expected
    assert subject_hash(KEY, " 52010219900307123x ") == expected
    assert subject_hash(KEY, "５２０１０２１９９００３０７１２３ｘ") == expected
    assert subject_hash(b"another key", "52010219900307123X") != expected
    assert len(expected) == 66


@pytest.mark.parametrize("value", ["", "   ", None, 520102199003071234])
def test_subject_hash_rejects_non_strings_and_blanks(value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        subject_hash(KEY, value)
    assert info.value.code == "invalid_subject"


@given(st.text(max_size=24))
def test_subject_hasher_equals_subject_hash(value: str) -> None:
    from ledger.gateway.masking import SubjectHasher

    key = b"k" * 32
    try:
        expected = subject_hash(key, value)
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as caught:
            SubjectHasher(key)(value)
        assert caught.value.code == exc.code
        return
    assert SubjectHasher(key)(value) == expected
    assert SubjectHasher(key)(value.lower()) == subject_hash(key, value.lower())


@given(st.binary(min_size=1, max_size=200), st.text(max_size=24))
def test_subject_hasher_any_key_length_equals_subject_hash(key: bytes, value: str) -> None:
    """The prepared RFC 2104 states give the HMAC for every key length: shorter than SHA-256's
    64-byte block (padded) and longer (hashed first, RFC 2104 §2)."""
    from ledger.gateway.masking import SubjectHasher

    try:
        expected = subject_hash(key, value)
    except InvalidInput:
        return
    assert SubjectHasher(key)(value) == expected


def test_subject_hasher_many_hashes_each_subject_once() -> None:
    from ledger.gateway.masking import SubjectHasher

    number = make_id_number("520102", date(1990, 3, 7), 12)
    hashes = SubjectHasher(KEY).many([number, number, number.lower(), None, "", 520102, "52010219900307123X"])
    assert hashes == {subject_hash(KEY, number), subject_hash(KEY, "52010219900307123X")}
    assert SubjectHasher(KEY).many([]) == set()
    # the joined fast path must not split a value that holds its separator, or pass a lone odd one
    odd = ["5201\n02", "520102 ", "５２０１", "520102-1", number]
    assert SubjectHasher(KEY).many(odd) == {subject_hash(KEY, v) for v in odd}


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.from_regex(r"[0-9xX]{1,18}"))))
def test_subject_hasher_many_is_each_hashed_alone(values: list[object]) -> None:
    from ledger.gateway.masking import SubjectHasher

    numbers = [v for v in values if isinstance(v, str) and v.strip()]
    rest = [v for v in values if not isinstance(v, str)] + [""]
    assert SubjectHasher(KEY).many(numbers + rest) == {subject_hash(KEY, v) for v in numbers}


_column_values = st.lists(
    st.none()
    | st.text(max_size=30)
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.booleans()
    | st.floats(allow_nan=False),
    max_size=12,
)


@pytest.mark.parametrize("rule", list(MaskingRule))
@given(values=_column_values)
def test_mask_column_equals_mask_of_each_value(rule: MaskingRule, values: list[Any]) -> None:
    """Column-wise masking (one rule lookup per column, a prepared HMAC for pseudonyms) is value
    for value what :meth:`Masker.mask` gives."""
    assert M.mask_column(rule, values, field="f") == [M.mask(rule, v, field="f") for v in values]


def test_mask_column_pseudonyms_refuse_a_nul_field_name() -> None:
    with pytest.raises(InvalidInput) as info:
        M.mask_column(MaskingRule.PSEUDONYM, ["x"], field="a\x00b")
    assert info.value.code == "invalid_field"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_plain_mobile_numbers_mask_as_the_general_pattern_does(number: str) -> None:
    """The shortcut for 11 plain digits agrees with the pattern path (taken by a spaced number)."""
    spaced = f"{number[:3]} {number[3:7]} {number[7:]}"
    assert mask_phone(number) == mask_phone(spaced) == number[:3] + "****" + number[7:]


@given(st.text(alphabet="张王欧阳娜·•司马", min_size=1, max_size=6))
def test_name_mask_keeps_only_surname_and_dots(name: str) -> None:
    masked = mask_name(name)
    assert len(masked) == len(name)
    assert all(m == c or m == "*" for m, c in zip(masked, name, strict=True))
    assert [i for i, c in enumerate(name) if c in "·•"] == [i for i, c in enumerate(masked) if c in "·•"]


_shaped = {
    MaskingRule.ID_NUMBER: st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True),
    MaskingRule.PHONE: st.from_regex(r"1[0-9]{10}", fullmatch=True),
    MaskingRule.GENERALIZE: st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
    MaskingRule.NAME: st.tuples(
        st.sampled_from(["张", "王", "欧阳", "司马", "诸葛", "㐀", "鿿"]),
        st.text(alphabet="娜丽伟豈", max_size=3),
    ).map("".join),  # 豈 (U+F900) is a compatibility ideograph: NFKC changes it
}
_odd = st.sampled_from(
    [None, "", " 13800005678", "１３８００００５６７８", "138\n00005678", "张·三", 1, "x", "2020-01-01T08:00"]
)


@pytest.mark.parametrize("rule", list(_shaped))
@given(data=st.data())
def test_plain_columns_mask_as_each_value_does(rule: MaskingRule, data: st.DataObject) -> None:
    """A column of values of the rule's plain shape is masked in one pass; with an odd value (a
    blank, a full-width digit, a newline inside, a middle dot, a compatibility ideograph, not a
    string) it goes value by value — either way the result is :meth:`Masker.mask`'s."""
    values: list[Any] = data.draw(st.lists(_shaped[rule], max_size=12))
    if data.draw(st.booleans()):
        values.insert(data.draw(st.integers(0, len(values))), data.draw(_odd))
    assert M.mask_column(rule, values, field="f") == [M.mask(rule, v, field="f") for v in values]

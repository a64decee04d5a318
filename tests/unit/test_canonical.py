"""RFC 8785 (JCS) canonical JSON of log entries: the RFC's own examples, and what must be refused."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_json, canonical_json_many, sha256_hex
from ledger.errors import InvalidInput

# RFC 8785 §3.2.2 input, verbatim (parsed with the stdlib, as a producer would).
RFC_3_2_2_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
# RFC 8785 §3.2.4 output, verbatim.
RFC_3_2_4_OUTPUT = (
    r"""{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"""
    r""""string":"€$\u000f\nA'B\"\\\\\"/"}"""
)

# RFC 8785 §3.2.3 sorting example: keys compared as UTF-16 code units, so the emoji
# (surrogates D83D DE00) sorts before U+FB33 although its code point is larger.
RFC_3_2_3_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC_3_2_3_ORDER = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_rfc_8785_example() -> None:
    assert canonical_json(json.loads(RFC_3_2_2_INPUT)) == RFC_3_2_4_OUTPUT.encode("utf-8")


def test_rfc_8785_key_ordering_is_by_utf16_code_units() -> None:
    out = canonical_json(json.loads(RFC_3_2_3_INPUT))
    assert list(json.loads(out).values()) == RFC_3_2_3_ORDER
    assert out.startswith(b'{"\\r":"Carriage Return","1":"One","\xc2\x80":"Control"')


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B, ids=[b for b, _ in APPENDIX_B])
def test_rfc_8785_appendix_b_numbers(bits: str, text: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_json(value) == text.encode("ascii")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (-0.0, b"0"),
        (0, b"0"),
        (5.0, b"5"),
        (2**53 - 1, b"9007199254740991"),
        (-(2**53) + 1, b"-9007199254740991"),
        (True, b"true"),
        (None, b"null"),
        ((1, [2, {}]), b"[1,[2,{}]]"),
        ({"b": 1, "a": {"d": 2, "c": 3}}, b'{"a":{"c":3,"d":2},"b":1}'),
        ("中文\u2028", '"中文\u2028"'.encode()),  # non-ASCII stays raw UTF-8, not \u-escaped
        ('\x1f\t"\\/', b'"\\u001f\\t\\"\\\\/"'),  # short escapes; others as lowercase \u00xx
        ({"é": 1, "e": 2, "z": 3, "Z": 4}, '{"Z":4,"e":2,"z":3,"é":1}'.encode()),
    ],
)
def test_canonical_forms(value: Any, expected: bytes) -> None:
    assert canonical_json(value) == expected


class _Unserializable:
    pass


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        [1.0, {"x": math.nan}],
        2**53,  # beyond the exact integers of an IEEE 754 double
        -(2**53),
        10**30,
        {1: "non-string key"},
        {None: "non-string key"},
        {("a",): "tuple key"},
        {"nested": {2: "x"}},
        "\ud800",  # lone surrogate: not encodable as UTF-8
        {"\udfff": 1},
        b"bytes",
        {1, 2},
        decimal.Decimal("1.5"),
        datetime.date(2024, 1, 1),
        _Unserializable(),
    ],
    ids=repr,
)
def test_rejected_values_raise_invalid_input(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        canonical_json(value)
    assert info.value.code == "invalid_json"
    assert isinstance(info.value, ValueError)
    assert info.value.__cause__ is not None  # the rfc8785 error is chained, not leaked


def test_too_deep_nesting_raises_invalid_input() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(InvalidInput) as info:
        canonical_json(value)
    assert info.value.code == "invalid_json"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _parse_number(text: str) -> int | float:
    """JSON numbers are doubles (RFC 8785 §3.2.2.3): a large integral float such as 1e20 is
    written ``100000000000000000000``, which must be read back as a float, not a Python int
    beyond 2**53 that canonical_json would then refuse."""
    n = int(text)
    return n if abs(n) < 2**53 else float(n)


@given(json_values)
def test_canonical_json_round_trips_and_is_idempotent(value: Any) -> None:
    """Any JSON value survives a parse, and canonicalizing the parse gives the same bytes."""
    out = canonical_json(value)
    parsed = json.loads(out, parse_int=_parse_number)
    assert parsed == value
    assert canonical_json(parsed) == out


def test_sha256_hex() -> None:
    assert sha256_hex(b"") == "0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"abc") == "0x" + hashlib.sha256(b"abc").hexdigest()


# The fast path (json.dumps for plain values) must be byte-identical to the rfc8785 package.
_plain_keys = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=8)
_plain_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.text(max_size=12)
)
_plain_json = st.recursive(
    _plain_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_plain_keys, inner, max_size=4),
    max_leaves=20,
)


@given(_plain_json)
def test_fast_path_matches_rfc8785(value: object) -> None:
    import rfc8785

    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, UnicodeError):
        with pytest.raises(InvalidInput):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_fast_path_edge_cases_match_rfc8785() -> None:
    import rfc8785

    for value in (
        {"a\\u0000": '\x00\x01\x1f\x7f\u2028\u2029"\\/', "b": [True, False, None, 2**53 - 1, -(2**53 - 1)]},
        {"z": 1, "A": 2, "_": 3, "a": {"y": [], "x": {}}},
        ["贵阳", "\U0001f600", "\u00e9"],
    ):
        assert canonical_json(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


@given(st.lists(_plain_json | json_values, max_size=6))
def test_many_matches_one_by_one(values: list[object]) -> None:
    """``canonical_json_many`` gives each value's ``canonical_json`` bytes, or raises the same
    error: plain batches (one check, the C encoder), mixed ones (the slow path), lone surrogates."""
    try:
        expected = [canonical_json(v) for v in values]
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as info:
            canonical_json_many(values)
        assert (info.value.code, str(info.value)) == (exc.code, str(exc))
        return
    assert canonical_json_many(values) == expected


def test_many_edge_cases() -> None:
    import rfc8785

    batch: list[object] = [
        {"event_id": "e-1", "n": 2**53 - 1, "fields": ["a", "b"], "x": None, "ok": True},
        {"event_id": "e-2", "n": -(2**53 - 1), "fields": [], "x": '\x00\u2028"', "ok": False},
        {"event_id": "e-3", "s": "\ud800"},  # a lone surrogate in a plain batch: that one is refused
    ]
    with pytest.raises(InvalidInput) as info:
        canonical_json_many(batch)
    assert info.value.code == "invalid_json"
    assert canonical_json_many(batch[:2]) == [rfc8785.dumps(v) for v in batch[:2]]  # type: ignore[arg-type]
    assert canonical_json_many([{"f": 1.5}, {"k": 2**53}][:1]) == [b'{"f":1.5}']  # not plain: rfc8785
    with pytest.raises(InvalidInput):
        canonical_json_many([{"ok": 1}, {"k": 2**53}])
    assert canonical_json_many([]) == []

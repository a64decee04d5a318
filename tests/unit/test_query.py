"""The row-filter grammar: what it accepts, every way it rejects, and evaluation against a naive reference."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.gateway.query import (
    MAX_CONDITIONS,
    MAX_IN_VALUES,
    MAX_SAFE_INTEGER,
    Condition,
    canonical_filter,
    load_row_filter,
    matches,
    narrower,
    parse_row_filter,
)

# --- acceptance ---------------------------------------------------------------------------------


def test_empty_filter_is_no_condition() -> None:
    assert parse_row_filter({}) == []
    assert matches([], {"anything": 1})


def test_scalar_is_equality() -> None:
    assert parse_row_filter({"district": "云岩区", "insured": True, "n": 3, "x": 1.5, "gone": None}) == [
        Condition("district", "eq", "云岩区"),
        Condition("insured", "eq", True),
        Condition("n", "eq", 3),
        Condition("x", "eq", 1.5),
        Condition("gone", "eq", None),
    ]


def test_every_operator() -> None:
    parsed = parse_row_filter(
        {
            "a": {"eq": 1, "ne": 2},
            "b": {"lt": 3, "lte": 4, "gt": 0, "gte": 1.5},
            "c": {"in": ["x", 1, None, False]},
            "id_number": {"prefix": "5201"},
        }
    )
    assert parsed == [
        Condition("a", "eq", 1),
        Condition("a", "ne", 2),
        Condition("b", "lt", 3),
        Condition("b", "lte", 4),
        Condition("b", "gt", 0),
        Condition("b", "gte", 1.5),
        Condition("c", "in", ("x", 1, None, False)),
        Condition("id_number", "prefix", "5201"),
    ]


def test_list_of_operator_objects_is_and() -> None:
    assert parse_row_filter({"age": [{"lt": 60}, {"lt": 40, "gte": 18}]}) == [
        Condition("age", "lt", 60),
        Condition("age", "lt", 40),
        Condition("age", "gte", 18),
    ]


def test_in_accepts_the_maximum_and_empty() -> None:
    assert len(parse_row_filter({"n": {"in": list(range(MAX_IN_VALUES))}})[0].value) == MAX_IN_VALUES
    assert parse_row_filter({"n": {"in": []}}) == [Condition("n", "in", ())]
    assert not matches(parse_row_filter({"n": {"in": []}}), {"n": 1})


def test_allowed_fields_accepts_granted_fields() -> None:
    assert parse_row_filter({"district": "云岩区"}, allowed_fields={"district", "name"}) == [
        Condition("district", "eq", "云岩区")
    ]


# --- rejection: every case asserts type and code -------------------------------------------------


def rejected(obj: Any, fragment: str, **kwargs: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_row_filter(obj, **kwargs)
    assert info.value.code == "invalid_row_filter"
    assert fragment in info.value.message, info.value.message
    return info.value


@pytest.mark.parametrize("obj", [None, [], "district=1", 3, [{"district": 1}]])
def test_rejects_non_object(obj: Any) -> None:
    rejected(obj, "must be a JSON object")


@pytest.mark.parametrize("field", ["", "x" * 65, 5])
def test_rejects_bad_field_name(field: Any) -> None:
    rejected({field: 1}, "field name")


def test_rejects_field_not_granted() -> None:
    error = rejected(
        {"salary": {"gt": 9000}}, "'salary' is not one of the granted fields", allowed_fields=["name"]
    )
    assert error.details == {"field": "salary"}


def test_rejects_unknown_operator() -> None:
    error = rejected({"age": {"between": [1, 2]}}, "unknown operator 'between'")
    assert error.details == {"field": "age", "op": "between"}
    rejected({"age": {"$gt": 1}}, "unknown operator '$gt'")
    rejected({"age": {"LT": 1}}, "unknown operator 'LT'")


@pytest.mark.parametrize("spec", [{}, [{}], [{"lt": 1}, {}]])
def test_rejects_empty_operator_object(spec: Any) -> None:
    rejected({"age": spec}, "non-empty object")


@pytest.mark.parametrize("spec", [[], ["520102", "520103"], [{"lt": 1}, 5], [[{"lt": 1}]]])
def test_rejects_list_that_is_not_operator_objects(spec: Any) -> None:
    rejected({"district": spec}, 'write {"in": [...]}')


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"a": {"eq": {"nested": 1}}}, "not a nested object"),
        ({"a": {"eq": [1, 2]}}, "not a nested list"),
        ({"a": {"ne": {}}}, "not a nested object"),
        ({"a": {"lt": [1]}}, "not a nested list"),
        ({"a": {"in": [1, [2]]}}, "not a nested list"),
        ({"a": {"in": [{"x": 1}]}}, "not a nested object"),
    ],
)
def test_rejects_nested_values(obj: Any, fragment: str) -> None:
    rejected(obj, fragment)


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"a": float("nan")}, "finite number"),
        ({"a": {"lt": float("inf")}}, "finite number"),
        ({"a": {"eq": b"bytes"}}, "got bytes"),
        ({"a": {"in": [object()]}}, "got object"),
        ({"a": {1, 2}}, "got set"),
    ],
)
def test_rejects_non_json_values(obj: Any, fragment: str) -> None:
    rejected(obj, fragment)


@pytest.mark.parametrize("value", ["1,2", 3, None, {"a": 1}])
def test_rejects_in_without_list(value: Any) -> None:
    rejected({"n": {"in": value}}, "operator 'in' needs a list")


def test_rejects_in_too_long() -> None:
    rejected({"n": {"in": list(range(MAX_IN_VALUES + 1))}}, f"at most {MAX_IN_VALUES} allowed")


@pytest.mark.parametrize("value", [5201, None, True, 1.5])
def test_rejects_prefix_without_string(value: Any) -> None:
    rejected({"id_number": {"prefix": value}}, "operator 'prefix' needs a string")


@pytest.mark.parametrize("op", ["lt", "lte", "gt", "gte"])
@pytest.mark.parametrize("value", [None, True, False])
def test_rejects_ordering_against_null_or_boolean(op: str, value: Any) -> None:
    rejected({"n": {op: value}}, f"operator {op!r} needs a string or a number")


def test_rejects_too_many_conditions() -> None:
    rejected({f"f{i}": i for i in range(MAX_CONDITIONS + 1)}, f"more than {MAX_CONDITIONS} conditions")


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"a": "x\x00y"}, "field 'a' operator 'eq': value contains U+0000 (NUL) at position 1"),
        ({"a": {"prefix": "\x00"}}, "operator 'prefix': value contains U+0000"),
        ({"a": {"in": ["ok", "\ud800"]}}, "value contains a lone surrogate U+D800 at position 0"),
        ({"a\x00": 1}, "field name 'a\\x00' contains U+0000 (NUL) at position 1"),
        ({"\udc80": 1}, "contains a lone surrogate U+DC80"),
        ({"a": MAX_SAFE_INTEGER + 1}, "an integer of 16 digits is outside ±(2**53 - 1)"),
        ({"a": {"gt": -(10**30)}}, "an integer of 31 digits is outside ±(2**53 - 1)"),
        ({"a": float("-inf")}, "-inf is not a finite number"),
    ],
)
def test_rejects_what_no_source_can_take(obj: Any, fragment: str) -> None:
    """Values are bound into a source's SQL: NUL (PostgreSQL text), lone surrogates (no UTF-8), and
    integers a JSON number does not carry exactly (the canonical query hash could not hold them)."""
    rejected(obj, fragment)


def test_accepts_the_edges_of_what_sources_take() -> None:
    edge = {"a": {"gte": -MAX_SAFE_INTEGER, "lte": MAX_SAFE_INTEGER}, "b": "\x01\x7f\u2028😀", "c": 1e308}
    assert len(parse_row_filter(edge)) == 4


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"v": {"gt": 1e999}}', "the number 1e999 is beyond ±1.8e308"),
        ('{"v": -1E+400}', "the number -1E+400 is beyond"),
        ('{"v": ' + "1" * 400 + ".0}", "1111111111111111111" + "1…"),
        ('{"v": NaN}', "NaN is not JSON"),
        ('{"v": Infinity}', "Infinity is not JSON"),
        ("1" + "0" * 5000, "an integer of 5001 digits"),
        ('{"v": -123456789012345678}', "an integer of 18 digits"),
        ("null", "must be a JSON object, got null"),
        ("[]", "must be a JSON object, got an array"),
        ("true", "must be a JSON object, got a boolean"),
        ("3.5", "must be a JSON object, got a number"),
        ("", "not valid JSON: Expecting value at character 0"),
        ('{"v": 1,}', "not valid JSON: Expecting property name enclosed in double quotes at character 8"),
        ('{"v": 1} x', "not valid JSON: Extra data at character 9"),
        ('{"v": 1, "v": 2}', "'v' named twice in one object"),
        ('{"v": [{"lt": 1, "lt": 2}]}', "'lt' named twice"),
        ("{" * 9 + "}" * 9, "nested deeper than 8 levels"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 8 levels"),
    ],
)
def test_load_row_filter_names_what_is_wrong_with_the_text(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_row_filter(text)
    assert info.value.code == "invalid_row_filter"
    assert info.value.message.startswith("row filter: ") and fragment in info.value.message, (
        info.value.message
    )


def test_load_row_filter_reads_a_filter() -> None:
    text = (
        '{"d": "云岩区", "s": "[{\\"", "n": {"gte": 1.5, "lt": 9007199254740991}, '
        '"x": [{"in": [null, true]}]}'
    )
    loaded = load_row_filter(text)
    assert loaded == {
        "d": "云岩区",
        "s": '[{"',
        "n": {"gte": 1.5, "lt": MAX_SAFE_INTEGER},
        "x": [{"in": [None, True]}],
    }
    assert len(parse_row_filter(loaded)) == 5


# --- matching semantics -------------------------------------------------------------------------


def hit(obj: dict[str, Any], row: dict[str, Any]) -> bool:
    return matches(parse_row_filter(obj), row)


def test_equality_is_not_coercive() -> None:
    assert hit({"n": 30}, {"n": 30}) and hit({"n": 30}, {"n": 30.0})
    assert not hit({"n": 30}, {"n": "30"})  # numeric strings are not coerced
    assert not hit({"n": "30"}, {"n": 30})
    assert not hit({"flag": True}, {"flag": 1})  # booleans are not numbers
    assert not hit({"n": 1}, {"n": True})
    assert hit({"flag": False}, {"flag": False})


def test_missing_field_reads_as_null() -> None:
    assert hit({"gone": None}, {})
    assert hit({"gone": {"ne": 5}}, {})
    assert hit({"gone": {"in": [None, 1]}}, {})
    assert not hit({"gone": 5}, {})


@pytest.mark.parametrize("op", ["lt", "lte", "gt", "gte"])
def test_null_and_missing_never_satisfy_ordering(op: str) -> None:
    assert not hit({"n": {op: 5}}, {"n": None})
    assert not hit({"n": {op: 5}}, {})
    assert not hit({"s": {op: "m"}}, {"s": None})


def test_prefix_needs_a_string_value() -> None:
    assert hit({"id": {"prefix": "5201"}}, {"id": "520102199003071234"})
    assert not hit({"id": {"prefix": "5201"}}, {"id": "440102199003071234"})
    assert not hit({"id": {"prefix": "5201"}}, {"id": 520102})
    assert not hit({"id": {"prefix": "5201"}}, {"id": None})
    assert not hit({"id": {"prefix": "5201"}}, {})


def test_incomparable_types_are_false_never_an_exception() -> None:
    for op in ("lt", "lte", "gt", "gte"):
        assert not hit({"n": {op: 5}}, {"n": "abc"})
        assert not hit({"n": {op: "m"}}, {"n": 7})
        assert not hit({"n": {op: 5}}, {"n": True})
        assert not hit({"n": {op: 5}}, {"n": [1]})
    assert hit({"n": {"ne": 5}}, {"n": "abc"})


def test_ordering_on_numbers_and_strings() -> None:
    assert hit({"n": {"gte": 18, "lt": 60}}, {"n": 18})
    assert not hit({"n": {"gte": 18, "lt": 60}}, {"n": 60})
    assert hit({"n": {"lte": 2.5}}, {"n": 2})
    assert hit({"d": {"gte": "2020-01-01", "lt": "2021-01-01"}}, {"d": "2020-06-30"})  # ISO dates sort
    assert not hit({"d": {"gt": "2020-01-01"}}, {"d": "2019-12-31"})


def test_all_conditions_are_anded() -> None:
    obj = {"district": "云岩区", "age": {"gte": 18}}
    assert hit(obj, {"district": "云岩区", "age": 30})
    assert not hit(obj, {"district": "云岩区", "age": 10})
    assert not hit(obj, {"district": "南明区", "age": 30})


# --- narrowing and canonical form ---------------------------------------------------------------


def test_narrower_only_adds_conditions() -> None:
    granted = parse_row_filter({"district": "云岩区", "age": {"lt": 60}})
    requested = parse_row_filter({"age": {"lt": 40}, "district": "云岩区"})
    effective = narrower(granted, requested)
    assert effective == [*granted, Condition("age", "lt", 40)]
    assert narrower(granted, []) == granted
    assert narrower([], requested) == requested
    # The caller cannot widen: a row the grant hides stays hidden whatever it asks for.
    wide = parse_row_filter({"district": {"in": ["云岩区", "南明区"]}})
    assert not matches(narrower(granted, wide), {"district": "南明区", "age": 30})


def test_canonical_filter_is_sorted_and_explicit() -> None:
    conds = parse_row_filter({"z": 1, "a": {"lt": 5, "gte": 1}, "m": {"in": ["b", "a", "b", 2, None, True]}})
    canonical = canonical_filter(conds)
    assert list(canonical) == ["a", "m", "z"]
    assert canonical == {
        "a": {"gte": 1, "lt": 5},
        "m": {"in": [None, True, 2, "a", "b"]},
        "z": {"eq": 1},
    }
    assert json.dumps(canonical) == json.dumps(canonical_filter(reversed(conds)))


def test_canonical_filter_keeps_a_repeated_operator_as_a_list() -> None:
    conds = narrower(parse_row_filter({"age": {"lt": 60}}), parse_row_filter({"age": {"lt": 40}}))
    canonical = canonical_filter(conds)
    assert canonical == {"age": [{"lt": 40}, {"lt": 60}]}
    assert parse_row_filter(canonical) == [Condition("age", "lt", 40), Condition("age", "lt", 60)]


def test_canonical_filter_drops_exact_repeats() -> None:
    conds = [Condition("a", "eq", 1), Condition("a", "eq", 1)]
    assert canonical_filter(conds) == {"a": {"eq": 1}}


# --- property: matches equals a naive evaluator ------------------------------------------------

FIELDS = ["a", "b", "c"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["", "a", "ab", "b", "5", "52", "5201"]),
)
orderable = st.one_of(
    st.integers(-5, 5), st.floats(-5, 5, allow_nan=False), st.sampled_from(["a", "ab", "b", "5"])
)
operator_objects = st.one_of(
    st.fixed_dictionaries({}, optional={"eq": scalars, "ne": scalars}).filter(bool),
    st.fixed_dictionaries({}, optional={op: orderable for op in ("lt", "lte", "gt", "gte")}).filter(bool),
    st.builds(lambda v: {"in": v}, st.lists(scalars, max_size=4)),
    st.builds(lambda v: {"prefix": v}, st.sampled_from(["", "5", "52", "a"])),
)
filters = st.dictionaries(st.sampled_from(FIELDS), st.one_of(scalars, operator_objects), max_size=3)
rows = st.dictionaries(
    st.sampled_from(FIELDS), st.one_of(scalars, st.lists(st.integers(), max_size=1)), max_size=3
)


def naive_equal(a: Any, b: Any) -> bool:
    """JSON equality spelled out by kind: null, boolean, number, string are four disjoint kinds."""

    def kind(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int | float):
            return "number"
        return type(v).__name__

    return kind(a) == kind(b) and a == b


def naive(obj: dict[str, Any], row: dict[str, Any]) -> bool:
    for field, spec in obj.items():
        value = row.get(field)
        ops = spec if isinstance(spec, dict) else {"eq": spec}
        for op, operand in ops.items():
            if op == "eq":
                ok = naive_equal(value, operand)
            elif op == "ne":
                ok = not naive_equal(value, operand)
            elif op == "in":
                ok = any(naive_equal(value, item) for item in operand)
            elif op == "prefix":
                ok = isinstance(value, str) and value[: len(operand)] == operand
            else:
                numbers = all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in (value, operand)
                )
                strings = isinstance(value, str) and isinstance(operand, str)
                if not (numbers or strings):
                    ok = False
                else:
                    ok = {"lt": value < operand, "lte": value <= operand, "gt": value > operand}.get(
                        op, value >= operand
                    )
            if not ok:
                return False
    return True


@settings(max_examples=400)
@given(obj=filters, row=rows)
def test_matches_equals_naive_evaluator(obj: dict[str, Any], row: dict[str, Any]) -> None:
    assert matches(parse_row_filter(obj), row) == naive(obj, row)


@settings(max_examples=200)
@given(obj=filters, extra=filters, row=rows)
def test_canonical_form_and_narrowing_preserve_meaning(
    obj: dict[str, Any], extra: dict[str, Any], row: dict[str, Any]
) -> None:
    conds = narrower(parse_row_filter(obj), parse_row_filter(extra))
    reparsed = parse_row_filter(canonical_filter(conds))
    assert matches(reparsed, row) == matches(conds, row) == (naive(obj, row) and naive(extra, row))
    assert canonical_filter(reparsed) == canonical_filter(conds)

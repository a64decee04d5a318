"""Access-mode shaping: projection, k-anonymous aggregation, and 核验 (verification) answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput
from ledger.gateway.columns import ColumnShaper, canonical_document, encode_lines, encode_rows
from ledger.gateway.masking import Masker
from ledger.gateway.shaping import (
    MAX_SUBJECTS,
    AggregateResult,
    Metric,
    aggregate,
    check_group_by,
    identifier_key,
    parse_metrics,
    project,
    verify,
)
from ledger.sharing.catalog import FieldSpec
from ledger.types import MaskingRule

# --- project ------------------------------------------------------------------------------------


def test_project_keeps_only_the_fields_in_their_order() -> None:
    rows = [{"a": 1, "b": 2, "secret": 3}, {"b": 5}]
    out = project(rows, ["b", "a"])
    assert out == [{"b": 2, "a": 1}, {"b": 5, "a": None}]
    assert [list(r) for r in out] == [["b", "a"], ["b", "a"]]
    assert project([], ["a"]) == []
    assert project(rows, []) == [{}, {}]


# --- aggregate ----------------------------------------------------------------------------------


def people(district: str, n: int, base: int = 4000, age: int = 30) -> list[dict[str, Any]]:
    return [{"district": district, "base": base + i * 100, "age": age + i, "name": f"p{i}"} for i in range(n)]


def test_group_of_four_is_suppressed_group_of_five_is_kept() -> None:
    rows = people("南明区", 4) + people("云岩区", 5)
    result = aggregate(rows, group_by=["district"], metrics=["count", "avg:base"], k=5)
    assert result.groups == [{"district": "云岩区", "count": 5, "avg:base": 4200.0}]
    assert result.suppressed_groups == 1
    assert not result.all_suppressed


def test_all_groups_suppressed() -> None:
    result = aggregate(
        people("南明区", 4) + people("云岩区", 3), group_by=["district"], metrics=["count"], k=5
    )
    assert result.groups == []
    assert result.suppressed_groups == 2
    assert result.all_suppressed


def test_no_rows_is_empty_but_not_suppressed() -> None:
    result = aggregate([], group_by=["district"], metrics=["count"], k=5)
    assert result == AggregateResult(
        groups=[], suppressed_groups=0, k=5, group_by=("district",), metrics=("count",)
    )
    assert not result.all_suppressed


def test_every_metric() -> None:
    rows = [*people("南明区", 5), {"district": "南明区", "base": None, "age": None}]
    [group] = aggregate(
        rows,
        group_by=["district"],
        metrics=["count", "sum:base", "avg:base", "min:base", "max:base", "min:age", "max:name"],
        k=5,
    ).groups
    assert group == {
        "district": "南明区",
        "count": 6,  # count is rows, nulls included
        "sum:base": 21000,  # metrics skip nulls, as SQL does
        "avg:base": 4200.0,
        "min:base": 4000,
        "max:base": 4400,
        "min:age": 30,
        "max:name": "p4",
    }


def test_avg_is_rounded_to_six_decimals_and_floats_sum_exactly() -> None:
    rows = [{"g": "x", "v": v} for v in (1, 1, 2, 0.1, 0.2)]
    [group] = aggregate(rows, group_by=["g"], metrics=["avg:v", "sum:v"], k=1).groups
    assert group["avg:v"] == 0.86
    assert group["sum:v"] == 4.3
    [thirds] = aggregate([{"v": 1}, {"v": 1}, {"v": 2}], group_by=[], metrics=["avg:v"], k=1).groups
    assert thirds == {"avg:v": 1.333333}


def test_metric_of_only_nulls_is_null() -> None:
    [group] = aggregate([{"v": None}] * 5, group_by=[], metrics=["sum:v", "avg:v", "max:v"], k=5).groups
    assert group == {"sum:v": None, "avg:v": None, "max:v": None}


def test_groups_sorted_by_dimension_values_as_strings() -> None:
    rows = [{"a": a, "b": b} for a in (10, 9, None) for b in ("y", "x") for _ in range(2)]
    result = aggregate(rows, group_by=["a", "b"], metrics=["count"], k=2)
    assert [(g["a"], g["b"]) for g in result.groups] == [
        (None, "x"),
        (None, "y"),
        (10, "x"),  # "10" < "9" as strings
        (10, "y"),
        (9, "x"),
        (9, "y"),
    ]


def test_group_keys_keep_types_apart() -> None:
    rows = [{"v": True}] * 2 + [{"v": 1}] * 2 + [{"v": "1"}] * 2
    result = aggregate(rows, group_by=["v"], metrics=["count"], k=2)
    assert sorted((type(g["v"]).__name__, g["count"]) for g in result.groups) == [
        ("bool", 2),
        ("int", 2),
        ("str", 2),
    ]


def test_group_keys_merge_equal_numbers_and_keep_other_types_apart() -> None:
    """1 and 1.0 are one number (as in JSON); True, "1", None and a str subclass are not."""

    class Code(str):
        pass

    rows: list[dict[str, Any]] = [
        {"v": 1},
        {"v": 1.0},
        {"v": True},
        {"v": "1"},
        {"v": None},
        {"v": Code("1")},
        {},
    ]
    result = aggregate(rows, group_by=["v"], metrics=["count"], k=1)
    assert sorted((type(g["v"]).__name__, g["count"]) for g in result.groups) == [
        ("Code", 1),
        ("NoneType", 2),  # a missing field reads as null
        ("bool", 1),
        ("int", 2),
        ("str", 1),
    ]


def test_without_group_by_one_global_group() -> None:
    result = aggregate(people("南明区", 7), group_by=[], metrics=["count", "max:age"], k=5)
    assert result.groups == [{"count": 7, "max:age": 36}]


def test_as_json() -> None:
    result = aggregate(
        people("南明区", 5) + people("云岩区", 1), group_by=["district"], metrics=["count"], k=5
    )
    assert result.as_json() == {
        "group_by": ["district"],
        "metrics": ["count"],
        "k": 5,
        "groups": [{"district": "南明区", "count": 5}],
        "suppressed_groups": 1,
    }


# --- aggregate rejections ------------------------------------------------------------------------


def rejected(code: str, fragment: str, **kwargs: Any) -> None:
    arguments: dict[str, Any] = {"group_by": ["district"], "metrics": ["count"], "k": 5, **kwargs}
    rows = arguments.pop("rows", people("南明区", 5))
    with pytest.raises(InvalidInput) as info:
        aggregate(rows, **arguments)
    assert info.value.code == code
    assert fragment in info.value.message, info.value.message


@pytest.mark.parametrize(
    ("metrics", "fragment"),
    [
        ([], "non-empty list of metrics"),
        ("count", "non-empty list of metrics"),
        (["median:base"], "unknown metric 'median:base'"),
        (["sum"], "unknown metric 'sum'"),
        (["sum:"], "unknown metric 'sum:'"),
        (["COUNT"], "unknown metric 'COUNT'"),
        (["count", "count"], "requested twice"),
        ([7], "metric must be a string"),
        (["count"] * 33, "at most 32 metrics"),
    ],
)
def test_rejects_bad_metrics(metrics: Any, fragment: str) -> None:
    rejected("invalid_metric", fragment, metrics=metrics)


def test_rejects_metric_on_field_not_granted() -> None:
    rejected(
        "invalid_metric",
        "names field 'base', which is not granted",
        metrics=["sum:base"],
        allowed_fields=["district"],
    )


@pytest.mark.parametrize("metric", ["sum:name", "avg:name", "sum:flag", "avg:flag"])
def test_rejects_sum_and_avg_of_non_numbers(metric: str) -> None:
    rows = [{"district": "d", "name": "x", "flag": True}] * 5
    rejected("invalid_metric", "needs numeric values", metrics=[metric], rows=rows)


def test_rejects_min_of_mixed_types() -> None:
    rows = [{"district": "d", "v": 1}] * 3 + [{"district": "d", "v": "x"}] * 3
    rejected("invalid_metric", "mixes numbers and text", metrics=["min:v"], rows=rows)
    rejected(
        "invalid_metric",
        "needs numeric or text values",
        metrics=["max:v"],
        rows=[{"district": "d", "v": True}],
    )


def test_non_numeric_value_in_a_suppressed_group_still_rejected() -> None:
    rows = [*people("南明区", 5), {"district": "云岩区", "base": "n/a"}]
    rejected("invalid_metric", "needs numeric values", metrics=["sum:base"], rows=rows)


@pytest.mark.parametrize(
    ("group_by", "fragment"),
    [
        (["salary"], "group_by field 'salary' is not granted"),
        (["district", "district"], "names a field twice"),
        ("district", "must be a list"),
        ([3], "group_by field 3 is not granted"),
        ([f"f{i}" for i in range(9)], "at most 8 group_by fields"),
    ],
)
def test_rejects_bad_group_by(group_by: Any, fragment: str) -> None:
    rejected("invalid_group_by", fragment, group_by=group_by, allowed_fields=["district", "base"])


def test_rejects_group_by_clashing_with_a_metric_name() -> None:
    rejected("invalid_group_by", "clashes with a metric", group_by=["count"], metrics=["count"])


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_rejects_bad_k(k: Any) -> None:
    rejected("invalid_k", "k must be a positive integer", k=k)


def test_parse_metrics_and_check_group_by_directly() -> None:
    assert parse_metrics(["count", "avg:base"], allowed_fields={"base"}) == [
        Metric("count"),
        Metric("avg", "base"),
    ]
    assert [m.name for m in parse_metrics(["max:x"])] == ["max:x"]
    assert check_group_by(("a", "b"), allowed_fields={"a", "b"}) == ["a", "b"]


# --- verify -------------------------------------------------------------------------------------

ID_X = "52010219900307123X"
ID_OTHER = "520103198501011234"
ID_ABSENT = "520111200001010011"
INSURED = [{"id_number": ID_X, "insured": True, "name": "张伟"}, {"id_number": ID_OTHER, "insured": True}]


def test_verify_answers_yes_and_no_in_request_order_with_duplicates() -> None:
    answers = verify(INSURED, key="id_number", subjects=[ID_ABSENT, ID_X, ID_ABSENT, ID_OTHER, ID_X])
    assert answers == [
        {"subject": ID_ABSENT, "match": False},
        {"subject": ID_X, "match": True},
        {"subject": ID_ABSENT, "match": False},
        {"subject": ID_OTHER, "match": True},
        {"subject": ID_X, "match": True},
    ]


def test_verify_returns_nothing_but_the_answers() -> None:
    [answer] = verify(INSURED, key="id_number", subjects=[ID_X])
    assert set(answer) == {"subject", "match"}
    assert "张伟" not in repr(answer)


def test_verify_normalises_identifiers() -> None:
    lower = ID_X.lower()
    assert verify(INSURED, key="id_number", subjects=[lower, f" {ID_X} "]) == [
        {"subject": lower, "match": True},  # echoed as asked
        {"subject": f" {ID_X} ", "match": True},
    ]
    rows = [{"id_number": ID_X.lower()}]  # a source that stores a lower-case x
    assert verify(rows, key="id_number", subjects=[ID_X]) == [{"subject": ID_X, "match": True}]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in ID_X)
    assert verify(INSURED, key="id_number", subjects=[full_width])[0]["match"]
    assert identifier_key("91520102100000008k") == "91520102100000008K"
    assert identifier_key("云岩区") == "云岩区"  # only plain ASCII identifiers are case-folded
    assert identifier_key(5) == 5


def test_verify_does_not_coerce_types() -> None:
    rows: list[dict[str, Any]] = [{"code": 5201}, {"code": None}]
    assert verify(rows, key="code", subjects=["5201", "None"]) == [
        {"subject": "5201", "match": False},
        {"subject": "None", "match": False},
    ]


def test_verify_on_missing_key_matches_nothing() -> None:
    assert verify(INSURED, key="phone", subjects=[ID_X]) == [{"subject": ID_X, "match": False}]
    assert verify([], key="id_number", subjects=[]) == []


def test_verify_accepts_the_limit_and_rejects_one_more() -> None:
    assert len(verify(INSURED, key="id_number", subjects=[ID_X] * MAX_SUBJECTS)) == MAX_SUBJECTS
    with pytest.raises(InvalidInput) as info:
        verify(INSURED, key="id_number", subjects=[ID_X] * (MAX_SUBJECTS + 1))
    assert info.value.code == "too_many_subjects"


@pytest.mark.parametrize("subjects", [ID_X, [ID_X, 5], [""], ["  "], [None], 17])
def test_verify_rejects_bad_subjects(subjects: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        verify(INSURED, key="id_number", subjects=subjects)
    assert info.value.code == "invalid_subject"


# --- column-wise shaping and encoding of raw and masked rows -----------------------------------

NAMES = ["id_number", "name", "district", "salary"]
BATCH = [
    ("52010219900307123X", "欧阳娜娜", "云岩区", 9000),
    ("520102199003071234", "张伟", "南明区", None),
    (None, "李强", "云岩区", 5300),
]


def shaped(shaper: ColumnShaper, batch: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        dict(zip(shaper.wanted, values, strict=True)) for values in zip(*shaper.columns(batch), strict=True)
    ]


def test_column_shaper_projects_in_the_requested_order_and_collects_id_numbers() -> None:
    shaper = ColumnShaper(names=NAMES, wanted=["district", "name"], id_fields=["id_number"])
    assert shaped(shaper, BATCH) == [{"district": d, "name": n} for _, n, d, _ in BATCH]
    # The ID numbers of the rows shaped, though the column itself is not delivered.
    assert shaper.id_values == {"52010219900307123X", "520102199003071234", None}
    assert shaper.columns([]) == [(), ()]


def test_column_shaper_masks_each_masked_column_as_mask_row_does() -> None:
    masker = Masker(pseudonym_key=b"k" * 32, scope="grant-1")
    fields = [
        FieldSpec("id_number", "string", True, MaskingRule.ID_NUMBER),
        FieldSpec("name", "string", True, MaskingRule.NAME),
        FieldSpec("district", "string"),
        FieldSpec("salary", "integer", True, MaskingRule.NONE),  # sensitive, no rule: redacted
    ]
    masks = {
        f.name: f.masking if f.masking is not MaskingRule.NONE else MaskingRule.REDACT
        for f in fields
        if f.sensitive
    }
    shaper = ColumnShaper(names=NAMES, wanted=NAMES, id_fields=["id_number"], masks=masks, masker=masker)
    expected = [masker.mask_row(dict(zip(NAMES, row, strict=True)), fields) for row in BATCH]
    assert shaped(shaper, BATCH) == expected
    assert expected[0] == {
        "id_number": "520102********123X",
        "name": "欧阳**",
        "district": "云岩区",
        "salary": "***",
    }
    assert expected[1]["salary"] is None  # absence is not personal data


def test_column_shaper_needs_a_masker_for_masks() -> None:
    with pytest.raises(ValueError, match="masker"):
        ColumnShaper(names=NAMES, wanted=NAMES, id_fields=[], masks={"name": MaskingRule.NAME})


_keys = st.text(max_size=6)  # any Unicode: the UTF-16 ordering of RFC 8785 §3.2.3 matters
_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**54), max_value=2**54)  # past ±(2**53 - 1): refused by both
    | st.floats()  # NaN and infinities: refused by both
    | st.text(max_size=8)  # lone surrogates included: refused by both
)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]], int]:
    fields = draw(st.lists(_keys, unique=True, max_size=5))
    count = draw(st.integers(min_value=0, max_value=6))
    kinds = [draw(st.sampled_from(["text", "mixed"])) for _ in fields]
    columns = [
        draw(st.lists(st.text(max_size=8) if kind == "text" else _values, min_size=count, max_size=count))
        for kind in kinds
    ]
    return fields, columns, count


def _reference(head: dict[str, Any], fields: list[str], columns: list[list[Any]], count: int) -> bytes:
    rows = [{f: columns[i][n] for i, f in enumerate(fields)} for n in range(count)]
    return canonical_json({**head, "rows": rows})


@given(
    _tables(),
    st.dictionaries(st.text(max_size=6).filter(lambda k: k != "rows"), _values | st.lists(_keys), max_size=4),
)
def test_encoded_rows_and_document_equal_canonical_json(
    table: tuple[list[str], list[list[Any]], int], head: dict[str, Any]
) -> None:
    """The column-wise encoding gives exactly ``canonical_json``'s bytes (itself checked against
    the ``rfc8785`` package), or the same refusal."""
    fields, columns, count = table
    try:
        expected = _reference(head, fields, columns, count)
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as info:
            canonical_document(head, "rows", encode_rows(fields, columns, count))
        assert info.value.code == exc.code == "invalid_json"
        return
    texts = encode_rows(fields, columns, count)
    assert canonical_document(head, "rows", texts) == expected
    rows = [{f: columns[i][n] for i, f in enumerate(fields)} for n in range(count)]
    assert encode_lines(texts) == b"".join(canonical_json(row) + b"\n" for row in rows)


def test_encode_rows_keeps_percent_signs_and_orders_keys_by_utf16() -> None:
    texts = encode_rows(["%s", "😀", "דּ", "a"], [["x"], [1], [None], [True]], 1)
    assert texts == ['{"%s":"x","a":true,"😀":1,"דּ":null}']
    assert encode_rows([], [], 2) == ["{}", "{}"]
    with pytest.raises(ValueError, match="one value per row"):
        encode_rows(["a"], [[1, 2]], 1)
    with pytest.raises(ValueError, match="in the head"):
        canonical_document({"rows": 1}, "rows", [])


def test_subject_hashes_spliced_into_an_encoded_leaf() -> None:
    """The gateway writes its subject hashes into the leaf's ``"subjects":[]`` (the same bytes as
    encoding the whole leaf), and refuses anything JSON would have to escape."""
    from ledger.gateway.service import _with_subjects

    hashes = ["0x" + "ab" * 32, "0x" + "cd" * 32]
    leaf = {"note": '"subjects":[]', "subjects": [], "z": 1}
    assert _with_subjects(canonical_json(leaf), hashes) == canonical_json({**leaf, "subjects": hashes})
    assert _with_subjects(canonical_json(leaf), []) == canonical_json(leaf)
    for bad in (['0x"' + "ab" * 31], ["0x\\" + "ab" * 31], ["0x ab"], ["0xé"], [*hashes, "0x\n"]):
        with pytest.raises(ValueError, match="ASCII letters and digits"):
            _with_subjects(canonical_json(leaf), bad)

"""The row-filter grammar of a grant's scope, and the evaluator the gateway runs on every row.

A grant may limit which rows its grantee sees (the "scope" of DESIGN.md: fields, row filter, …), and
a caller may narrow its own grant further. The grammar is deliberately tiny — a JSON object whose
entries are all AND-ed — so that a provider can read what it signed, and it is hashed on chain:

=========================================== ==========================================
``{"f": v}``                                ``f`` equals ``v``
``{"f": {"eq"|"ne"|"lt"|"lte"|"gt"|"gte": v}}`` comparison
``{"f": {"in": [v, …]}}``                   ``f`` equals one of at most 1000 values
``{"f": {"prefix": "5201"}}``               ``f`` is a string starting with the prefix
``{"f": {"gte": 1, "lt": 9}}``              several operators on one field: AND
``{"f": [{"lt": 9}, {"lt": 5}]}``           a list of operator objects: AND (lets the same
                                            operator appear twice, e.g. after narrowing)
=========================================== ==========================================

Values are JSON scalars (string, number, boolean, null) that every source can take: numbers finite
(``1e999`` overflows a double: refused, not read as infinity) and integers within ±(2**53 − 1) (the
integers a JSON number carries exactly, RFC 7493 §2.2 — the same bound as the canonical form that
hashes the query), strings and field names without U+0000 (PostgreSQL text cannot hold it) or a lone
surrogate (not UTF-8, so no database driver can bind it). :func:`load_row_filter` reads the query-string
form of a filter with those rules applied while parsing. Evaluation never coerces types: ``"30"`` is
not ``30``, ``true`` is not ``1``, and an ordering between a string and a number is simply false — a
row filter that errs must err by showing fewer rows, never by raising half-way through a delivery.
A missing field reads as null; null satisfies no ordering and no prefix (as SQL's NULL), but it does
satisfy ``{"f": null}`` and ``{"f": {"ne": 5}}``.

This module is pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidInput

__all__ = [
    "MAX_CONDITIONS",
    "MAX_IN_VALUES",
    "OPERATORS",
    "Condition",
    "canonical_filter",
    "load_row_filter",
    "matches",
    "narrower",
    "parse_row_filter",
]

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix")
MAX_IN_VALUES = 1000
MAX_CONDITIONS = 256
MAX_FIELD_NAME = 64
MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 8  # the grammar nests at most 4 deep ({"f": [{"in": [v]}]}); deeper text is refused unparsed
_ORDERING = frozenset({"lt", "lte", "gt", "gte"})
_CODE = "invalid_row_filter"

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Condition:
    """One AND-ed term: ``row[field] <op> value``; for ``in``, ``value`` is a tuple of scalars."""

    field: str
    op: str
    value: Any


def _reject(message: str, **details: Any) -> InvalidInput:
    return InvalidInput(f"row filter: {message}", code=_CODE, **details)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


_UNBINDABLE = re.compile("[\x00\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    """Why a string cannot reach a data source, or None: U+0000 (PostgreSQL's text type refuses it)
    and lone surrogates (not encodable as UTF-8, so SQLite and psycopg cannot bind them)."""
    found = _UNBINDABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains U+0000 (NUL) at position {found.start()}"
    code_point = ord(found.group())
    return f"contains a lone surrogate U+{code_point:04X} at position {found.start()} (not valid Unicode)"


def _number_problem(value: int | float) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return (
            f"{value!r} is not a finite number (NaN, Infinity and numbers beyond ±1.8e308, such as "
            "1e999, are refused rather than read as infinity)"
        )
    if isinstance(value, int) and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        digits = len(str(abs(value)))
        return (
            f"an integer of {digits} digits is outside ±(2**53 - 1) = ±{MAX_SAFE_INTEGER}, the range a "
            "JSON number holds exactly (RFC 7493 §2.2)"
        )
    return None


def _scalar(field: str, op: str, value: Any) -> Scalar:
    if isinstance(value, dict | list | tuple):
        raise _reject(
            f"field {field!r} operator {op!r}: value must be a string, number, boolean or null, "
            f"not a nested {'object' if isinstance(value, dict) else 'list'}",
            field=field,
            op=op,
        )
    if not _is_scalar(value):
        raise _reject(
            f"field {field!r} operator {op!r}: value must be a string, finite number, boolean or null, "
            f"got {type(value).__name__}",
            field=field,
            op=op,
        )
    problem = None
    if isinstance(value, str):
        problem = _text_problem(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        problem = _number_problem(value)
    if problem is not None:
        raise _reject(f"field {field!r} operator {op!r}: value {problem}", field=field, op=op)
    return value  # type: ignore[no-any-return]


def _operand(field: str, op: str, value: Any) -> Any:
    if op == "in":
        if not isinstance(value, list | tuple):
            raise _reject(
                f"field {field!r} operator 'in' needs a list, got {type(value).__name__}", field=field
            )
        if len(value) > MAX_IN_VALUES:
            raise _reject(
                f"field {field!r} operator 'in' has {len(value)} values, at most {MAX_IN_VALUES} allowed",
                field=field,
            )
        return tuple(_scalar(field, op, item) for item in value)
    scalar = _scalar(field, op, value)
    if op == "prefix" and not isinstance(scalar, str):
        raise _reject(
            f"field {field!r} operator 'prefix' needs a string, got {type(value).__name__}", field=field
        )
    if op in _ORDERING and (scalar is None or isinstance(scalar, bool)):
        raise _reject(
            f"field {field!r} operator {op!r} needs a string or a number, got {json.dumps(scalar)}",
            field=field,
            op=op,
        )
    return scalar


def _operators(field: str, spec: Any) -> list[Condition]:
    if not isinstance(spec, dict) or not spec:
        raise _reject(f"field {field!r}: an operator object must be a non-empty object", field=field)
    found = []
    for op, value in spec.items():
        if op not in OPERATORS:
            raise _reject(
                f"field {field!r}: unknown operator {op!r} (allowed: {', '.join(OPERATORS)})",
                field=field,
                op=op,
            )
        found.append(Condition(field, op, _operand(field, op, value)))
    return found


def parse_row_filter(obj: Any, *, allowed_fields: Collection[str] | None = None) -> list[Condition]:
    """Parse a row filter into its AND-ed conditions, or raise ``InvalidInput`` (``invalid_row_filter``).

    ``allowed_fields`` (the grant's fields) rejects a filter on a field the caller may not see: a
    filter is an oracle — ``{"salary": {"gt": 9000}}`` on a hidden field leaks it row by row.
    ``{}`` is the empty filter (every row).
    """
    if not isinstance(obj, dict):
        raise _reject(f"must be a JSON object, got {_json_kind(obj)}")
    conditions: list[Condition] = []
    for field, spec in obj.items():
        if not isinstance(field, str) or not field or len(field) > MAX_FIELD_NAME:
            raise _reject(f"field name must be a string of 1-{MAX_FIELD_NAME} characters, got {field!r}")
        problem = _text_problem(field)
        if problem is not None:
            raise _reject(f"field name {field!r} {problem}")
        if allowed_fields is not None and field not in allowed_fields:
            raise _reject(f"field {field!r} is not one of the granted fields", field=field)
        if isinstance(spec, dict):
            conditions += _operators(field, spec)
        elif isinstance(spec, list):
            if not spec or not all(isinstance(item, dict) for item in spec):
                raise _reject(
                    f"field {field!r}: a list must hold operator objects; for a set of values "
                    'write {"in": [...]}',
                    field=field,
                )
            for item in spec:
                conditions += _operators(field, item)
        else:
            conditions.append(Condition(field, "eq", _scalar(field, "eq", spec)))
        if len(conditions) > MAX_CONDITIONS:
            raise _reject(f"more than {MAX_CONDITIONS} conditions")
    return conditions


_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)


def _depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, brackets inside strings not counted (no parsing:
    ``json.loads`` recurses, and a process that raised the recursion limit can overflow the C stack)."""
    depth = deepest = 0
    for char in _JSON_STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > len(str(MAX_SAFE_INTEGER)):  # before int(): Python refuses > 4300 digits, and it is slow
        raise _reject(
            f"an integer of {digits} digits is outside ±(2**53 - 1) = ±{MAX_SAFE_INTEGER}, the range a "
            "JSON number holds exactly (RFC 7493 §2.2)"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else text[:20] + "…"
        raise _reject(f"the number {shown} is beyond ±1.8e308 (a double overflows to infinity): refused")
    return value


def _parse_constant(name: str) -> Any:
    raise _reject(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise _reject(
            f"{', '.join(repr(k) for k in twice)} named twice in one object (the second would silently "
            'replace the first); for two conditions on one field write {"f": [{...}, {...}]}'
        )
    return dict(pairs)


def load_row_filter(text: str) -> dict[str, Any]:
    """The JSON text of a row filter (the ``filter=`` query parameter) as an object, or raise
    ``InvalidInput`` (``invalid_row_filter``) saying what is wrong with the text: not JSON (and
    where), not an object, nested deeper than the grammar, ``NaN``/``Infinity``, a number a double
    cannot hold (``1e999``), an integer beyond ±(2**53 − 1), a key twice in one object. The
    object still goes through :func:`parse_row_filter`."""
    if _depth(text) > MAX_DEPTH:
        raise _reject(f"nested deeper than {MAX_DEPTH} levels (the filter grammar needs at most 4)")
    try:
        obj = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_unique_keys,
        )
    except InvalidInput:
        raise
    except json.JSONDecodeError as exc:
        raise _reject(f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(obj, dict):
        raise _reject(f"must be a JSON object, got {_json_kind(obj)}")
    return obj


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality without Python's coercions: ``True != 1``, ``"1" != 1``; ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _ordered(a: Any, b: Any, op: str) -> bool:
    if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "lt":
        return bool(a < b)
    if op == "lte":
        return bool(a <= b)
    if op == "gt":
        return bool(a > b)
    return bool(a >= b)


def _holds(cond: Condition, value: Any) -> bool:
    if cond.op == "eq":
        return _equal(value, cond.value)
    if cond.op == "ne":
        return not _equal(value, cond.value)
    if cond.op == "in":
        return any(_equal(value, item) for item in cond.value)
    if cond.op == "prefix":
        return isinstance(value, str) and value.startswith(cond.value)
    return _ordered(value, cond.value, cond.op)


def matches(conditions: Iterable[Condition], row: Mapping[str, Any]) -> bool:
    """True if ``row`` satisfies every condition (the empty filter matches every row)."""
    return all(_holds(cond, row.get(cond.field)) for cond in conditions)


def narrower(granted: Sequence[Condition], requested: Sequence[Condition]) -> list[Condition]:
    """The effective filter when a caller narrows its grant: ``granted AND requested``.

    Only ever adds conditions, so the result can never show a row the grant's filter hides.
    Exact repeats are dropped; order is the grant's conditions first.
    """
    result = list(granted)
    for cond in requested:
        if cond not in result:
            result.append(cond)
    return result


def _value_key(value: Any) -> tuple[int, str]:
    rank = 0 if value is None else 1 if isinstance(value, bool) else 2 if _is_number(value) else 3
    return rank, json.dumps(value, ensure_ascii=False)


def _json_value(cond: Condition) -> Any:
    if cond.op == "in":
        return [v for _, v in sorted({_value_key(v): v for v in cond.value}.items())]
    return cond.value


def canonical_filter(conditions: Iterable[Condition]) -> dict[str, Any]:
    """The conditions back in the JSON grammar, in one canonical form, for hashing and display.

    Fields sorted, every equality written as ``{"eq": v}``, ``in`` lists sorted and de-duplicated,
    exact repeats dropped. A field whose operators are all distinct gets one operator object; a field
    with one operator twice (``lt 9`` AND ``lt 5`` after narrowing) gets a sorted list of one-operator
    objects, so nothing is merged and ``parse_row_filter(canonical_filter(c))`` means exactly ``c``.
    """
    by_field: dict[str, dict[tuple[str, tuple[int, str]], Any]] = {}
    for cond in conditions:
        value = _json_value(cond)
        key = (cond.op, (0, json.dumps(value, ensure_ascii=False)))
        by_field.setdefault(cond.field, {})[key] = value
    result: dict[str, Any] = {}
    for field in sorted(by_field):
        terms = sorted(by_field[field].items())
        ops = [op for (op, _), _ in terms]
        if len(set(ops)) == len(ops):
            result[field] = {op: value for (op, _), value in terms}
        else:
            result[field] = [{op: value} for (op, _), value in terms]
    return result

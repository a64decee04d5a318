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

Values are JSON scalars (string, number, boolean, null). Evaluation never coerces types: ``"30"`` is
not ``30``, ``true`` is not ``1``, and an ordering between a string and a number is simply false — a
row filter that errs must err by showing fewer rows, never by raising half-way through a delivery.
A missing field reads as null; null satisfies no ordering and no prefix (as SQL's NULL), but it does
satisfy ``{"f": null}`` and ``{"f": {"ne": 5}}``.

This module is pure: no I/O.
"""

from __future__ import annotations

import json
import math
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
    "matches",
    "narrower",
    "parse_row_filter",
]

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix")
MAX_IN_VALUES = 1000
MAX_CONDITIONS = 256
MAX_FIELD_NAME = 64
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
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


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
        raise _reject(f"must be a JSON object, got {type(obj).__name__}")
    conditions: list[Condition] = []
    for field, spec in obj.items():
        if not isinstance(field, str) or not field or len(field) > MAX_FIELD_NAME:
            raise _reject(f"field name must be a string of 1-{MAX_FIELD_NAME} characters, got {field!r}")
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

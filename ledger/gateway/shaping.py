"""What leaves the gateway in each access mode, applied to rows that already passed the row filter.

- ``raw`` / ``masked``: :func:`project` keeps only the granted fields (GB/T 35273-2020 §6.1, 最小必要:
  a grantee gets the fields it was granted and nothing else); masking is ``ledger.gateway.masking``.
- ``aggregate``: :func:`aggregate` returns counts and sums per group, and suppresses every group of
  fewer than *k* rows — the k-anonymity threshold (Sweeney 2002; GB/T 37964-2019 个人信息去标识化指南
  §5.3 "k-匿名"), so a statistic about a group of one person cannot be read as that person's data.
- ``verify`` (核验): :func:`verify` answers only "is there a row whose key equals this value?" for
  each value the caller already holds, the way identity-verification services answer 一致/不一致
  without returning the record.

This module is pure: no I/O.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import InvalidInput

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "MAX_GROUP_BY",
    "MAX_METRICS",
    "MAX_SUBJECTS",
    "AggregateResult",
    "Metric",
    "aggregate",
    "check_group_by",
    "identifier_key",
    "parse_metrics",
    "project",
    "verify",
]

AGGREGATE_FUNCTIONS = ("sum", "avg", "min", "max")
MAX_SUBJECTS = 1000
MAX_GROUP_BY = 8
MAX_METRICS = 32
AVG_DIGITS = 6


def project(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[dict[str, Any]]:
    """Each row reduced to ``fields``, in that order; a field the row lacks reads as ``None``."""
    return [{name: row.get(name) for name in fields} for row in rows]


@dataclass(frozen=True)
class Metric:
    """``count``, or ``<function>:<field>`` with function one of :data:`AGGREGATE_FUNCTIONS`."""

    function: str
    field: str | None = None

    @property
    def name(self) -> str:
        return self.function if self.field is None else f"{self.function}:{self.field}"


def parse_metrics(metrics: Sequence[str], *, allowed_fields: Collection[str] | None = None) -> list[Metric]:
    """Validate the requested metrics (code ``invalid_metric``): known function, granted field, no repeats."""
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise InvalidInput("aggregate needs a non-empty list of metrics", code="invalid_metric")
    if len(metrics) > MAX_METRICS:
        raise InvalidInput(f"at most {MAX_METRICS} metrics, got {len(metrics)}", code="invalid_metric")
    parsed: list[Metric] = []
    for text in metrics:
        if not isinstance(text, str):
            raise InvalidInput(f"metric must be a string, got {type(text).__name__}", code="invalid_metric")
        if text == "count":
            metric = Metric("count")
        else:
            function, sep, name = text.partition(":")
            if not sep or function not in AGGREGATE_FUNCTIONS or not name:
                raise InvalidInput(
                    f"unknown metric {text!r}: use count or {'|'.join(AGGREGATE_FUNCTIONS)}:<field>",
                    code="invalid_metric",
                    metric=text,
                )
            if allowed_fields is not None and name not in allowed_fields:
                raise InvalidInput(
                    f"metric {text!r} names field {name!r}, which is not granted",
                    code="invalid_metric",
                    metric=text,
                )
            metric = Metric(function, name)
        if metric in parsed:
            raise InvalidInput(f"metric {text!r} is requested twice", code="invalid_metric", metric=text)
        parsed.append(metric)
    return parsed


def check_group_by(group_by: Sequence[str], *, allowed_fields: Collection[str] | None = None) -> list[str]:
    """Validate the grouping dimensions (code ``invalid_group_by``): granted fields, no repeats."""
    if isinstance(group_by, str) or not isinstance(group_by, Sequence):
        raise InvalidInput("group_by must be a list of field names", code="invalid_group_by")
    if len(group_by) > MAX_GROUP_BY:
        raise InvalidInput(f"at most {MAX_GROUP_BY} group_by fields", code="invalid_group_by")
    for name in group_by:
        if not isinstance(name, str) or (allowed_fields is not None and name not in allowed_fields):
            raise InvalidInput(f"group_by field {name!r} is not granted", code="invalid_group_by", field=name)
    if len(set(group_by)) != len(group_by):
        raise InvalidInput("group_by names a field twice", code="invalid_group_by")
    return list(group_by)


@dataclass(frozen=True)
class AggregateResult:
    """The groups that reached the threshold ``k``, and how many did not.

    ``groups`` hold the dimension values and one entry per metric (keyed by the metric's text,
    e.g. ``"avg:monthly_base"``), sorted by their dimension values read as strings.
    """

    groups: list[dict[str, Any]]
    suppressed_groups: int
    k: int
    group_by: tuple[str, ...] = field(default=())
    metrics: tuple[str, ...] = field(default=())

    @property
    def all_suppressed(self) -> bool:
        """True when there was data but every group fell below ``k`` (the service answers 403)."""
        return not self.groups and self.suppressed_groups > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "group_by": list(self.group_by),
            "metrics": list(self.metrics),
            "k": self.k,
            "groups": [dict(group) for group in self.groups],
            "suppressed_groups": self.suppressed_groups,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _group_key(value: Any) -> tuple[str, Any]:
    # Type-tagged so that True, 1 and "1" stay three groups (Python would merge True and 1).
    tag = _TAGS.get(type(value))  # the JSON scalars a source delivers, without isinstance chains
    if tag is not None:
        return tag, value
    if isinstance(value, bool):
        return "bool", value
    if _is_number(value):
        return "number", value
    return type(value).__name__, value


_TAGS: dict[type, str] = {str: "str", bool: "bool", int: "number", float: "number", type(None): "NoneType"}


def _sort_key(values: tuple[Any, ...]) -> tuple[tuple[bool, str, str], ...]:
    return tuple((v is not None, str(v), type(v).__name__) for v in values)


def _compute(metric: Metric, rows: list[Mapping[str, Any]]) -> Any:
    if metric.field is None:
        return len(rows)
    values = [row.get(metric.field) for row in rows]
    present = [v for v in values if v is not None]  # as SQL: NULLs are skipped
    if not present:
        return None
    if metric.function in ("sum", "avg"):
        if any(isinstance(v, float) for v in present):
            total: int | float = math.fsum(present)
        else:
            total = sum(present)
        return total if metric.function == "sum" else round(total / len(present), AVG_DIGITS)
    return min(present) if metric.function == "min" else max(present)


def _check_values(metric: Metric, rows: Iterable[Mapping[str, Any]]) -> None:
    if metric.field is None:
        return
    kinds: set[str] = set()
    for row in rows:
        value = row.get(metric.field)
        if value is None:
            continue
        if _is_number(value) and math.isfinite(value):
            kinds.add("number")
        elif isinstance(value, str) and metric.function in ("min", "max"):
            kinds.add("string")
        else:
            need = "numeric" if metric.function in ("sum", "avg") else "numeric or text"
            raise InvalidInput(
                f"metric {metric.name!r} needs {need} values, field {metric.field!r} holds {value!r}",
                code="invalid_metric",
                metric=metric.name,
            )
    if len(kinds) > 1:
        raise InvalidInput(
            f"metric {metric.name!r}: field {metric.field!r} mixes numbers and text",
            code="invalid_metric",
            metric=metric.name,
        )


def aggregate(
    rows: Iterable[Mapping[str, Any]],
    *,
    group_by: Sequence[str],
    metrics: Sequence[str],
    k: int,
    allowed_fields: Collection[str] | None = None,
) -> AggregateResult:
    """Group ``rows`` by ``group_by``, compute ``metrics`` per group, suppress groups under ``k`` rows.

    Suppression is by rows in the group, before any metric is released (k-anonymity on the
    grouping dimensions). Metrics skip nulls; ``avg`` is rounded to 6 decimals. No rows, no groups.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}", code="invalid_k")
    dims = check_group_by(group_by, allowed_fields=allowed_fields)
    parsed = parse_metrics(metrics, allowed_fields=allowed_fields)
    clash = {m.name for m in parsed} & set(dims)
    if clash:
        raise InvalidInput(
            f"group_by field {sorted(clash)[0]!r} clashes with a metric's name", code="invalid_group_by"
        )
    materialised = list(rows)
    for metric in parsed:
        _check_values(metric, materialised)
    groups: dict[tuple[tuple[str, Any], ...], tuple[tuple[Any, ...], list[Mapping[str, Any]]]] = {}
    if not dims:  # no grouping: all rows are one group
        if materialised:
            groups[()] = ((), materialised)
    else:
        columns = [[row.get(name) for row in materialised] for name in dims]  # one pass per dimension
        keys = [[_group_key(v) for v in column] for column in columns]
        for row, values, key in zip(
            materialised, zip(*columns, strict=True), zip(*keys, strict=True), strict=True
        ):
            groups.setdefault(key, (values, []))[1].append(row)
    released: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    suppressed = 0
    for values, members in groups.values():
        if len(members) < k:
            suppressed += 1
            continue
        out: dict[str, Any] = dict(zip(dims, values, strict=True))
        out.update({metric.name: _compute(metric, members) for metric in parsed})
        released.append((values, out))
    released.sort(key=lambda item: _sort_key(item[0]))
    return AggregateResult(
        groups=[out for _, out in released],
        suppressed_groups=suppressed,
        k=k,
        group_by=tuple(dims),
        metrics=tuple(m.name for m in parsed),
    )


def identifier_key(value: Any) -> Any:
    """Identifiers compare normalised: NFKC, stripped, and upper-cased when plain ASCII letters and
    digits — so ``...123x`` finds ``...123X`` (GB 11643-1999 writes the check value 10 as ``X``) and a
    lower-case credit code finds its record (GB 32100-2015 uses upper case only)."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).strip()
    return text.upper() if text.isascii() and text.isalnum() else text


def verify(rows: Iterable[Mapping[str, Any]], *, key: str, subjects: Sequence[str]) -> list[dict[str, Any]]:
    """核验: for each subject, in request order, whether some row has ``row[key]`` equal to it.

    Returns ``[{"subject": s, "match": bool}, …]`` and nothing else from the rows. At most
    :data:`MAX_SUBJECTS` subjects per call (``too_many_subjects``), so verification cannot be turned
    into enumeration cheaply; each must be a non-empty string (``invalid_subject``).
    """
    if isinstance(subjects, str) or not isinstance(subjects, Sequence):
        raise InvalidInput("subjects must be a list of strings", code="invalid_subject")
    if len(subjects) > MAX_SUBJECTS:
        raise InvalidInput(
            f"at most {MAX_SUBJECTS} subjects per verification, got {len(subjects)}",
            code="too_many_subjects",
        )
    for subject in subjects:
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidInput(f"subject must be a non-empty string, got {subject!r}", code="invalid_subject")
    wanted = {identifier_key(s) for s in subjects}
    found = set()
    for row in rows:
        value = identifier_key(row.get(key))
        if isinstance(value, str) and value in wanted:
            found.add(value)
    return [{"subject": s, "match": identifier_key(s) in found} for s in subjects]

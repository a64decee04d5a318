"""Raw and masked rows, shaped a column at a time.

A source hands the gateway batches of rows as tuples in catalog field order
(``SourceReader.batches``). What leaves is, per row, the granted fields in the requested order
(GB/T 35273-2020 §6.1, 最小必要), each sensitive one through its catalog rule in ``masked`` mode
(``ledger.gateway.masking``); and what is logged includes the keyed hash of every data subject's ID
number in the rows delivered. Doing this per column — the masking rule looked up once per column,
the ID numbers collected as one set and each distinct one hashed once — instead of per row and per
value is what keeps mediation cheap next to a plain read (docs/benchmarks.md, "Gateway").

The delivered body is RFC 8785 canonical JSON (its SHA-256 is the access's ``result_hash``).
:func:`encode_rows` writes each row's canonical text straight from the columns — every value
encoded by the standard library's C string encoder, the members in the row's fixed key order — and
:func:`canonical_document` places those texts in the body: no dict per row, no walk of every
value to prove ``json.dumps`` may be used, and the NDJSON lines are the same texts. They give the
bytes ``canonical_json`` gives for the same object (a Hypothesis test checks it).

This module is pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring  # json.dumps's own (C) string encoder, ensure_ascii=False
from typing import Any

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput
from ledger.gateway.masking import Masker
from ledger.types import MaskingRule

__all__ = ["ColumnShaper", "canonical_document", "canonical_document_of", "encode_rows"]

_SAFE_INT = 2**53 - 1
_PLAIN = frozenset({str, bool, int, type(None)})


class ColumnShaper:
    """Shapes the batches of one access; collects the raw ID numbers of the rows it shaped.

    ``names`` is the order of the source tuples (the catalog's fields), ``wanted`` the delivered
    fields in their order, ``masks`` the rule of each delivered field to mask (empty in ``raw``
    mode), ``id_fields`` the catalog fields holding ID numbers (a row names its subject even when
    the ID column itself is not delivered).
    """

    def __init__(
        self,
        *,
        names: Sequence[str],
        wanted: Sequence[str],
        id_fields: Sequence[str],
        masks: Mapping[str, MaskingRule] | None = None,
        masker: Masker | None = None,
    ) -> None:
        position = {name: i for i, name in enumerate(names)}
        self.wanted = list(wanted)
        self._wanted_at = [position[name] for name in wanted]
        self._ids_at = [position[name] for name in id_fields]
        self._masks = dict(masks or {})
        if self._masks and masker is None:
            raise ValueError("masked fields need a masker")
        self._masker = masker
        self.id_values: set[Any] = set()

    def columns(self, batch: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """The delivered columns of ``batch`` (one per wanted field, masked where a rule says so)."""
        if not batch:
            return [() for _ in self.wanted]
        columns = list(zip(*batch, strict=True))
        for i in self._ids_at:
            self.id_values.update(columns[i])
        out: list[Sequence[Any]] = []
        for name, i in zip(self.wanted, self._wanted_at, strict=True):
            rule = self._masks.get(name)
            if rule is None:
                out.append(columns[i])
            else:
                assert self._masker is not None
                out.append(self._masker.mask_column(rule, columns[i], field=name))
        return out


def encode_rows(fields: Sequence[str], columns: Sequence[Sequence[Any]], count: int) -> list[str]:
    """Each of ``count`` rows as its RFC 8785 text: ``canonical_json(dict(zip(fields, row)))``.

    Members are ordered by their keys' UTF-16 code units (RFC 8785 §3.2.3) once for all rows; a
    column of strings, booleans, nulls and safe integers is encoded as ``json.dumps`` would (the
    same output as JCS for those, see ``ledger.canonical``), anything else value by value through
    ``canonical_json``.
    """
    if len(fields) != len(columns) or len(set(fields)) != len(fields):
        raise ValueError("one column per distinct field")
    order = sorted(range(len(fields)), key=lambda i: fields[i].encode("utf-16-be"))
    if not order:
        return ["{}"] * count
    template = "{" + ",".join(encode_basestring(fields[i]).replace("%", "%%") + ":%s" for i in order) + "}"
    encoded = [_encode_column(columns[i]) for i in order]
    if any(len(column) != count for column in encoded):
        raise ValueError("every column holds one value per row")
    return [template % values for values in zip(*encoded, strict=True)]


def canonical_document(head: Mapping[str, Any], key: str, items: Sequence[str]) -> bytes:
    """The RFC 8785 bytes of ``{**head, key: [items…]}``, the items being canonical texts already
    (from :func:`encode_rows`); raises :class:`~ledger.errors.InvalidInput` as ``canonical_json``
    does when the result is not valid Unicode (a lone surrogate in a value)."""
    return canonical_document_of(head, key, _utf8("[" + ",".join(items) + "]"))


def canonical_document_of(head: Mapping[str, Any], key: str, value: bytes) -> bytes:
    """The RFC 8785 bytes of ``{**head, key: <value>}``, ``value`` being the canonical UTF-8 bytes
    of a JSON value already (a row array a SQLite source encoded, ``SourceReader.encoded_rows``)."""
    if key in head:
        raise ValueError(f"{key!r} is in the head already")
    members = [(name, canonical_json(item)) for name, item in head.items()]
    members.append((key, value))
    members.sort(key=lambda member: member[0].encode("utf-16-be"))
    return (
        b"{" + b",".join(_utf8(encode_basestring(name)) + b":" + encoded for name, encoded in members) + b"}"
    )


def encode_lines(texts: Sequence[str]) -> bytes:
    """NDJSON: each canonical text on its own line."""
    return _utf8("".join(text + "\n" for text in texts))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: canonical_json refuses it the same way
        raise InvalidInput(
            "cannot canonicalize as RFC 8785 JSON: a string is not valid Unicode", code="invalid_json"
        ) from exc


def _encode_column(values: Sequence[Any]) -> Sequence[str]:
    kinds = set(map(type, values))
    if kinds <= {str}:
        return list(map(encode_basestring, values))
    if kinds <= _PLAIN:
        ints = [v for v in values if type(v) is int]
        if not ints or (min(ints) >= -_SAFE_INT and max(ints) <= _SAFE_INT):
            return [_plain_scalar(v) for v in values]
    return [canonical_json(v).decode("utf-8") for v in values]


def _plain_scalar(value: Any) -> str:
    if type(value) is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)  # an int within ±(2**53 - 1)

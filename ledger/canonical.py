"""Canonical JSON for log entries: RFC 8785 JSON Canonicalization Scheme (JCS). Pure, no I/O.

DESIGN "The log": an entry's bytes are the access event as a JSON object in RFC 8785 form, so
that any independent tool can re-derive the leaf hash from the event alone. JCS fixes what plain
``json.dumps`` leaves open: keys sorted by their UTF-16 code units (§3.2.3), numbers in the
ECMAScript shortest round-trip form (§3.2.2.3, so ``1e21`` → ``1e+21`` and ``-0`` → ``0``),
minimal string escaping and UTF-8 output (§3.2.2.2, §3.2.4).

The encoding itself is the ``rfc8785`` package; this module is the boundary that turns its
exceptions (and the recursion limit) into :class:`~ledger.errors.InvalidInput`, so no
third-party exception leaves ``ledger``.

Fast path: for the values log entries are made of — strings, safe integers, booleans, null, lists
and objects whose keys are ASCII — RFC 8785 output is byte-identical to the standard library's
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``: ASCII keys sort the same
by code point as by UTF-16 unit, integers within ±(2**53−1) print the same, and both escape
exactly the quote, the backslash and the C0 controls (short forms for b, t, n, f, r; otherwise
lower-case u00xx).
Anything else (floats, non-ASCII keys, large integers) takes the ``rfc8785`` path. A Hypothesis test
checks the two agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from itertools import chain
from typing import cast

import rfc8785

from ledger.errors import InvalidInput

__all__ = ["canonical_json", "canonical_json_many", "sha256_hex"]

# The standard library's C encoder with ``json.dumps``'s fast-path settings (key ":", item ",",
# keys sorted, NaN allowed, not skipping keys) and without its cycle markers: what ``json.dumps``
# runs for one object, less the per-call ``JSONEncoder`` it builds (~1.5 µs of a 300-byte entry).
# Only plain values reach it (checked first, nesting bounded), so a cycle cannot.
_encode_plain = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, None, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def canonical_json(obj: object) -> bytes:
    """Encode ``obj`` as RFC 8785 canonical JSON (UTF-8 bytes).

    Accepts ``None``, ``bool``, ``int`` (within ±(2**53 - 1), the integers an IEEE 754 double
    holds exactly, RFC 8785 §3.2.2.3 / I-JSON RFC 7493 §2.2), finite ``float``, ``str``,
    ``list``/``tuple`` and ``dict`` with ``str`` keys. Anything else — NaN or infinities, larger
    integers, non-string keys, lone surrogates, other types, nesting beyond the recursion limit —
    raises :class:`~ledger.errors.InvalidInput` with code ``invalid_json``.
    """
    if _plain(obj, 0):
        try:
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 name the problem
            pass
    try:
        return rfc8785.dumps(obj)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError as exc:
        raise InvalidInput(f"cannot canonicalize as RFC 8785 JSON: {exc}", code="invalid_json") from exc
    except UnicodeError as exc:  # rfc8785 0.1.4 lets a lone surrogate in an object *key* escape
        raise InvalidInput(
            "cannot canonicalize as RFC 8785 JSON: a key is not valid Unicode", code="invalid_json"
        ) from exc
    except RecursionError as exc:
        raise InvalidInput(
            "cannot canonicalize as RFC 8785 JSON: nested too deeply", code="invalid_json"
        ) from exc


def canonical_json_many(objs: Iterable[object]) -> list[bytes]:
    """:func:`canonical_json` of each of ``objs``: one plainness check for all of them (objects of
    one shape are checked once), then the C encoder on each — about half the time of one call
    each for a batch of log entries. Any object the check or the encoder refuses goes through
    :func:`canonical_json` on its own (same bytes, same errors)."""
    values = list(objs)
    encode = _encode_plain
    if encode is None or not _plain_level(values, 0):
        return [canonical_json(v) for v in values]
    out: list[bytes] = []
    for v in values:
        try:
            out.append("".join(encode(v, 0)).encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: the slow path names the problem
            out.append(canonical_json(v))
    return out


_SAFE_INT = 2**53 - 1
_PLAIN_SCALARS = frozenset({str, bool, type(None)})
_NESTED = frozenset({dict, list, tuple})
_STR = frozenset({str})


def _plain(obj: object, depth: int) -> bool:
    """True if ``obj`` holds only values whose JCS form equals ``json.dumps``'s (see module doc)."""
    if type(obj) is dict:
        return _plain_keys(obj) and _plain_level(list(obj.values()), depth + 1)
    return _plain_level([obj], depth)


def _plain_keys(keys: Iterable[object]) -> bool:
    """Every key an exact ``str`` of ASCII only: the types collected in C, then one ``isascii``
    of the keys joined (a generator over an entry's ~18 keys cost ~7 µs)."""
    keys = tuple(keys)
    return set(map(type, keys)) <= _STR and "".join(cast(tuple[str, ...], keys)).isascii()


def _plain_level(values: list[object], depth: int) -> bool:
    """:func:`_plain` for all of ``values`` at once, one nesting level at a time.

    The types of a whole level are collected in C (``set(map(type, …))``), so a delivery of 1,000
    rows costs a few passes over its values rather than a Python call per value; the objects of a
    level are checked once per distinct key set (rows share theirs), and the next level is the
    concatenation of their values and of the lists' items.
    """
    if depth > 64:
        return False
    kinds = set(map(type, values))
    if kinds <= _PLAIN_SCALARS:
        return True
    if int in kinds:
        ints = [v for v in values if type(v) is int]
        if min(ints) < -_SAFE_INT or max(ints) > _SAFE_INT:
            return False
    if not kinds - {int} <= _PLAIN_SCALARS | _NESTED:
        return False  # floats, large or subclassed numbers, other types: the rfc8785 path decides
    inner: list[object] = []
    if dict in kinds:
        objects = [v for v in values if type(v) is dict]
        if not all(_plain_keys(keys) for keys in set(map(tuple, objects))):
            return False
        inner.extend(chain.from_iterable(map(dict.values, objects)))
    if list in kinds or tuple in kinds:
        inner.extend(chain.from_iterable(v for v in values if type(v) is list or type(v) is tuple))
    return not inner or _plain_level(inner, depth + 1)


def sha256_hex(data: bytes) -> str:
    """``"0x"`` + lowercase hex of SHA-256(``data``): the form hashes take in the API and on chain."""
    return "0x" + hashlib.sha256(data).hexdigest()

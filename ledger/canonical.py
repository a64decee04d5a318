"""Canonical JSON for log entries: RFC 8785 JSON Canonicalization Scheme (JCS). Pure, no I/O.

DESIGN "The log": an entry's bytes are the access event as a JSON object in RFC 8785 form, so
that any independent tool can re-derive the leaf hash from the event alone. JCS fixes what plain
``json.dumps`` leaves open: keys sorted by their UTF-16 code units (§3.2.3), numbers in the
ECMAScript shortest round-trip form (§3.2.2.3, so ``1e21`` → ``1e+21`` and ``-0`` → ``0``),
minimal string escaping and UTF-8 output (§3.2.2.2, §3.2.4).

The encoding itself is the ``rfc8785`` package; this module is the boundary that turns its
exceptions (and the recursion limit) into :class:`~ledger.errors.InvalidInput`, so no
third-party exception leaves ``ledger``.
"""

from __future__ import annotations

import hashlib

import rfc8785

from ledger.errors import InvalidInput

__all__ = ["canonical_json", "sha256_hex"]


def canonical_json(obj: object) -> bytes:
    """Encode ``obj`` as RFC 8785 canonical JSON (UTF-8 bytes).

    Accepts ``None``, ``bool``, ``int`` (within ±(2**53 - 1), the integers an IEEE 754 double
    holds exactly, RFC 8785 §3.2.2.3 / I-JSON RFC 7493 §2.2), finite ``float``, ``str``,
    ``list``/``tuple`` and ``dict`` with ``str`` keys. Anything else — NaN or infinities, larger
    integers, non-string keys, lone surrogates, other types, nesting beyond the recursion limit —
    raises :class:`~ledger.errors.InvalidInput` with code ``invalid_json``.
    """
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


def sha256_hex(data: bytes) -> str:
    """``"0x"`` + lowercase hex of SHA-256(``data``): the form hashes take in the API and on chain."""
    return "0x" + hashlib.sha256(data).hexdigest()

"""What a share request may ask for, and how a decision's conditions may narrow it.

DESIGN.md "Share request" / "Decision": the requester signs a scope (fields, row filter, max records,
max accesses, validity window, mode); the provider approves it *with conditions* (附条件同意). The
requester's EIP-712 ``Request`` is its consent to that scope only, so a decision may grant the scope
or less — never more. The rules, each refused with 422 and its own code:

- ``unknown_field``: a field (requested, granted, or named by a row filter) that the resource's catalog
  entry does not have;
- ``invalid_row_filter``: a row filter outside the gateway's grammar (:func:`parse_row_filter`, the
  parser the gateway runs on every access — a filter that parses here parses there);
- ``invalid_window``: ``valid_from`` not before ``valid_until`` (at the second, as the chain keeps it);
- ``window_in_past``: ``valid_until`` not after now — such a grant could never be used;
- ``conditions_wider_than_request``: a condition granting more than was requested:

  ============== ===============================================================================
  fields         a subset of the requested fields
  mode           ``raw`` is the widest: a raw request may be granted in any mode. ``masked``,
                 ``aggregate`` and ``verify`` each give something the others do not (an aggregate
                 reads sensitive values unmasked inside its metrics, a check confirms a value a masked
                 row hides), so none is narrower than another: such a request is granted in its own
                 mode only
  max_records    at most the requested number
  max_accesses   at most the requested number
  window         inside the requested window
  row_filter     keeps every requested condition and may add more (AND), so it never shows a row
                 the requested filter hides
  ============== ===============================================================================

A condition left out is the request's own term (not a default of the API's), so ``{"max_accesses":
10}`` narrows the cap and keeps everything else as requested. This module is pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.errors import InvalidInput
from ledger.gateway.query import Condition, canonical_filter, parse_row_filter
from ledger.log.events import AccessMode

WIDER = "conditions_wider_than_request"


def iso(value: datetime) -> str:
    """An instant as a scope holds it: UTC, to the second (the chain keeps epoch seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_instant(name: str, value: datetime) -> None:
    """The contract keeps validity as uint64 epoch seconds: an instant needs a timezone, and dates
    before 1970 or near year 9999 are refused (they would also overflow timezone arithmetic)."""
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must carry a timezone", code="invalid_window")
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not 1970 <= year <= 9998:
        raise InvalidInput(f"{name} must lie between 1970 and 9998", code="invalid_window")


def modes_within(requested: AccessMode) -> frozenset[AccessMode]:
    """The modes a decision may grant for a request made in ``requested`` mode (see the table above)."""
    if requested is AccessMode.RAW:
        return frozenset(AccessMode)
    return frozenset({requested})


@dataclass(frozen=True)
class Conditions:
    """A decision's conditions: each term left as None is the request's own."""

    fields: list[str] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    mode: AccessMode | None = None
    max_records: int | None = None
    max_accesses: int | None = None
    row_filter: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name, value in (("valid_from", self.valid_from), ("valid_until", self.valid_until)):
            if value is not None:
                check_instant(name, value)


def check_fields(fields: Collection[str], known: Collection[str], *, what: str = "fields") -> None:
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise InvalidInput(f"{what} not in the resource: {', '.join(unknown)}", code="unknown_field")


def check_row_filter(row_filter: Any, known: Collection[str]) -> list[Condition]:
    """The row filter's conditions, or ``unknown_field`` for a field the resource does not have, or
    ``invalid_row_filter`` for anything the gateway's parser refuses."""
    if isinstance(row_filter, dict):
        check_fields(
            [name for name in row_filter if isinstance(name, str)], known, what="row_filter names fields"
        )
    return parse_row_filter(row_filter, allowed_fields=set(known))


def check_window(valid_from: str, valid_until: str, now: datetime) -> None:
    """``valid_from`` < ``valid_until`` (``invalid_window``) and ``valid_until`` > now
    (``window_in_past``); both as the scope holds them (ISO 8601, UTC, seconds)."""
    start, end = parse_iso(valid_from), parse_iso(valid_until)
    if start >= end:
        raise InvalidInput(
            f"valid_from ({valid_from}) must be before valid_until ({valid_until})", code="invalid_window"
        )
    if end <= now:
        raise InvalidInput(
            f"the window ends at {valid_until}, which is not in the future: nothing could be accessed",
            code="window_in_past",
        )


def check_request(scope: Mapping[str, Any], known: Collection[str], now: datetime) -> None:
    """A requested scope (in its JSON form, ``Scope.as_json``) against the resource's fields."""
    check_fields(scope["fields"], known)
    check_row_filter(scope.get("row_filter") or {}, known)
    check_window(scope["valid_from"], scope["valid_until"], now)


def _key(condition: Condition) -> str:
    return json.dumps(canonical_filter([condition]), sort_keys=True, ensure_ascii=False)


def _wider(term: str, message: str) -> InvalidInput:
    return InvalidInput(f"conditions may only narrow the request: {message}", code=WIDER, term=term)


def decision_terms(
    requested: Mapping[str, Any], conditions: Conditions | None, known: Collection[str], now: datetime
) -> dict[str, Any]:
    """The terms an approval grants: ``conditions`` merged over the ``requested`` scope (JSON form),
    checked to be valid and no wider than the request. The result is in ``Scope.as_json`` form — its
    keccak256 is the decision's ``conditionsHash``."""
    c = conditions or Conditions()
    asked_filter: dict[str, Any] = requested.get("row_filter") or {}
    terms: dict[str, Any] = {
        "fields": sorted(set(c.fields)) if c.fields is not None else sorted(requested["fields"]),
        "valid_from": iso(c.valid_from) if c.valid_from is not None else requested["valid_from"],
        "valid_until": iso(c.valid_until) if c.valid_until is not None else requested["valid_until"],
        "mode": (c.mode or AccessMode(requested["mode"])).value,
        "max_records": c.max_records if c.max_records is not None else requested["max_records"],
        "max_accesses": c.max_accesses if c.max_accesses is not None else requested["max_accesses"],
        "row_filter": c.row_filter if c.row_filter is not None else asked_filter,
    }
    # Validity first (the same words as a request's), then width against the request.
    check_fields(terms["fields"], known)
    granted_filter = check_row_filter(terms["row_filter"], known)
    start, end = parse_iso(terms["valid_from"]), parse_iso(terms["valid_until"])
    if start >= end:
        raise InvalidInput(
            f"valid_from ({terms['valid_from']}) must be before valid_until ({terms['valid_until']})",
            code="invalid_window",
        )
    extra = sorted(set(terms["fields"]) - set(requested["fields"]))
    if extra:
        raise _wider("fields", f"fields not requested: {', '.join(extra)}")
    asked_mode = AccessMode(requested["mode"])
    if AccessMode(terms["mode"]) not in modes_within(asked_mode):
        raise _wider(
            "mode",
            f"mode {terms['mode']} is not within the requested {asked_mode.value} (raw may be narrowed "
            "to any mode; masked, aggregate and verify only to themselves)",
        )
    for term in ("max_records", "max_accesses"):
        if terms[term] > requested[term]:
            raise _wider(term, f"{term} {terms[term]} exceeds the requested {requested[term]}")
    if start < parse_iso(requested["valid_from"]) or end > parse_iso(requested["valid_until"]):
        raise _wider(
            "window",
            f"the window {terms['valid_from']} – {terms['valid_until']} is not inside the requested "
            f"{requested['valid_from']} – {requested['valid_until']}",
        )
    kept = {_key(cond) for cond in granted_filter}
    dropped = [cond for cond in parse_row_filter(asked_filter) if _key(cond) not in kept]
    if dropped:
        raise _wider(
            "row_filter",
            "the row filter drops the requested condition(s) "
            f"{json.dumps(canonical_filter(dropped), ensure_ascii=False)}; keep them and add narrower ones",
        )
    check_window(terms["valid_from"], terms["valid_until"], now)
    return terms

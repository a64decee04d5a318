"""What an open contract grants, per resource, and how it is hashed for the chain.

A contract's scope is ``{"resources": {resource_id: {"fields", "mode", "max_records", "row_filter"}}}``
in RFC 8785 canonical JSON; ``OpenContracts`` keeps its keccak256 (``scopeHash``), so the gateway
uses a stored scope only if it hashes to the chain's, and a bundle verifier can check the scope it
is shown. Purposes go on chain as ``keccak256(code)`` of each allowed purpose code, so the purpose of
an access (a code in the log entry) is checked against the contract with nothing but the chain.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from eth_utils.crypto import keccak

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput
from ledger.gateway.query import parse_row_filter
from ledger.log.events import AccessMode
from ledger.types import Obligation

MAX_RECORDS = 100_000
MAX_ITEMS = 32  # OpenContracts.MAX_ITEMS: resources and purposes per contract


def new_contract_id() -> str:
    return "0x" + secrets.token_hex(32)


def is_contract_id(value: str) -> bool:
    if len(value) != 66 or not value.startswith("0x"):
        return False
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        return False
    return True


def purpose_hash(code: str) -> bytes:
    """The on-chain form of an allowed purpose: keccak256 of its code (UTF-8)."""
    return keccak(text=code)


def obligations_mask(obligations: Iterable[Obligation]) -> int:
    mask = 0
    for o in obligations:
        mask |= o.bit
    return mask


def obligations_of(mask: int) -> list[Obligation]:
    return [o for o in Obligation if mask & o.bit]


def resource_scope(raw: Mapping[str, Any], catalog_fields: Iterable[str], *, what: str) -> dict[str, Any]:
    """One resource's granted terms, validated against its catalog fields; the canonical form."""
    known = set(catalog_fields)
    fields = raw.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise InvalidInput(f"{what}: fields must name at least one field", code="invalid_scope")
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InvalidInput(f"{what}: fields not in the resource: {', '.join(unknown)}", code="unknown_field")
    try:
        mode = AccessMode(raw.get("mode", "masked"))
    except ValueError:
        raise InvalidInput(
            f"{what}: mode must be one of raw, masked, aggregate, verify", code="invalid_scope"
        ) from None
    max_records = raw.get("max_records", 1000)
    if (
        not isinstance(max_records, int)
        or isinstance(max_records, bool)
        or not 1 <= max_records <= MAX_RECORDS
    ):
        raise InvalidInput(f"{what}: max_records must be 1 to {MAX_RECORDS}", code="invalid_scope")
    row_filter = raw.get("row_filter") or {}
    if not isinstance(row_filter, dict):
        raise InvalidInput(f"{what}: row_filter must be an object", code="invalid_scope")
    parse_row_filter(row_filter, allowed_fields=sorted(known))
    return {
        "fields": sorted(set(fields)),
        "mode": mode.value,
        "max_records": max_records,
        "row_filter": row_filter,
    }


def scope_hash(scope: Mapping[str, Any]) -> bytes:
    return keccak(canonical_json(dict(scope)))

"""What the opening services share: the ``OpenContracts`` deployment, the relay, the log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.errors import Conflict, InvalidInput
from ledger.identity.parties import PartyService
from ledger.log.store import LogStore, NewEntry
from ledger.sharing.catalog import CatalogService
from ledger.sharing.conditions import check_instant
from ledger.sharing.consent import Consent
from ledger.store.db import Store
from ledger.store.models import NegativeListing, Resource
from ledger.types import OpenType

HASH_HEX = 66


@dataclass
class Opening:
    store: Store
    chain: Chain
    contract: Contract
    parties: PartyService
    catalog: CatalogService
    log: LogStore
    consent: Consent

    def record(self, kind: str, event_id: str, accessor: str, resource: str, body: dict[str, Any]) -> int:
        """Append a lifecycle event to the log (the regulator's trail is one sequence); its index."""
        now = datetime.now(UTC)
        event = {
            "v": 1,
            "kind": kind,
            "event_id": event_id,
            "accessor": accessor,
            "resource": resource,
            "time": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            **body,
        }
        (appended,) = self.log.append(
            [
                NewEntry(
                    event_id=event_id, kind=kind, time=now, event=event, accessor=accessor, resource=resource
                )
            ]
        )
        return appended.index

    def negative_listed(self, resource_id: str) -> bool:
        with self.store.read() as session:
            listed = session.scalar(
                select(NegativeListing.listed).where(NegativeListing.resource_id == resource_id)
            )
        return bool(listed)

    def openable(self, resource_id: str, open_type: OpenType) -> Resource:
        """A published resource of ``open_type`` that is not on the negative list."""
        resource = self.catalog.get_published(resource_id)
        if self.negative_listed(resource.id):
            raise Conflict(
                f"resource {resource.code} is on the negative list (负面清单): it is not opened",
                code="negative_listed",
            )
        if resource.open_type is not open_type:
            raise Conflict(
                f"resource {resource.code} is open type {resource.open_type.value}, not "
                f"{open_type.value}: it cannot be opened this way",
                code="not_openable",
            )
        return resource


def epoch(value: datetime, what: str) -> int:
    """``value`` as the contract's uint64 epoch seconds, checked as a share scope's instants are."""
    check_instant(what, value)
    return int(value.timestamp())


def window(valid_from: datetime, valid_until: datetime) -> tuple[int, int]:
    start, end = epoch(valid_from, "valid_from"), epoch(valid_until, "valid_until")
    if start >= end:
        raise InvalidInput("valid_from must be before valid_until", code="invalid_window")
    return start, end


def hash32(value: str, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != HASH_HEX or not value.startswith("0x"):
        raise InvalidInput(f"{what} must be 0x + 64 hex digits", code="invalid_hash")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidInput(f"{what} must be 0x + 64 hex digits", code="invalid_hash") from None


def loads(raw: str | None) -> Any:
    return json.loads(raw) if raw else {}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

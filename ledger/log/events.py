"""Access events: the leaves of the log (DESIGN.md "Access event").

One mediated delivery of data, or a denied attempt: who (accessor), what (resource, fields, record
count), under what (grant or open contract), why (purpose code), the query and result hashes, the
keyed hashes of the data subjects' ID numbers, when, and through which gateway. Events from an
existing exchange platform arrive through ``POST /v1/access-events`` in this shape; the gateway
builds the same shape itself.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledger.canonical import canonical_json

HASH_RE = r"^0x[0-9a-f]{64}$"
Hash32 = Annotated[str, Field(pattern=HASH_RE, description="0x + 64 lower-case hex")]
EVENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_CLOCK_SKEW = timedelta(minutes=5)


class EventKind(enum.StrEnum):
    ACCESS = "access"
    DENIED = "denied"
    REQUEST = "request"
    DECISION = "decision"
    GRANT = "grant"
    REVOKE = "revoke"
    DISPUTE = "dispute"
    DECLARATION = "declaration"


class AccessMode(enum.StrEnum):
    RAW = "raw"
    MASKED = "masked"
    AGGREGATE = "aggregate"
    VERIFY = "verify"


class GatewayEntry(NamedTuple):
    """A validated :class:`AccessEvent` as the log appends it: the leaf less its recorder, and the
    fields the store indexes. Make one with :meth:`AccessEvent.prepare` only (never by hand: that
    would skip the event's validation). A plain tuple, so it crosses a process boundary for the
    price of a pickle — the simulator validates and encodes events in a second process
    (:mod:`ledger.sim.feed`) while the first appends them (``LogService.record_prepared_events``)."""

    event_id: str
    kind: str  # an EventKind value
    time: datetime
    accessor: str
    provider: str | None
    resource: str
    level: int | None
    body: dict[str, Any]  # the leaf less "recorded_by"
    # (recorder, the leaf's RFC 8785 bytes) once :meth:`encoded` ran: the simulator's producer
    # process encodes there, so the process that appends does not.
    leaf_bytes: tuple[str, bytes] | None = None

    def leaf(self, *, recorded_by: str) -> dict[str, Any]:
        """The log entry's JSON object; the same as :meth:`AccessEvent.leaf` of the event."""
        return {**self.body, "recorded_by": recorded_by}

    def encoded(self, *, recorded_by: str) -> GatewayEntry:
        """This entry carrying its leaf's canonical bytes as ``recorded_by`` records it."""
        return self._replace(leaf_bytes=(recorded_by, canonical_json(self.leaf(recorded_by=recorded_by))))

    def leaf_bytes_for(self, recorded_by: str) -> bytes | None:
        """The canonical bytes of the leaf if :meth:`encoded` made them for this recorder."""
        held = self.leaf_bytes
        return held[1] if held is not None and held[0] == recorded_by else None


class AccessEvent(BaseModel):
    """An access (or denied attempt) recorded by a gateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(description="client-supplied id; a retry with the same id is idempotent")
    kind: EventKind = EventKind.ACCESS
    accessor: str = Field(min_length=1, max_length=64, description="party id of who took the data")
    provider: str | None = Field(default=None, max_length=64, description="party id of the data's provider")
    resource: str = Field(min_length=1, max_length=64, description="resource id or catalog code")
    grant: str | None = Field(default=None, max_length=80)
    contract: str | None = Field(default=None, max_length=80)
    chain_time: int | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="timestamp of the chain block the gateway checked the open contract at; a verifier "
        "judges the contract at this time (the chain's clock), not at the gateway's `time`",
    )
    purpose: str = Field(min_length=1, max_length=64, description="purpose code from GET /v1/purposes")
    fields: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=256
    )
    mode: AccessMode = AccessMode.RAW
    record_count: int = Field(default=0, ge=0, le=10**12)
    query_hash: Hash32 | None = None
    result_hash: Hash32 | None = None
    subjects: list[Hash32] = Field(
        default_factory=list,
        max_length=10_000,
        description="HMAC-SHA256 of each data subject's ID number (platform key)",
    )
    time: datetime
    gateway: str = Field(min_length=1, max_length=128)
    reason: str | None = Field(default=None, max_length=500, description="denial reason code (kind=denied)")
    level: int | None = Field(
        default=None,
        ge=1,
        le=4,
        description="the resource's level (分级); high levels are also recorded on chain per access",
    )

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str) -> str:
        if not EVENT_ID_RE.match(value):
            raise ValueError(
                "event_id must be 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter/digit"
            )
        return value

    @field_validator("time")
    @classmethod
    def _time(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a timezone (e.g. 2026-01-01T08:00:00Z)")
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("time is outside the calendar's range") from None
        if value.year < 1970:
            raise ValueError("time must not be before 1970")
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("time is in the future")
        return value

    @model_validator(mode="after")
    def _kind_rules(self) -> AccessEvent:
        if self.kind not in (EventKind.ACCESS, EventKind.DENIED):
            raise ValueError("only kinds 'access' and 'denied' can be recorded by a gateway")
        if self.kind is EventKind.DENIED and not self.reason:
            raise ValueError("a denied event needs a reason")
        if self.kind is EventKind.ACCESS and self.reason:
            raise ValueError("reason is only for denied events")
        return self

    def leaf(self, *, recorded_by: str) -> dict[str, Any]:
        """The JSON object that becomes the log entry (canonicalised by the store)."""
        body = self._body()
        body["recorded_by"] = recorded_by
        return body

    def prepare(self) -> GatewayEntry:
        """This event as the log appends it, once a recorder is named (see :class:`GatewayEntry`)."""
        return GatewayEntry(
            self.event_id,
            self.kind.value,
            self.time,
            self.accessor,
            self.provider,
            self.resource,
            self.level,
            self._body(),
        )

    def _body(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude_none=True)
        body["time"] = self.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        body["v"] = 1
        return body

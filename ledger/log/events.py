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
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from ledger.canonical import canonical_json

HASH_RE = r"^0x[0-9a-f]{64}$"
Hash32 = Annotated[str, Field(pattern=HASH_RE, description="0x + 64 lower-case hex")]
EVENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")  # whole id: fullmatch, never ``$``
# RFC 3339 §5.6 date-time, ASCII digits only. The offset is optional here so that a time without
# one is refused by the timezone check below with its own message; everything else — an epoch
# number, a bare date, a week date, a space for "T" — is refused as not RFC 3339.
RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
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
    # opening's lifecycle (docs/opening.md): an open contract proposed, signed, effective, suspended,
    # resumed, terminated; an application submitted or reviewed; a negative-list change
    CONTRACT = "contract"
    APPLICATION = "application"
    NEGATIVE_LIST = "negative_list"


class AccessMode(enum.StrEnum):
    RAW = "raw"
    MASKED = "masked"
    AGGREGATE = "aggregate"
    VERIFY = "verify"


def trail_columns(event: Mapping[str, Any]) -> TrailColumns:
    """The copies of an entry's fields the regulator filters by, as ``log_entries`` indexes them
    (the canonical entry stays the authority): provider, grant (or open contract), purpose and
    mode, each cut to its column's width."""

    # inline, not a helper per field: this runs for every appended entry
    get = event.get
    provider, grant, purpose, mode = get("provider"), get("grant"), get("purpose"), get("mode")
    grant = grant[:80] if isinstance(grant, str) else None
    if not grant:
        contract = get("contract")
        grant = contract[:80] if isinstance(contract, str) else None
    return (
        provider[:64] if isinstance(provider, str) else None,
        grant,
        purpose[:64] if isinstance(purpose, str) else None,
        mode[:16] if isinstance(mode, str) else None,
    )


TrailColumns = tuple[str | None, str | None, str | None, str | None]


class GatewayEntry(NamedTuple):
    """A validated :class:`AccessEvent` as the log appends it: the leaf less its recorder, and the
    fields the store indexes. Make one with :meth:`AccessEvent.prepare` only (never by hand: that
    would skip the event's validation)."""

    event_id: str
    kind: str  # an EventKind value
    time: datetime
    accessor: str
    provider: str | None
    resource: str
    level: int | None
    body: dict[str, Any]  # the leaf less "recorded_by"

    def leaf(self, *, recorded_by: str) -> dict[str, Any]:
        """The log entry's JSON object; the same as :meth:`AccessEvent.leaf` of the event."""
        return {**self.body, "recorded_by": recorded_by}

    def encoded(self, *, recorded_by: str) -> EncodedEntry:
        """This entry with its leaf encoded as ``recorded_by`` records it (see :class:`EncodedEntry`)."""
        leaf = self.leaf(recorded_by=recorded_by)
        return EncodedEntry(
            self.event_id,
            self.kind,
            self.time,
            self.accessor,
            self.provider,
            self.resource,
            self.level,
            recorded_by,
            canonical_json(leaf),
            trail_columns(leaf),
        )


class EncodedEntry(NamedTuple):
    """A :class:`GatewayEntry` whose leaf is already RFC 8785 bytes for one recorder: what the
    append writes and nothing else — a flat tuple of strings and bytes, so it crosses a process
    boundary for the price of a small pickle. The simulator's producer process validates and
    encodes events into these (:mod:`ledger.sim.feed`) while the first process appends them
    (``LogService.record_prepared_events``); unpickling the event's body as a nested dict cost the
    appending process ~12 µs an event, this ~1 µs. Make one with :meth:`GatewayEntry.encoded` only."""

    event_id: str
    kind: str
    time: datetime
    accessor: str
    provider: str | None
    resource: str
    level: int | None
    recorded_by: str  # the recorder the leaf names; only that recorder may append it
    leaf: bytes  # canonical_json of GatewayEntry.leaf(recorded_by=recorded_by)
    trail: TrailColumns  # trail_columns of that leaf


class AccessEvent(BaseModel):
    """An access (or denied attempt) recorded by a gateway.

    The model checks the event's shape, strictly typed (integers are JSON integers, never ``true``
    or ``"5"``; ``time`` an RFC 3339 string, never epoch seconds); what it names — parties, purpose,
    resource, provider, level — is checked against the registry, the vocabulary and the catalog
    when it is recorded (:mod:`ledger.log.reported`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(description="client-supplied id; a retry with the same id is idempotent")
    kind: EventKind = EventKind.ACCESS
    accessor: str = Field(min_length=1, max_length=64, description="party id of who took the data")
    provider: str | None = Field(default=None, max_length=64, description="party id of the data's provider")
    resource: str = Field(min_length=1, max_length=64, description="resource id or catalog code")
    grant: str | None = Field(default=None, max_length=80)
    contract: str | None = Field(default=None, max_length=80)
    chain_time: StrictInt | None = Field(
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
    record_count: StrictInt = Field(default=0, ge=0, le=10**12)
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
    level: StrictInt | None = Field(
        default=None,
        ge=1,
        le=4,
        description="the resource's level (分级); high levels are also recorded on chain per access",
    )

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str) -> str:
        if not EVENT_ID_RE.fullmatch(value):
            raise ValueError(
                "event_id must be 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter/digit"
            )
        return value

    @field_validator("time", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        """In JSON a time is an RFC 3339 date-time string (§5.6), as the log writes it (docs/log.md).
        Pydantic's lax parsing would also read a number — or a string of digits — as Unix seconds,
        so ``1700000000`` would become a time nobody wrote: refused. In-process callers (the
        gateway, the simulator) hand a ``datetime``, which is taken as it is."""
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and RFC3339_RE.fullmatch(value):
            return value
        raise ValueError("time must be an RFC 3339 date-time string (e.g. 2026-01-01T08:00:00Z)")

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
        if self.grant and self.contract:
            raise ValueError("an access is under a grant or an open contract, not both")
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
        # UTC (the validator made it so), milliseconds: 2026-11-20T08:00:00.250Z
        body["time"] = self.time.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        body["v"] = 1
        return body

"""What an event reported by an external exchange platform must match before it is logged.

``POST /v1/access-events`` (and the simulator's bulk path, which takes the same checks) appends
events that no gateway of ours produced: the operator relays what an existing exchange platform
delivered. The log is append-only, so an event naming nothing real — a purpose outside the
vocabulary, a resource not in the catalog, a provider or level the catalog contradicts — would
stay in it for good and be shown to regulators as an access that happened. DESIGN.md "Domain":
the purpose is a code from the controlled vocabulary; one resource, one provider (一数一源); the
level (分级) is the catalog entry's. So every event of a batch must name

- an accessor, and a provider if it names one, that are registered parties (``unknown_party``);
- a purpose code of the vocabulary (``unknown_purpose``) — a denied attempt that named none may
  say ``unspecified``, as the gateway logs such an attempt;
- a resource of the catalog, by id or by catalog code (``unknown_resource``), whose first version
  is on chain (``not_published``);
- that resource's provider, if it names a provider (``provider_mismatch``);
- that resource's level, if it names a level (``level_mismatch``).

The first event of the batch (in batch order) that fails is reported as ``<index>.<field>`` with its
``event_id``, like the request validation's errors, and nothing of the batch is appended.

What is *not* checked here, on purpose: the grant or contract an event names, its scope, validity
and cap, the purpose against the grant's. An exchange platform reports what it delivered; an access
outside a grant is evidence for the regulator, logged and raised by the alert rules
(``outside_grant_*``, ``purpose_mismatch``, ``outside_contract``; docs/audit.md), not refused.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from ledger import purposes
from ledger.errors import InvalidInput
from ledger.log.events import EncodedEntry, EventKind, GatewayEntry

UNSPECIFIED_PURPOSE = "unspecified"
"""What the gateway logs as the purpose of a refused attempt that named none."""


class CatalogItem(NamedTuple):
    """What the checks need of a catalog entry."""

    id: str
    code: str
    provider: str
    level: int
    published: bool


class RefusedEvent(InvalidInput):
    """An event of a reported batch names something that does not exist or contradicts the catalog.
    ``index`` is its place in the batch, ``event_id`` its id, ``field`` the field at fault."""

    def __init__(self, index: int, event_id: str, field: str, problem: str, *, code: str) -> None:
        super().__init__(
            f"{index}.{field}: {problem} (event_id {event_id!r})",
            code=code,
            index=index,
            event_id=event_id,
            field=field,
        )
        self.index = index
        self.event_id = event_id
        self.field = field


def _vocabulary() -> frozenset[str]:
    return frozenset(p.code for p in purposes.vocabulary())


def purpose_of(event: GatewayEntry | EncodedEntry) -> str | None:
    """The event's purpose code: in the body of a prepared event, in the trail columns (the purpose
    is at most 64 characters, so uncut) of an encoded one."""
    if isinstance(event, EncodedEntry):
        return event.trail[2]
    purpose = event.body.get("purpose")
    return purpose if isinstance(purpose, str) else None


def check_reported(
    events: Sequence[GatewayEntry | EncodedEntry],
    *,
    parties: Collection[str],
    catalog: Mapping[str, CatalogItem],
) -> list[int]:
    """Raise :class:`RefusedEvent` for the first event that names nothing real (module docstring);
    otherwise return each event's catalog level, which decides its per-access on-chain record —
    so an event that leaves its level out is recorded on chain all the same when its resource's
    level calls for it.

    ``parties`` holds the registered ids among those the events name; ``catalog`` maps each
    resource name the events use (id or code) to its entry, an id taking precedence over a code."""
    vocabulary = _vocabulary()
    levels: list[int] = []
    for i, e in enumerate(events):
        if e.accessor not in parties:
            raise RefusedEvent(
                i, e.event_id, "accessor", f"unknown party id {e.accessor!r}", code="unknown_party"
            )
        if e.provider is not None and e.provider not in parties:
            raise RefusedEvent(
                i, e.event_id, "provider", f"unknown party id {e.provider!r}", code="unknown_party"
            )
        purpose = purpose_of(e)
        if purpose not in vocabulary and not (e.kind == EventKind.DENIED and purpose == UNSPECIFIED_PURPOSE):
            raise RefusedEvent(
                i,
                e.event_id,
                "purpose",
                f"unknown purpose code {purpose!r}; see GET /v1/purposes",
                code="unknown_purpose",
            )
        item = catalog.get(e.resource)
        if item is None:
            raise RefusedEvent(
                i,
                e.event_id,
                "resource",
                f"no catalog entry has the id or code {e.resource!r}",
                code="unknown_resource",
            )
        if not item.published:
            raise RefusedEvent(
                i,
                e.event_id,
                "resource",
                f"resource {item.code} awaits the signature of its first version: not in the catalog yet",
                code="not_published",
            )
        if e.provider is not None and e.provider != item.provider:
            raise RefusedEvent(
                i,
                e.event_id,
                "provider",
                f"resource {item.code} is provided by {item.provider!r}, not {e.provider!r}",
                code="provider_mismatch",
            )
        if e.level is not None and e.level != item.level:
            raise RefusedEvent(
                i,
                e.event_id,
                "level",
                f"resource {item.code} is level {item.level}, not {e.level}",
                code="level_mismatch",
            )
        levels.append(item.level)
    return levels

"""What the web console shows each kind of party, and who may open which page.

The console (``api/console``) renders; the choices live here (STYLE.md: no ``party.kind`` test in
``api``). Pages by kind follow DESIGN.md "Who uses it": the regulator and the registrar supervise
(dashboard, trail, lineage, scorecards — the data-security supervision platform's "全面掌握谁来拿数据、
拿数据干什么"); a department works its share requests (as provider it answers within 10 working days,
筑府发〔2017〕6号); an enterprise (契约式开放) and the operator see their contracts, grants and accesses
and download the proof bundle of each.

The queries are small read-only views over the store, keyset-paginated on the log index like the
trail (:mod:`ledger.audit.trail`), so a page costs the same at any log size.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from ledger.audit.trail import display_names
from ledger.errors import Forbidden, InvalidInput
from ledger.log.events import EventKind
from ledger.store.db import Store
from ledger.store.models import LogEntry, Party, Resource, ShareRequest
from ledger.types import PartyKind, RequestStatus
from ledger.workdays import working_days_between

CHINA = ZoneInfo("Asia/Shanghai")
MAX_VOLUME_DAYS = 92
MAX_PAGE = 200
_DELIVERIES = (EventKind.ACCESS.value, EventKind.DENIED.value)


class Page(enum.StrEnum):
    DASHBOARD = "dashboard"
    TRAIL = "trail"
    LINEAGE = "lineage"
    SCORECARDS = "scorecards"
    WORKBENCH = "workbench"
    PORTAL = "portal"
    BUNDLE = "bundle"  # who may see which bundle is the log's rule (LogService.bundle)


_AUDITORS = frozenset({PartyKind.REGULATOR, PartyKind.REGISTRAR})
PAGES: dict[Page, frozenset[PartyKind]] = {
    Page.DASHBOARD: _AUDITORS,
    Page.TRAIL: _AUDITORS,
    Page.LINEAGE: _AUDITORS,
    Page.SCORECARDS: _AUDITORS,
    Page.WORKBENCH: frozenset({PartyKind.DEPARTMENT}),
    Page.PORTAL: frozenset({PartyKind.ENTERPRISE, PartyKind.OPERATOR}),
    Page.BUNDLE: frozenset(PartyKind),
}
_HOME = {
    PartyKind.REGULATOR: Page.DASHBOARD,
    PartyKind.REGISTRAR: Page.DASHBOARD,
    PartyKind.DEPARTMENT: Page.WORKBENCH,
    PartyKind.ENTERPRISE: Page.PORTAL,
    PartyKind.OPERATOR: Page.PORTAL,
}
_NAV_ORDER = (Page.DASHBOARD, Page.TRAIL, Page.LINEAGE, Page.SCORECARDS, Page.WORKBENCH, Page.PORTAL)


def require_page(caller: Party, page: Page) -> None:
    """Return if ``caller``'s kind may open ``page``, else raise Forbidden (``forbidden_role``)."""
    if caller.kind not in PAGES[page]:
        raise Forbidden(f"a {caller.kind.value} may not open the {page.value} page", code="forbidden_role")


def home_page(kind: PartyKind) -> Page:
    return _HOME[kind]


def navigation(kind: PartyKind) -> list[Page]:
    """The pages a party of ``kind`` may open, in menu order."""
    return [page for page in _NAV_ORDER if kind in PAGES[page]]


@dataclass(frozen=True)
class PendingDecision:
    """A share request waiting for the caller's decision, with its statutory countdown."""

    id: str
    resource_id: str
    resource_name: str | None
    requester_id: str
    requester_name: str | None
    purpose_code: str
    purpose_text: str
    legal_basis: str
    scope: dict[str, Any]
    applied_on: date
    respond_by: date
    working_days_left: int  # working days after today up to respond_by; negative once overdue
    overdue: bool


@dataclass(frozen=True)
class GrantRow:
    grant_id: str
    request_id: str
    resource_id: str
    resource_name: str | None
    grantee_id: str
    grantee_name: str | None
    provider_id: str
    provider_name: str | None
    purpose_code: str
    mode: str
    fields: list[str]
    valid_from: str
    valid_until: str
    max_accesses: int
    state: str  # active | revoked | expired, as recorded off chain (the chain stays the authority)


class ConsoleQueries:
    def __init__(self, *, store: Store) -> None:
        self.store = store

    # -- regulator ----------------------------------------------------------------------------------
    def daily_volume(
        self, caller: Party, *, days: int = 30, today: date | None = None
    ) -> list[dict[str, Any]]:
        """Deliveries and refusals per Beijing calendar day over the last ``days`` days (oldest first):
        one indexed count per day on ``log_entries.time``."""
        require_page(caller, Page.DASHBOARD)
        if not 1 <= days <= MAX_VOLUME_DAYS:
            raise InvalidInput(f"days must be 1-{MAX_VOLUME_DAYS}", code="invalid_window")
        last = today or datetime.now(CHINA).date()
        out = []
        with self.store.read() as session:
            for offset in range(days - 1, -1, -1):
                day = last - timedelta(days=offset)
                start = datetime.combine(day, time(), CHINA).astimezone(UTC)
                counts = dict(
                    session.execute(
                        select(LogEntry.kind, func.count())
                        .where(
                            LogEntry.time >= start,
                            LogEntry.time < start + timedelta(days=1),
                            LogEntry.kind.in_(_DELIVERIES),
                        )
                        .group_by(LogEntry.kind)
                    ).all()
                )
                out.append(
                    {
                        "day": day.isoformat(),
                        "access": int(counts.get(EventKind.ACCESS.value, 0)),
                        "denied": int(counts.get(EventKind.DENIED.value, 0)),
                    }
                )
        return out

    def parties(self) -> list[tuple[str, str, PartyKind]]:
        """(id, name, kind) of every party, for filter menus."""
        with self.store.read() as session:
            rows = session.execute(select(Party.id, Party.name, Party.kind).order_by(Party.name)).all()
        return [(str(i), str(n), PartyKind(k)) for i, n, k in rows]

    def resources(self) -> list[tuple[str, str, str]]:
        """(id, code, name) of every catalog entry, for filter menus."""
        with self.store.read() as session:
            rows = session.execute(
                select(Resource.id, Resource.code, Resource.name).order_by(Resource.code)
            ).all()
        return [(str(i), str(c), str(n)) for i, c, n in rows]

    # -- department ---------------------------------------------------------------------------------
    def pending_decisions(self, caller: Party, *, today: date | None = None) -> list[PendingDecision]:
        """Requests waiting for ``caller``'s decision as provider, soonest deadline first."""
        require_page(caller, Page.WORKBENCH)
        now = today or datetime.now(CHINA).date()
        with self.store.read() as session:
            rows = list(
                session.scalars(
                    select(ShareRequest)
                    .where(
                        ShareRequest.provider_id == caller.id, ShareRequest.status == RequestStatus.PENDING
                    )
                    .order_by(ShareRequest.respond_by, ShareRequest.created_at)
                )
            )
            names = _names(session, (r.requester_id for r in rows), (r.resource_id for r in rows))
        return [
            PendingDecision(
                id=r.id,
                resource_id=r.resource_id,
                resource_name=names.get(r.resource_id),
                requester_id=r.requester_id,
                requester_name=names.get(r.requester_id),
                purpose_code=r.purpose_code,
                purpose_text=r.purpose_text,
                legal_basis=r.legal_basis,
                scope=json.loads(r.scope_json),
                applied_on=r.applied_on,
                respond_by=r.respond_by,
                working_days_left=working_days_between(now, r.respond_by),
                overdue=now > r.respond_by,
            )
            for r in rows
        ]

    def grants(self, caller: Party, *, now: datetime | None = None) -> dict[str, list[GrantRow]]:
        """Grants ``caller`` holds (``received``) and grants of its data it gave (``given``)."""
        moment = now or datetime.now(UTC)
        with self.store.read() as session:
            rows = list(
                session.scalars(
                    select(ShareRequest)
                    .where(
                        ShareRequest.grant_id.is_not(None),
                        or_(ShareRequest.requester_id == caller.id, ShareRequest.provider_id == caller.id),
                    )
                    .order_by(ShareRequest.created_at.desc())
                )
            )
            names = _names(
                session,
                [p for r in rows for p in (r.requester_id, r.provider_id)],
                (r.resource_id for r in rows),
            )
        out: dict[str, list[GrantRow]] = {"received": [], "given": []}
        for r in rows:
            row = _grant_row(r, names, moment)
            if r.requester_id == caller.id:
                out["received"].append(row)
            if r.provider_id == caller.id:
                out["given"].append(row)
        return out

    # -- every party --------------------------------------------------------------------------------
    def names(self, party_ids: Iterable[str | None], resource_ids: Iterable[str | None]) -> dict[str, str]:
        """Display names of parties and catalog entries by id (ids not found are left out)."""
        with self.store.read() as session:
            return _names(session, (p for p in party_ids if p), (r for r in resource_ids if r))

    def accesses(self, caller: Party, *, before: int | None = None, limit: int = 50) -> dict[str, Any]:
        """``caller``'s own deliveries and refused attempts (newest first, keyset pages), each with the
        path of its proof bundle."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE}", code="invalid_limit")
        stmt = select(LogEntry.idx, LogEntry.entry).where(
            LogEntry.accessor == caller.id, LogEntry.kind.in_(_DELIVERIES)
        )
        if before is not None:
            stmt = stmt.where(LogEntry.idx < before)
        with self.store.read() as session:
            rows = session.execute(stmt.order_by(LogEntry.idx.desc()).limit(limit + 1)).all()
            page = [(int(idx), json.loads(entry)) for idx, entry in rows[:limit]]
            names = display_names(session, page)
        items = [
            {
                "index": idx,
                "time": e.get("time"),
                "kind": e.get("kind"),
                "provider": {"id": e.get("provider"), "name": names.get(e.get("provider") or "")},
                "resource": {"id": e.get("resource"), "name": names.get(e.get("resource") or "")},
                "purpose": e.get("purpose"),
                "grant": e.get("grant"),
                "contract": e.get("contract"),
                "mode": e.get("mode"),
                "record_count": e.get("record_count"),
                "reason": e.get("reason"),
            }
            for idx, e in page
        ]
        more = len(rows) > limit
        return {"items": items, "next_before": items[-1]["index"] if more and items else None}


def _names(session: Any, party_ids: Iterable[str], resource_ids: Iterable[str]) -> dict[str, str]:
    parties, resources = set(party_ids), set(resource_ids)
    names: dict[str, str] = dict(
        session.execute(select(Party.id, Party.name).where(Party.id.in_(parties))).all()
    )
    names.update(session.execute(select(Resource.id, Resource.name).where(Resource.id.in_(resources))).all())
    return names


def _grant_row(r: ShareRequest, names: dict[str, str], now: datetime) -> GrantRow:
    scope = json.loads(r.scope_json)
    until = datetime.fromisoformat(str(scope["valid_until"]).replace("Z", "+00:00"))
    state = "revoked" if r.revoked_tx else ("expired" if until <= now else "active")
    assert r.grant_id is not None
    return GrantRow(
        grant_id=r.grant_id,
        request_id=r.id,
        resource_id=r.resource_id,
        resource_name=names.get(r.resource_id),
        grantee_id=r.requester_id,
        grantee_name=names.get(r.requester_id),
        provider_id=r.provider_id,
        provider_name=names.get(r.provider_id),
        purpose_code=r.purpose_code,
        mode=str(scope.get("mode", "raw")),
        fields=list(scope.get("fields", [])),
        valid_from=str(scope["valid_from"]),
        valid_until=str(scope["valid_until"]),
        max_accesses=int(scope.get("max_accesses", 0)),
        state=state,
    )

"""Alert rules (数据安全监测、预警): rules as code, thresholds in settings, evidence as log indices.

Each rule looks at the log (and, for deadlines and catalog upkeep, at the sharing tables) and returns
alerts with a severity and the log indices that prove them. Two paths share the rules
(:mod:`ledger.audit.rules`): :class:`AlertService` here evaluates them on demand over a time window
(``GET /v1/audit/alerts``); :class:`ledger.audit.monitor.AlertMonitor` evaluates them as events
arrive and stores what they raise (``GET /v1/audit/alerts/raised``). The gateway already
refuses accesses outside a grant; the grant rules here catch what an *external* exchange platform
recorded through ``POST /v1/access-events`` — those events are logged as reported, and the audit
checks them against the grants afterwards.

Rules:
- ``outside_grant_window`` — an access dated outside its grant's validity window;
- ``outside_grant_scope`` — an access of fields or in a mode the grant does not cover;
- ``after_revoke`` — an access under a grant after its revocation was logged;
- ``over_cap`` — more accesses under a grant than its ``max_accesses``;
- ``purpose_mismatch`` — an access whose purpose differs from its grant's;
- ``declared_use_mismatch`` — a derived product declared for a purpose other than the purposes its
  input accesses were made for (request vs later declared use);
- ``outside_contract`` — an access reported under an open contract while it was suspended or after it
  was terminated, or for a purpose or resource the contract does not name;
- ``denied_burst`` — a party refused ``denied_burst`` times within ``burst_minutes``;
- ``volume_spike`` — a party's accesses on a day above its own baseline (mean + 3σ of the window's
  other days, and at least ``spike_min`` accesses);
- ``off_hours_bulk`` — an access of ``bulk_records`` or more records outside 08:00–20:00 (Beijing time)
  or on a non-working day;
- ``overdue_request`` / ``overdue_dispute`` — unanswered past the 10-working-day deadline;
- ``catalog_stale`` — a catalog entry not updated for a year (每年至少全面维护一次).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ledger.audit.rules import (
    CHINA,
    SEVERITY_ORDER,
    Alert,
    Context,
    Event,
    Severity,
    Thresholds,
    beijing_day,
    burst_alert,
    bursts,
    deadline_alerts,
    event_alerts,
    grant_cap,
    over_cap,
    over_cap_alert,
    read_events,
    spike,
    spike_alert,
    stale_catalog_alerts,
)
from ledger.errors import Forbidden, InvalidInput
from ledger.store.db import Store
from ledger.store.models import LogEntry, Party
from ledger.types import PartyKind

__all__ = ["CHINA", "MAX_WINDOW_DAYS", "Alert", "AlertService", "Severity", "Thresholds", "require_auditor"]

MAX_WINDOW_DAYS = 92
AUDITORS = (PartyKind.REGULATOR, PartyKind.REGISTRAR)


def require_auditor(caller: Party) -> None:
    if caller.kind not in AUDITORS:
        raise Forbidden("alerts are for the regulator and the registrar", code="forbidden_role")


class AlertService:
    """Every rule over a window of the log, on demand (nothing stored)."""

    def __init__(self, *, store: Store, thresholds: Thresholds | None = None) -> None:
        self.store = store
        self.t = thresholds or Thresholds()

    def evaluate(
        self, caller: Party, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        require_auditor(caller)
        try:
            until = (until or datetime.now(UTC)).astimezone(UTC)
            since = (since or until - timedelta(days=7)).astimezone(UTC)
        except OverflowError:
            raise InvalidInput(
                "the window lies outside the calendar's range", code="invalid_time_range"
            ) from None
        if since >= until or until - since > timedelta(days=MAX_WINDOW_DAYS):
            raise InvalidInput(
                f"the window must be positive and at most {MAX_WINDOW_DAYS} days", code="invalid_time_range"
            )
        now = datetime.now(UTC)
        with self.store.read() as session:
            events = read_events(
                session,
                select(LogEntry.idx, LogEntry.entry)
                .where(LogEntry.time >= since, LogEntry.time < until)
                .order_by(LogEntry.idx),
            )
            ctx = Context.load(session, events)
            alerts = [
                *event_alerts(events, ctx, self.t),
                *self._over_cap(session, events, ctx),
                *self._denied_bursts(events),
                *self._volume_spikes(events),
                *deadline_alerts(session, now.astimezone(CHINA).date()),
                *stale_catalog_alerts(session, now, self.t),
            ]
        alerts.sort(key=lambda a: (SEVERITY_ORDER[a.severity], a.rule, a.evidence[:1]))
        return {"since": since, "until": until, "alerts": [a.as_json() for a in alerts]}

    # -- counting rules over the window ---------------------------------------------------------------
    def _over_cap(self, session: Any, events: list[Event], ctx: Context) -> Iterable[Alert]:
        """Grants used in the window whose accesses over the whole log pass the cap."""
        grants = {e.grant for e in events if e.kind == "access" and e.grant in ctx.grants}
        if not grants:
            return
        counts: dict[str, list[int]] = defaultdict(list)
        for g, idx in session.execute(
            select(LogEntry.grant_ref, LogEntry.idx)
            .where(LogEntry.grant_ref.in_(grants), LogEntry.kind == "access")
            .order_by(LogEntry.idx)
        ).all():
            counts[str(g)].append(int(idx))
        for g, indices in counts.items():
            row = ctx.grants[g]
            beyond = over_cap(grant_cap(row), 0, indices)
            if beyond:
                yield over_cap_alert(row, len(indices), beyond)

    def _denied_bursts(self, events: list[Event]) -> Iterable[Alert]:
        by_party: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        for e in events:
            if e.kind == "denied" and e.accessor:
                by_party[e.accessor].append((e.index, e.time))
        for party, refused in by_party.items():
            times = dict(refused)
            first = next(bursts(refused, self.t), None)  # the first burst of each party
            if first is not None:
                yield burst_alert(party, first, times[first[0]], self.t)

    def _volume_spikes(self, events: list[Event]) -> Iterable[Alert]:
        """A day against the window's other days with accesses (mean + 3σ, at least ``spike_min``)."""
        daily: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(list))
        for e in events:
            if e.kind == "access" and e.accessor:
                daily[e.accessor][beijing_day(e.time)].append(e.index)
        for party, days in daily.items():
            for day, indices in days.items():
                others = [len(v) for d, v in days.items() if d != day]
                baseline = spike(len(indices), others, self.t)
                if baseline is not None:
                    yield spike_alert(party, day, len(indices), baseline, indices)

"""Alert rules (数据安全监测、预警): rules as code, thresholds in settings, evidence as log indices.

Each rule looks at the log (and, for deadlines and catalog upkeep, at the sharing tables) over a time
window and returns alerts with a severity and the log indices that prove them. The gateway already
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

import enum
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ledger.errors import Forbidden, InvalidInput
from ledger.store.db import Store
from ledger.store.models import Dispute, LogEntry, OpenContract, Party, Resource, ShareRequest
from ledger.types import PartyKind, RequestStatus
from ledger.workdays import is_working_day

CHINA = ZoneInfo("Asia/Shanghai")
MAX_WINDOW_DAYS = 92


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Thresholds:
    denied_burst: int = 5
    burst_minutes: int = 10
    spike_min: int = 50
    bulk_records: int = 1000
    office_start: int = 8
    office_end: int = 20
    stale_days: int = 365


@dataclass
class Alert:
    rule: str
    severity: Severity
    party: str | None
    message: str
    evidence: list[int] = field(default_factory=list)
    resource: str | None = None
    grant: str | None = None
    time: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "party": self.party,
            "resource": self.resource,
            "grant": self.grant,
            "time": self.time,
            "message": self.message,
            "evidence": self.evidence[:100],
            "evidence_total": len(self.evidence),
        }


@dataclass(frozen=True)
class _Event:
    index: int
    kind: str
    time: datetime
    accessor: str | None
    resource: str | None
    grant: str | None
    contract: str | None
    purpose: str | None
    mode: str | None
    fields: tuple[str, ...]
    records: int
    inputs: tuple[int, ...] = ()


def _outside_contract(row: OpenContract, e: _Event) -> str | None:
    """Why an access reported under ``row`` was not covered by it, from the stored history."""
    if e.purpose not in json.loads(row.purposes_json):
        return f"access for purpose {e.purpose}, which the contract does not name"
    if e.resource not in json.loads(row.resources_json):
        return "access of a resource the contract does not name"
    state = "proposed"
    for change in json.loads(row.history_json):
        if _time(change["at"]) > e.time:
            break
        state = {"effective": "effective", "resumed": "effective"}.get(change["event"], change["event"])
    if state in ("suspended", "terminated", "proposed", "signed"):
        return f"access while the contract was {state}"
    return None


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class AlertService:
    def __init__(self, *, store: Store, thresholds: Thresholds | None = None) -> None:
        self.store = store
        self.t = thresholds or Thresholds()

    def evaluate(
        self, caller: Party, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        if caller.kind not in (PartyKind.REGULATOR, PartyKind.REGISTRAR):
            raise Forbidden("alerts are for the regulator and the registrar", code="forbidden_role")
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
        events = self._events(since, until)
        alerts = [
            *self._grant_rules(events),
            *self._contract_rules(events),
            *self._declarations(events),
            *self._denied_bursts(events),
            *self._volume_spikes(events),
            *self._off_hours(events),
            *self._deadlines(),
            *self._stale_catalog(),
        ]
        order = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
        alerts.sort(key=lambda a: (order[a.severity], a.rule, a.evidence[:1]))
        return {"since": since, "until": until, "alerts": [a.as_json() for a in alerts]}

    # -- inputs -------------------------------------------------------------------------------------
    def _events(self, since: datetime, until: datetime) -> list[_Event]:
        with self.store.read() as session:
            rows = session.execute(
                select(LogEntry.idx, LogEntry.entry)
                .where(LogEntry.time >= since, LogEntry.time < until)
                .order_by(LogEntry.idx)
            ).all()
        events = []
        for idx, raw in rows:
            e = json.loads(raw)
            events.append(
                _Event(
                    index=int(idx),
                    kind=str(e.get("kind")),
                    time=_time(e["time"]),
                    accessor=e.get("accessor"),
                    resource=e.get("resource"),
                    grant=e.get("grant"),
                    contract=e.get("contract"),
                    purpose=e.get("purpose"),
                    mode=e.get("mode"),
                    fields=tuple(e.get("fields") or ()),
                    records=int(e.get("record_count") or 0),
                    inputs=tuple(int(i) for i in e.get("inputs") or () if isinstance(i, int)),
                )
            )
        return events

    # -- rules --------------------------------------------------------------------------------------
    def _contract_rules(self, events: list[_Event]) -> Iterable[Alert]:
        accesses = [e for e in events if e.kind == "access" and e.contract]
        if not accesses:
            return
        with self.store.read() as session:
            rows = {
                r.id: r
                for r in session.scalars(
                    select(OpenContract).where(OpenContract.id.in_({e.contract for e in accesses}))
                )
            }
        for e in accesses:
            row = rows.get(e.contract or "")
            if row is None:
                continue
            base = {
                "party": e.accessor,
                "resource": e.resource,
                "grant": e.contract,
                "time": e.time.isoformat(),
            }
            why = _outside_contract(row, e)
            if why:
                yield Alert("outside_contract", Severity.HIGH, message=why, evidence=[e.index], **base)

    def _declarations(self, events: list[_Event]) -> Iterable[Alert]:
        declared = [e for e in events if e.kind == "declaration" and e.purpose and e.inputs]
        if not declared:
            return
        wanted = {i for e in declared for i in e.inputs}
        with self.store.read() as session:
            taken = {
                int(idx): json.loads(raw).get("purpose")
                for idx, raw in session.execute(
                    select(LogEntry.idx, LogEntry.entry).where(LogEntry.idx.in_(wanted))
                ).all()
            }
        for e in declared:
            purposes = {taken.get(i) for i in e.inputs}
            if e.purpose not in purposes:
                yield Alert(
                    "declared_use_mismatch",
                    Severity.MEDIUM,
                    evidence=[e.index, *e.inputs],
                    message=f"derived product declared for {e.purpose}; its data was taken for "
                    f"{', '.join(sorted(p for p in purposes if p))}",
                    party=e.accessor,
                    resource=e.resource,
                    time=e.time.isoformat(),
                )

    def _grant_rules(self, events: list[_Event]) -> Iterable[Alert]:
        accesses = [e for e in events if e.kind == "access" and e.grant]
        grants = {e.grant for e in accesses}
        if not grants:
            return
        with self.store.read() as session:
            rows = {
                r.grant_id: r
                for r in session.scalars(select(ShareRequest).where(ShareRequest.grant_id.in_(grants)))
            }
        counts: dict[str, list[int]] = defaultdict(list)  # over the whole log, not just the window
        revokes: dict[str, int] = {}
        with self.store.read() as session:
            for g, idx, kind in session.execute(
                select(LogEntry.grant_ref, LogEntry.idx, LogEntry.kind)
                .where(LogEntry.grant_ref.in_(grants), LogEntry.kind.in_(("access", "revoke")))
                .order_by(LogEntry.idx)
            ).all():
                if kind == "access":
                    counts[str(g)].append(int(idx))
                else:
                    revokes.setdefault(str(g), int(idx))
        for e in accesses:
            row = rows.get(e.grant)
            if row is None:
                continue
            scope = json.loads(row.scope_json)
            start, end = _time(scope["valid_from"]), _time(scope["valid_until"])
            base = {"party": e.accessor, "resource": e.resource, "grant": e.grant, "time": e.time.isoformat()}
            if not start <= e.time < end:
                yield Alert(
                    "outside_grant_window",
                    Severity.HIGH,
                    message="access outside the grant's validity window",
                    evidence=[e.index],
                    **base,
                )
            extra = sorted(set(e.fields) - set(scope["fields"]))
            if extra or (e.mode and e.mode != scope.get("mode")):
                yield Alert(
                    "outside_grant_scope",
                    Severity.HIGH,
                    evidence=[e.index],
                    message=f"access outside the grant's scope (fields {extra}, mode {e.mode})",
                    **base,
                )
            revoked_at = revokes.get(e.grant or "")
            if revoked_at is not None and revoked_at < e.index:
                yield Alert(
                    "after_revoke",
                    Severity.HIGH,
                    evidence=[revoked_at, e.index],
                    message="access after the grant was revoked",
                    **base,
                )
            if e.purpose and e.purpose != row.purpose_code:
                yield Alert(
                    "purpose_mismatch",
                    Severity.MEDIUM,
                    evidence=[e.index],
                    message=f"access for purpose {e.purpose}, granted for {row.purpose_code}",
                    **base,
                )
        for g, indices in counts.items():
            row = rows.get(g)
            if row is None:
                continue
            cap = int(json.loads(row.scope_json)["max_accesses"])
            if len(indices) > cap:
                yield Alert(
                    "over_cap",
                    Severity.HIGH,
                    party=row.requester_id,
                    resource=row.resource_id,
                    grant=g,
                    message=f"{len(indices)} accesses under a grant capped at {cap}",
                    evidence=indices[cap:],
                )

    def _denied_bursts(self, events: list[_Event]) -> Iterable[Alert]:
        by_party: dict[str, list[_Event]] = defaultdict(list)
        for e in events:
            if e.kind == "denied" and e.accessor:
                by_party[e.accessor].append(e)
        window = timedelta(minutes=self.t.burst_minutes)
        for party, refused in by_party.items():
            start = 0
            for end in range(len(refused)):
                while refused[end].time - refused[start].time > window:
                    start += 1
                if end - start + 1 >= self.t.denied_burst:
                    burst = refused[start : end + 1]
                    yield Alert(
                        "denied_burst",
                        Severity.MEDIUM,
                        party=party,
                        time=burst[0].time.isoformat(),
                        message=f"{len(burst)} refused attempts within {self.t.burst_minutes} minutes",
                        evidence=[e.index for e in burst],
                    )
                    break

    def _volume_spikes(self, events: list[_Event]) -> Iterable[Alert]:
        daily: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(list))
        for e in events:
            if e.kind == "access" and e.accessor:
                daily[e.accessor][e.time.astimezone(CHINA).date()].append(e.index)
        for party, days in daily.items():
            if len(days) < 3:
                continue
            for day, indices in days.items():
                others = [len(v) for d, v in days.items() if d != day]
                mean = statistics.fmean(others)
                spread = statistics.pstdev(others)
                if len(indices) >= self.t.spike_min and len(indices) > mean + 3 * spread:
                    yield Alert(
                        "volume_spike",
                        Severity.MEDIUM,
                        party=party,
                        time=day.isoformat(),
                        message=f"{len(indices)} accesses on {day}, baseline {mean:.1f} ± {spread:.1f}",
                        evidence=indices,
                    )

    def _off_hours(self, events: list[_Event]) -> Iterable[Alert]:
        for e in events:
            if e.kind != "access" or e.records < self.t.bulk_records:
                continue
            local = e.time.astimezone(CHINA)
            office = self.t.office_start <= local.hour < self.t.office_end and is_working_day(local.date())
            if not office:
                yield Alert(
                    "off_hours_bulk",
                    Severity.MEDIUM,
                    party=e.accessor,
                    resource=e.resource,
                    grant=e.grant,
                    time=e.time.isoformat(),
                    evidence=[e.index],
                    message=f"{e.records} records at {local:%Y-%m-%d %H:%M} (Beijing time), off hours",
                )

    def _deadlines(self) -> Iterable[Alert]:
        today = datetime.now(CHINA).date()
        with self.store.read() as session:
            late = list(
                session.scalars(
                    select(ShareRequest).where(
                        ShareRequest.status == RequestStatus.PENDING, ShareRequest.respond_by < today
                    )
                )
            )
            disputes = list(
                session.scalars(select(Dispute).where(Dispute.status == "open", Dispute.respond_by < today))
            )
        for r in late:
            yield Alert(
                "overdue_request",
                Severity.MEDIUM,
                party=r.provider_id,
                resource=r.resource_id,
                message=f"share request {r.id} unanswered since {r.respond_by} (10 working days)",
            )
        for d in disputes:
            yield Alert(
                "overdue_dispute",
                Severity.MEDIUM,
                party=d.provider_id,
                resource=d.resource_id,
                message=f"dispute {d.id} unanswered since {d.respond_by}",
            )

    def _stale_catalog(self) -> Iterable[Alert]:
        cutoff = datetime.now(UTC) - timedelta(days=self.t.stale_days)
        with self.store.read() as session:
            stale = list(session.scalars(select(Resource).where(Resource.updated_at < cutoff)))
        for r in stale:
            yield Alert(
                "catalog_stale",
                Severity.LOW,
                party=r.provider_id,
                resource=r.id,
                message=f"catalog entry {r.code} not maintained since {r.updated_at:%Y-%m-%d}",
            )

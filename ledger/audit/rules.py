"""The alert rules themselves, shared by the on-demand evaluation (:mod:`ledger.audit.alerts`) and the
monitor that evaluates them as events arrive (:mod:`ledger.audit.monitor`).

A rule is judged the same way on both paths: an event rule looks at one log entry and what the
ledger knows about its grant or contract (:class:`Context`, loaded in a few batched queries); the
counting rules (over the cap, denied bursts, volume spikes) are small functions of the counts that
each path gathers its own way — over a window on demand, incrementally from a cursor in the monitor.

Each alert names its *subject* (the grant, the contract, the party, the party's day, the request…):
the monitor keeps one open alert per rule and subject and adds later evidence to it (de-duplication).
"""

from __future__ import annotations

import enum
import json
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.store.models import Dispute, LogEntry, OpenContract, Resource, ShareRequest
from ledger.types import RequestStatus
from ledger.workdays import is_working_day

CHINA = ZoneInfo("Asia/Shanghai")


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


class AlertStatus(enum.StrEnum):
    """A stored alert's state: open until a regulator acknowledges it (who, when, with a note)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class Rule(enum.StrEnum):
    OUTSIDE_GRANT_WINDOW = "outside_grant_window"
    OUTSIDE_GRANT_SCOPE = "outside_grant_scope"
    AFTER_REVOKE = "after_revoke"
    OVER_CAP = "over_cap"
    PURPOSE_MISMATCH = "purpose_mismatch"
    DECLARED_USE_MISMATCH = "declared_use_mismatch"
    OUTSIDE_CONTRACT = "outside_contract"
    DENIED_BURST = "denied_burst"
    VOLUME_SPIKE = "volume_spike"
    OFF_HOURS_BULK = "off_hours_bulk"
    OVERDUE_REQUEST = "overdue_request"
    OVERDUE_DISPUTE = "overdue_dispute"
    CATALOG_STALE = "catalog_stale"


TIME_DRIVEN = frozenset({Rule.OVERDUE_REQUEST, Rule.OVERDUE_DISPUTE, Rule.CATALOG_STALE})
"""Rules judged on the state of the sharing tables and the clock, not on a log entry: the monitor
evaluates them periodically, and an alert raised for one stays the only alert of its subject."""


@dataclass(frozen=True)
class Thresholds:
    denied_burst: int = 5
    burst_minutes: int = 10
    spike_min: int = 50
    bulk_records: int = 1000
    office_start: int = 8
    office_end: int = 20
    stale_days: int = 365
    baseline_days: int = 28  # the monitor's baseline: the party's previous days with accesses


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
    subject: str = ""  # what the monitor de-duplicates on, with the rule

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
class Event:
    """The fields of a log entry the rules read."""

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

    @classmethod
    def parse(cls, index: int, raw: bytes) -> Event:
        e = json.loads(raw)
        return cls(
            index=int(index),
            kind=str(e.get("kind")),
            time=parse_time(e["time"]),
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


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_events(session: Session, stmt: Any) -> list[Event]:
    """Events from a ``select(LogEntry.idx, LogEntry.entry)`` statement, in its order."""
    return [Event.parse(idx, raw) for idx, raw in session.execute(stmt).all()]


# -- what the event rules look up -------------------------------------------------------------------
@dataclass
class Context:
    """The grants, first revocations, contracts and declared inputs the event rules need, for one
    batch of events (four queries at most, whatever the batch's size)."""

    grants: dict[str, ShareRequest]
    revokes: dict[str, int]  # first revocation logged per grant (its log index)
    contracts: dict[str, OpenContract]
    taken: dict[int, str | None]  # purpose of each access a declaration names as an input

    @classmethod
    def load(cls, session: Session, events: Sequence[Event]) -> Context:
        grant_ids = {e.grant for e in events if e.kind == "access" and e.grant}
        contract_ids = {e.contract for e in events if e.kind == "access" and e.contract}
        wanted = {i for e in events if e.kind == "declaration" and e.purpose for i in e.inputs}
        grants: dict[str, ShareRequest] = {}
        revokes: dict[str, int] = {}
        if grant_ids:
            grants = {
                str(r.grant_id): r
                for r in session.scalars(select(ShareRequest).where(ShareRequest.grant_id.in_(grant_ids)))
            }
            for g, idx in session.execute(
                select(LogEntry.grant_ref, LogEntry.idx)
                .where(LogEntry.grant_ref.in_(grant_ids), LogEntry.kind == "revoke")
                .order_by(LogEntry.idx)
            ).all():
                revokes.setdefault(str(g), int(idx))
        contracts = (
            {r.id: r for r in session.scalars(select(OpenContract).where(OpenContract.id.in_(contract_ids)))}
            if contract_ids
            else {}
        )
        taken = (
            {
                int(idx): json.loads(raw).get("purpose")
                for idx, raw in session.execute(
                    select(LogEntry.idx, LogEntry.entry).where(LogEntry.idx.in_(wanted))
                ).all()
            }
            if wanted
            else {}
        )
        return cls(grants=grants, revokes=revokes, contracts=contracts, taken=taken)


# -- event rules: one entry at a time ---------------------------------------------------------------
def grant_alerts(e: Event, ctx: Context) -> Iterator[Alert]:
    """An access reported under a grant, judged against the grant (window, scope, revocation, purpose).

    The gateway refuses such accesses itself; these catch what an external exchange platform
    reported through ``POST /v1/access-events``."""
    row = ctx.grants.get(e.grant or "") if e.kind == "access" else None
    if row is None:
        return
    scope = json.loads(row.scope_json)
    start, end = parse_time(scope["valid_from"]), parse_time(scope["valid_until"])
    base: dict[str, Any] = {
        "party": e.accessor,
        "resource": e.resource,
        "grant": e.grant,
        "time": e.time.isoformat(),
        "subject": f"grant:{e.grant}",
    }
    if not start <= e.time < end:
        yield Alert(
            Rule.OUTSIDE_GRANT_WINDOW,
            Severity.HIGH,
            message="access outside the grant's validity window",
            evidence=[e.index],
            **base,
        )
    extra = sorted(set(e.fields) - set(scope["fields"]))
    if extra or (e.mode and e.mode != scope.get("mode")):
        yield Alert(
            Rule.OUTSIDE_GRANT_SCOPE,
            Severity.HIGH,
            evidence=[e.index],
            message=f"access outside the grant's scope (fields {extra}, mode {e.mode})",
            **base,
        )
    revoked_at = ctx.revokes.get(e.grant or "")
    if revoked_at is not None and revoked_at < e.index:
        yield Alert(
            Rule.AFTER_REVOKE,
            Severity.HIGH,
            evidence=[revoked_at, e.index],
            message="access after the grant was revoked",
            **base,
        )
    if e.purpose and e.purpose != row.purpose_code:
        yield Alert(
            Rule.PURPOSE_MISMATCH,
            Severity.MEDIUM,
            evidence=[e.index],
            message=f"access for purpose {e.purpose}, granted for {row.purpose_code}",
            **base,
        )


def outside_contract(row: OpenContract, e: Event) -> str | None:
    """Why an access reported under ``row`` was not covered by it, from the stored history."""
    if e.purpose not in json.loads(row.purposes_json):
        return f"access for purpose {e.purpose}, which the contract does not name"
    if e.resource not in json.loads(row.resources_json):
        return "access of a resource the contract does not name"
    state = "proposed"
    for change in json.loads(row.history_json):
        if parse_time(change["at"]) > e.time:
            break
        state = {"effective": "effective", "resumed": "effective"}.get(change["event"], change["event"])
    if state in ("suspended", "terminated", "proposed", "signed"):
        return f"access while the contract was {state}"
    return None


def contract_alerts(e: Event, ctx: Context) -> Iterator[Alert]:
    row = ctx.contracts.get(e.contract or "") if e.kind == "access" else None
    why = outside_contract(row, e) if row is not None else None
    if why:
        yield Alert(
            Rule.OUTSIDE_CONTRACT,
            Severity.HIGH,
            message=why,
            evidence=[e.index],
            party=e.accessor,
            resource=e.resource,
            grant=e.contract,
            time=e.time.isoformat(),
            subject=f"contract:{e.contract}",
        )


def declaration_alerts(e: Event, ctx: Context) -> Iterator[Alert]:
    """A derived product declared for another purpose than its inputs were taken for (the request
    versus the later declared use)."""
    if e.kind != "declaration" or not e.purpose or not e.inputs:
        return
    purposes = {ctx.taken.get(i) for i in e.inputs}
    if e.purpose not in purposes:
        yield Alert(
            Rule.DECLARED_USE_MISMATCH,
            Severity.MEDIUM,
            evidence=[e.index, *e.inputs],
            message=f"derived product declared for {e.purpose}; its data was taken for "
            f"{', '.join(sorted(p for p in purposes if p))}",
            party=e.accessor,
            resource=e.resource,
            time=e.time.isoformat(),
            subject=f"party:{e.accessor}:contract:{e.contract}",
        )


def off_hours_alerts(e: Event, t: Thresholds) -> Iterator[Alert]:
    """A bulk pull (``bulk_records`` or more) outside office hours, Beijing time, or on a non-working
    day (statutory holidays and 调休 counted)."""
    if e.kind != "access" or e.records < t.bulk_records:
        return
    local = e.time.astimezone(CHINA)
    if t.office_start <= local.hour < t.office_end and is_working_day(local.date()):
        return
    yield Alert(
        Rule.OFF_HOURS_BULK,
        Severity.MEDIUM,
        party=e.accessor,
        resource=e.resource,
        grant=e.grant,
        time=e.time.isoformat(),
        evidence=[e.index],
        message=f"{e.records} records at {local:%Y-%m-%d %H:%M} (Beijing time), off hours",
        subject=f"party:{e.accessor}:resource:{e.resource}",
    )


def event_alerts(events: Iterable[Event], ctx: Context, t: Thresholds) -> Iterator[Alert]:
    """Every event rule over ``events``, rule by rule (the on-demand report's order)."""
    events = list(events)
    for e in events:
        yield from grant_alerts(e, ctx)
    for e in events:
        yield from contract_alerts(e, ctx)
    for e in events:
        yield from declaration_alerts(e, ctx)
    for e in events:
        yield from off_hours_alerts(e, t)


# -- counting rules ---------------------------------------------------------------------------------
def over_cap(cap: int, prior: int, indices: Sequence[int]) -> list[int]:
    """The accesses beyond a grant's ``max_accesses``: ``indices`` in log order, after ``prior``
    earlier accesses under the same grant."""
    return list(indices[max(0, cap - prior) :])


def over_cap_alert(row: ShareRequest, total: int, beyond: list[int]) -> Alert:
    cap = int(json.loads(row.scope_json)["max_accesses"])
    return Alert(
        Rule.OVER_CAP,
        Severity.HIGH,
        party=row.requester_id,
        resource=row.resource_id,
        grant=row.grant_id,
        message=f"{total} accesses under a grant capped at {cap}",
        evidence=beyond,
        subject=f"grant:{row.grant_id}",
    )


def grant_cap(row: ShareRequest) -> int:
    return int(json.loads(row.scope_json)["max_accesses"])


def bursts(refused: Sequence[tuple[int, datetime]], t: Thresholds) -> Iterator[list[int]]:
    """For each refusal that completes a burst (``denied_burst`` refusals of one party within
    ``burst_minutes``), the log indices of that burst. ``refused`` is one party's, in log order."""
    window = timedelta(minutes=t.burst_minutes)
    start = 0
    for end in range(len(refused)):
        while refused[end][1] - refused[start][1] > window:
            start += 1
        if end - start + 1 >= t.denied_burst:
            yield [index for index, _ in refused[start : end + 1]]


def burst_alert(party: str, burst: list[int], at: datetime, t: Thresholds) -> Alert:
    return Alert(
        Rule.DENIED_BURST,
        Severity.MEDIUM,
        party=party,
        time=at.isoformat(),
        message=f"{len(burst)} refused attempts within {t.burst_minutes} minutes",
        evidence=burst,
        subject=f"party:{party}",
    )


def spike(count: int, others: Sequence[int], t: Thresholds) -> tuple[float, float] | None:
    """``(mean, spread)`` of the baseline when a day's ``count`` is a spike against it — above
    mean + 3σ of the party's other days with accesses (at least two of them) and at least
    ``spike_min`` — else None."""
    if len(others) < 2:
        return None
    mean = statistics.fmean(others)
    spread = statistics.pstdev(others)
    if count >= t.spike_min and count > mean + 3 * spread:
        return mean, spread
    return None


def spike_alert(
    party: str, day: date, count: int, baseline: tuple[float, float], evidence: list[int]
) -> Alert:
    mean, spread = baseline
    return Alert(
        Rule.VOLUME_SPIKE,
        Severity.MEDIUM,
        party=party,
        time=day.isoformat(),
        message=f"{count} accesses on {day}, baseline {mean:.1f} ± {spread:.1f}",
        evidence=evidence,
        subject=f"party:{party}:day:{day.isoformat()}",
    )


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


# -- time-driven rules: the state of the sharing tables ---------------------------------------------
def deadline_alerts(session: Session, today: date) -> Iterator[Alert]:
    """Share requests and disputes unanswered past their 10-working-day deadline (筑府发〔2017〕6号)."""
    late = session.scalars(
        select(ShareRequest)
        .where(ShareRequest.status == RequestStatus.PENDING, ShareRequest.respond_by < today)
        .order_by(ShareRequest.respond_by, ShareRequest.id)
    ).all()
    disputes = session.scalars(
        select(Dispute)
        .where(Dispute.status == "open", Dispute.respond_by < today)
        .order_by(Dispute.respond_by, Dispute.id)
    ).all()
    for r in late:
        yield Alert(
            Rule.OVERDUE_REQUEST,
            Severity.MEDIUM,
            party=r.provider_id,
            resource=r.resource_id,
            message=f"share request {r.id} unanswered since {r.respond_by} (10 working days)",
            subject=f"request:{r.id}",
        )
    for d in disputes:
        yield Alert(
            Rule.OVERDUE_DISPUTE,
            Severity.MEDIUM,
            party=d.provider_id,
            resource=d.resource_id,
            message=f"dispute {d.id} unanswered since {d.respond_by}",
            subject=f"dispute:{d.id}",
        )


def stale_catalog_alerts(session: Session, now: datetime, t: Thresholds) -> Iterator[Alert]:
    """Catalog entries not maintained for ``stale_days`` (每年至少全面维护一次). The subject names the
    last update, so an entry maintained and then neglected again is a new alert."""
    cutoff = now.astimezone(UTC) - timedelta(days=t.stale_days)
    stale = session.scalars(
        select(Resource).where(Resource.updated_at < cutoff).order_by(Resource.updated_at, Resource.id)
    ).all()
    for r in stale:
        yield Alert(
            Rule.CATALOG_STALE,
            Severity.LOW,
            party=r.provider_id,
            resource=r.id,
            message=f"catalog entry {r.code} not maintained since {r.updated_at:%Y-%m-%d}",
            subject=f"resource:{r.id}:since:{r.updated_at:%Y-%m-%dT%H:%M:%S}",
        )

"""Statistics and per-department scorecards (考核): exchanges, response times, catalog upkeep, disputes.

The Guiyang plan evaluates departments on the scope, quality and timeliness of what they share; the
city reports its exchanges by department, resource and month. Everything here is read from the
ledger's own records:

- an **exchange** is a logged access event (kind ``access``; refusals are not exchanges), counted
  per Beijing day in rollups kept up with the log by a cursor, plus the log's own entries for the
  period's partial days and for what the rollups have not reached yet — exact at every moment, and
  a read of at most a few hundred thousand rollup rows however large the log (:mod:`ledger.audit.rollup`;
  ``Counting.LOG`` counts from the log alone, the reference);
- **response times** come from the share requests that called for the provider's answer (automatic
  grants of unconditional resources — 智能合约自动共享 — called for none): the statutory deadline is
  10 working days from the application date (筑府发〔2017〕6号, :mod:`ledger.workdays`);
- **catalog upkeep** from the resource versions: an entry is maintained when a version was published
  in the year before the period's end (每年至少全面维护一次);
- **catalog coverage**: the share of a department's catalog entries open to sharing (无条件 or
  有条件共享) — the plan's rule is "以共享为原则，不共享为例外";
- **disputes** (疑义数据校核) from the dispute records.

The score (0–100) is the weighted mean of the components a department has data for; docs/audit.md
states the formula.
"""

from __future__ import annotations

import enum
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from ledger.audit.rollup import ExchangeScope, log_exchanges, rolled_exchanges, snapshot
from ledger.errors import Forbidden, InvalidInput, NotFound
from ledger.store.db import Store
from ledger.store.models import Dispute, Party, Resource, ResourceVersion, ShareRequest
from ledger.types import PartyKind, RequestStatus, ShareType
from ledger.workdays import working_days_between

CHINA = ZoneInfo("Asia/Shanghai")
AUDITORS = (PartyKind.REGULATOR, PartyKind.REGISTRAR)
MAINTENANCE_DAYS = 365  # 每年至少全面维护一次
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)
#: Score weights (docs/audit.md): on-time answers, catalog upkeep, catalog coverage, disputes closed.
WEIGHTS = {"on_time": 40.0, "maintained": 25.0, "coverage": 20.0, "disputes": 15.0}
_UNANSWERED = (RequestStatus.PENDING, RequestStatus.AWAITING_DECISION_SIGNATURE)
_ANSWERED_STATES = ("answered",)  # ledger.sharing.disputes.DisputeStatus.ANSWERED
_OPEN_DISPUTE = "open"  # ledger.sharing.disputes.DisputeStatus.OPEN


@dataclass(frozen=True)
class DepartmentCount:
    party_id: str
    name: str | None
    count: int


@dataclass(frozen=True)
class ResourceCount:
    resource_id: str
    code: str | None
    name: str | None
    provider_id: str | None
    count: int


@dataclass(frozen=True)
class MonthCount:
    month: str  # YYYY-MM, Beijing time
    count: int


@dataclass(frozen=True)
class Scorecard:
    party_id: str
    name: str
    resources: int
    resources_maintained_within_year: int
    catalog_coverage: float | None
    requests_received: int
    requests_answered: int
    answered_on_time: int
    on_time_rate: float | None
    median_response_working_days: float | None
    overdue_open: int
    disputes: int
    disputes_closed: int
    median_dispute_days: float | None  # working days from filing to answer
    exchanges_provided: int
    exchanges_consumed: int
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Statistics:
    since: datetime | None
    until: datetime | None
    by_department: list[DepartmentCount]  # exchanges whose data the department provided
    by_resource: list[ResourceCount]
    by_month: list[MonthCount]
    scorecards: list[Scorecard]

    @property
    def total(self) -> int:
        return sum(m.count for m in self.by_month)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /v1/audit/statistics``."""
        return {
            "period": {"since": _iso(self.since), "until": _iso(self.until)},
            "exchanges": {
                "by_department": [
                    {"party_id": d.party_id, "name": d.name, "count": d.count} for d in self.by_department
                ],
                "by_resource": [
                    {
                        "resource_id": r.resource_id,
                        "code": r.code,
                        "name": r.name,
                        "provider_id": r.provider_id,
                        "count": r.count,
                    }
                    for r in self.by_resource
                ],
                "by_month": [{"month": m.month, "count": m.count} for m in self.by_month],
            },
            "scorecards": [s.to_dict() for s in self.scorecards],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _utc(value: datetime | None) -> datetime | None:
    """Timestamps are stored in UTC (SQLite keeps the wall time without its offset)."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            "the period lies outside the calendar's range", code="invalid_time_range"
        ) from None


def check_period(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Both ends in UTC, ``since`` before ``until``, each within 1970–2999 (the log holds no other
    times, and the date arithmetic on a period's ends must not leave the calendar)."""
    since, until = _utc(since), _utc(until)
    for end in (since, until):
        if end is not None and not EARLIEST <= end < LATEST:
            raise InvalidInput("the period must lie within 1970–2999", code="invalid_time_range")
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until", code="invalid_time_range")
    return since, until


def score(components: dict[str, float | None]) -> float | None:
    """100 × the weighted mean of the defined components (each 0–1); None when none is defined."""
    used = [(WEIGHTS[k], v) for k, v in components.items() if v is not None]
    if not used:
        return None
    return round(100 * sum(w * v for w, v in used) / sum(w for w, _ in used), 1)


@lru_cache(maxsize=65_536)
def _working_days(a: date, b: date) -> int:
    return working_days_between(a, b)


def _days(column: Any, first: date | None, last: date | None) -> list[ColumnElement[bool]]:
    """A date column within the period's Beijing calendar days (either end open)."""
    return [
        c for c in (column >= first if first else None, column <= last if last else None) if c is not None
    ]


def _since(value: datetime | None, cutoff: datetime) -> bool:
    stamp = _utc(value)
    return stamp is not None and stamp >= cutoff


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class Counting(enum.StrEnum):
    """Where the exchanges are counted: the rollups and the log's live tail (exact and fast, the
    service's default), or the log alone (the reference the rollup path is tested against)."""

    ROLLUP = "rollup"
    LOG = "log"


class StatisticsService:
    def __init__(self, *, store: Store, counting: Counting = Counting.ROLLUP) -> None:
        self.store = store
        self.counting = counting

    # -- entry points -------------------------------------------------------------------------------
    def report_for(
        self,
        caller: Party,
        *,
        since: datetime | None,
        until: datetime | None,
        party_id: str | None = None,
    ) -> Statistics:
        """:meth:`report` for a caller: the regulator and the registrar see every department; a
        department sees its own scorecard (and the exchanges it took part in) only."""
        return self.report(since=since, until=until, party_id=self.scope(caller, party_id))

    def scope(self, caller: Party, party_id: str | None) -> str | None:
        """The party filter ``caller`` may use: any (or none) for auditors, its own for a department."""
        if caller.kind in AUDITORS:
            return party_id
        if caller.kind is PartyKind.DEPARTMENT:
            if party_id not in (None, caller.id):
                raise Forbidden("a department sees its own scorecard only", code="own_scorecard_only")
            return caller.id
        raise Forbidden(
            "statistics are for the regulator, the registrar and each department's own scorecard",
            code="forbidden_role",
        )

    def report(
        self,
        *,
        since: datetime | None,
        until: datetime | None,
        party_id: str | None = None,
        resource_id: str | None = None,
    ) -> Statistics:
        """Exchanges in ``[since, until)`` and the departments' scorecards. Unchecked: callers on
        behalf of a party use :meth:`report_for`. ``party_id`` narrows the exchanges to those the
        party provided or took and the scorecards to its own; ``resource_id`` narrows the exchanges to
        that resource and the scorecards to its provider."""
        since, until = check_period(since, until)
        with self.store.read() as session:
            snapshot(session)  # the rollups, their cursor and the log's tail read as one
            parties = dict(session.execute(select(Party.id, Party.name)).all())
            if party_id is not None and party_id not in parties:
                raise NotFound(f"no party {party_id}", code="party_not_found")
            resources = {
                r.id: r
                for r in session.execute(
                    select(Resource.id, Resource.code, Resource.name, Resource.provider_id)
                )
            }
            scoped: Any = None
            if resource_id is not None:
                scoped = resources.get(resource_id) or next(
                    (r for r in resources.values() if r.code == resource_id), None
                )
                if scoped is None:
                    raise NotFound(f"no resource {resource_id}", code="resource_not_found")
            by_ref = {**{r.code: r for r in resources.values()}, **resources}
            own = tuple(
                ref for r in resources.values() if r.provider_id == party_id for ref in (r.id, r.code)
            )
            scope = ExchangeScope(
                since=since,
                until=until,
                party=party_id,
                own=own if party_id is not None else (),
                resource=None if scoped is None else (scoped.id, scoped.code),
            )
            if self.counting is Counting.ROLLUP:
                counts = rolled_exchanges(session, scope)
            else:
                counts = log_exchanges(session, scope)
            if scoped is not None:
                card_parties = [scoped.provider_id]
            elif party_id is not None:
                card_parties = [party_id]
            else:
                card_parties = list(
                    session.scalars(select(Party.id).where(Party.kind == PartyKind.DEPARTMENT))
                )
            provided: dict[str, int] = defaultdict(int)
            consumed: dict[str, int] = defaultdict(int)
            by_resource: dict[str, int] = defaultdict(int)
            for accessor, count in counts.takers.items():
                if accessor is not None:
                    consumed[accessor] += count
            for (provider, ref), count in counts.pairs.items():
                owner = provider or (by_ref[ref].provider_id if ref in by_ref else None)
                if owner is not None:
                    provided[owner] += count
                key = by_ref[ref].id if ref in by_ref else ref
                if key is not None:
                    by_resource[key] += count
            cards = self._scorecards(session, card_parties, parties, since, until, provided, consumed)
        return Statistics(
            since=since,
            until=until,
            by_department=[
                DepartmentCount(p, parties.get(p), n)
                for p, n in sorted(provided.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            by_resource=[
                ResourceCount(
                    resource_id=rid,
                    code=resources[rid].code if rid in resources else None,
                    name=resources[rid].name if rid in resources else None,
                    provider_id=resources[rid].provider_id if rid in resources else None,
                    count=n,
                )
                for rid, n in sorted(by_resource.items(), key=lambda kv: (-kv[1], str(kv[0])))
            ],
            by_month=[MonthCount(m, n) for m, n in sorted(counts.months.items()) if n],
            scorecards=cards,
        )

    # -- scorecards ---------------------------------------------------------------------------------
    def _scorecards(
        self,
        session: Session,
        party_ids: list[str],
        names: dict[str, str],
        since: datetime | None,
        until: datetime | None,
        provided: dict[str, int],
        consumed: dict[str, int],
    ) -> list[Scorecard]:
        if not party_ids:
            return []
        first_day = since.astimezone(CHINA).date() if since else None
        last_day = (until - timedelta(microseconds=1)).astimezone(CHINA).date() if until else None
        reference = until or datetime.now(UTC)
        today = datetime.now(CHINA).date()

        catalog: dict[str, list[tuple[str, ShareType]]] = defaultdict(list)
        for rid, holder, share in session.execute(
            select(Resource.id, Resource.provider_id, Resource.share_type).where(
                Resource.provider_id.in_(party_ids), Resource.version > 0, Resource.created_at < reference
            )
        ):
            catalog[holder].append((rid, share))
        last_version = dict(
            session.execute(
                select(ResourceVersion.resource_id, func.max(ResourceVersion.created_at))
                .join(Resource, Resource.id == ResourceVersion.resource_id)
                .where(Resource.provider_id.in_(party_ids), ResourceVersion.created_at < reference)
                .group_by(ResourceVersion.resource_id)
            ).all()
        )
        fresh_after = reference - timedelta(days=MAINTENANCE_DAYS)

        requests: dict[str, list[Any]] = defaultdict(list)
        q = select(
            ShareRequest.provider_id,
            ShareRequest.applied_on,
            ShareRequest.decided_on,
            ShareRequest.respond_by,
            ShareRequest.status,
        ).where(
            ShareRequest.provider_id.in_(party_ids),
            ShareRequest.request_tx.is_not(None),  # signed and on chain: the provider was asked
            # an automatic grant (unconditional resource) asked the provider nothing
            or_(ShareRequest.decided_on.is_not(None), ShareRequest.status.in_(_UNANSWERED)),
            *_days(ShareRequest.applied_on, first_day, last_day),
        )
        for row in session.execute(q):
            requests[row.provider_id].append(row)

        disputes: dict[str, list[Any]] = defaultdict(list)
        d = select(Dispute.provider_id, Dispute.filed_on, Dispute.answered_on, Dispute.status).where(
            Dispute.provider_id.in_(party_ids),
            Dispute.file_tx.is_not(None),
            *_days(Dispute.filed_on, first_day, last_day),
        )
        for found in session.execute(d):
            disputes[found.provider_id].append(found)

        cards = []
        for pid in party_ids:
            own = catalog.get(pid, [])
            maintained = sum(1 for rid, _ in own if _since(last_version.get(rid), fresh_after))
            shareable = sum(1 for _, share in own if share is not ShareType.NONE)
            reqs = requests.get(pid, [])
            answered = [r for r in reqs if r.decided_on is not None]
            on_time = sum(1 for r in answered if r.decided_on <= r.respond_by)
            overdue = sum(1 for r in reqs if r.status in _UNANSWERED and r.respond_by < today)
            cases = disputes.get(pid, [])
            closed = [c for c in cases if c.status in _ANSWERED_STATES and c.answered_on is not None]
            coverage = _rate(shareable, len(own))
            on_time_rate = _rate(on_time, len(answered) + overdue)
            components = {
                "on_time": on_time_rate,
                "maintained": _rate(maintained, len(own)),
                "coverage": coverage,
                "disputes": _rate(len(closed), len(cases)),
            }
            cards.append(
                Scorecard(
                    party_id=pid,
                    name=names.get(pid, pid),
                    resources=len(own),
                    resources_maintained_within_year=maintained,
                    catalog_coverage=coverage,
                    requests_received=len(reqs),
                    requests_answered=len(answered),
                    answered_on_time=on_time,
                    on_time_rate=on_time_rate,
                    median_response_working_days=_median(
                        [_working_days(r.applied_on, r.decided_on) for r in answered]
                    ),
                    overdue_open=overdue,
                    disputes=len(cases),
                    disputes_closed=len(closed),
                    median_dispute_days=_median([_working_days(c.filed_on, c.answered_on) for c in closed]),
                    exchanges_provided=provided.get(pid, 0),
                    exchanges_consumed=consumed.get(pid, 0),
                    score=score(components),
                )
            )
        cards.sort(key=lambda c: (c.score is None, -(c.score or 0.0), c.name, c.party_id))
        return cards

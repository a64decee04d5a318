"""The alert monitor: the rules evaluated as events arrive (issue 7: "evaluated as events arrive and on
demand"), and what they raise stored until a regulator acknowledges it.

Exactly once, from a durable cursor. ``alert_cursor.next_index`` says that every log entry below it
has been evaluated. A pass reads the entries from the cursor on (a batch, in log order — appends
commit in index order under the log head's lock, so what a reader sees from the cursor on has no
gaps), evaluates them, then in **one** transaction locks the cursor row, checks that it has not
moved, stores the alerts and moves it. A crash before the commit leaves both unchanged and the batch
is evaluated again; after it, neither is repeated: a restart resumes exactly where the last pass
stopped, never raising an alert twice and never skipping an entry. Two monitors (a lost leader
lock) cannot both commit a batch: the second finds the cursor moved and drops its work.

De-duplication. Each alert names its subject (:mod:`ledger.audit.rules`): the grant for the grant
rules, the contract, the party for refusals, the party's day for a spike, the party and resource for
off-hours pulls. While an alert of the same rule and subject is open, firing again adds the new log
indices to its evidence (and refreshes its message); once acknowledged, the next firing opens a new
alert. A partial unique index keeps one open alert per rule and subject whoever writes.

Counting rules need what came before the batch: the accesses already made under a grant (over the
cap), a party's refusals in the burst window before the batch, and the party's earlier days (the
spike baseline: its previous ``baseline_days`` days with accesses, as the on-demand rule compares
a day with the window's other days). Each is an indexed count or range read, bounded by the batch's
end so a pass is a function of the log up to there.

Time-driven rules (overdue requests and disputes, stale catalog entries) have no log entry to wait
for: the monitor evaluates them every ``deadline_interval`` seconds. Their subjects name the request,
the dispute, or the catalog entry and its last update, and any alert already stored for a subject —
open or acknowledged — is kept as the only one, so acknowledging an overdue request does not raise
it again at the next check.

One leader. Every API worker runs the loop; only the holder of the monitor's leader lock evaluates
(PostgreSQL: a session advisory lock of its own key; SQLite: ``flock`` on ``<data dir>/alerts.lock``),
like the anchoring loop (:mod:`ledger.log.leader`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ledger.audit.rules import (
    CHINA,
    TIME_DRIVEN,
    Alert,
    AlertStatus,
    Context,
    Event,
    Thresholds,
    beijing_day,
    burst_alert,
    bursts,
    deadline_alerts,
    event_alerts,
    grant_cap,
    over_cap,
    over_cap_alert,
    spike,
    spike_alert,
    stale_catalog_alerts,
)
from ledger.log.leader import LeaderLoop
from ledger.store.db import Store
from ledger.store.models import AlertCursor, LogEntry, RaisedAlert

log = logging.getLogger("sharetrail.alerts")

CURSOR_ID = 1
MAX_EVIDENCE = 1000  # log indices kept per alert (the count, first and last are kept exactly)
# pg_advisory_lock key of the monitor's leader, beside the anchorer's "st-anchr"
ALERT_LOCK_KEY = int.from_bytes(b"st-alert", "big", signed=True)
_DAY_CACHE = 100_000


@dataclass(frozen=True)
class MonitorPolicy:
    interval: float = 2.0  # seconds between passes when idle
    deadline_interval: float = 300.0  # seconds between evaluations of the time-driven rules
    batch: int = 500  # log entries per pass (one transaction)
    max_backoff: float = 30.0


class AlertMonitor(LeaderLoop):
    thread_name = "sharetrail-alerts"
    what = "alert monitor"
    lock_key = ALERT_LOCK_KEY
    lock_file = "alerts.lock"

    def __init__(
        self, *, store: Store, thresholds: Thresholds | None = None, policy: MonitorPolicy | None = None
    ) -> None:
        self.store = store
        self.t = thresholds or Thresholds()
        self.policy = policy or MonitorPolicy()
        super().__init__(wait=self.policy.interval, max_backoff=self.policy.max_backoff, logger=log)
        self._lock = threading.Lock()  # one pass at a time in this process
        self._deadlines_due = 0.0  # monotonic time of the next time-driven evaluation
        # Accesses per (party, Beijing day), for the spike baseline: valid while this monitor is the
        # one that moved the cursor (each pass drops the days its events touched).
        self._days: dict[tuple[str, date], int] = {}
        self._cursor_seen: int | None = None

    # -- one pass ---------------------------------------------------------------------------------------
    def process(self) -> int:
        """Evaluate the next batch of log entries after the cursor, store what it raises and move the
        cursor, in one transaction. Returns how many entries were evaluated (0: caught up, or another
        monitor moved the cursor first)."""
        with self._lock:
            with self.store.read() as session:
                start = self._cursor(session).next_index
                rows = session.execute(
                    select(LogEntry.idx, LogEntry.entry)
                    .where(LogEntry.idx >= start)
                    .order_by(LogEntry.idx)
                    .limit(self.policy.batch)
                ).all()
                events, end = _contiguous(rows, start)
                if end == start:
                    return 0
                if self._cursor_seen != start:
                    self._days.clear()
                alerts = self._evaluate(session, events, start, end)
            now = datetime.now(UTC)
            with self.store.session() as session:
                cursor = self._cursor(session, lock=True)
                if cursor.next_index != start:
                    self._cursor_seen = None
                    return 0
                for alert in _combine(alerts):
                    _store(session, alert, now)
                cursor.next_index = end
                cursor.updated_at = now
            self._cursor_seen = end
            if alerts:
                log.info("alerts: %d raised or extended for log entries %d-%d", len(alerts), start, end - 1)
            return end - start

    def catch_up(self) -> int:
        """Evaluate everything appended so far; return how many entries that was."""
        done = 0
        while (n := self.process()) > 0:
            done += n
        return done

    def check_deadlines(self, *, now: datetime | None = None) -> int:
        """Evaluate the time-driven rules now; store alerts for subjects that have none; return how
        many were raised."""
        now = now or datetime.now(UTC)
        with self._lock:
            with self.store.read() as session:
                found = [
                    *deadline_alerts(session, now.astimezone(CHINA).date()),
                    *stale_catalog_alerts(session, now, self.t),
                ]
            raised = 0
            with self.store.session() as session:
                cursor = self._cursor(session, lock=True)  # one writer of alerts at a time
                for chunk in _chunks(found, 200):
                    known = {
                        (str(rule), str(subject))
                        for rule, subject in session.execute(
                            select(RaisedAlert.rule, RaisedAlert.subject).where(
                                RaisedAlert.rule.in_(sorted(TIME_DRIVEN)),
                                RaisedAlert.subject.in_({a.subject for a in chunk}),
                            )
                        ).all()
                    }
                    for alert in chunk:
                        key = (str(alert.rule), alert.subject)
                        if key not in known:
                            _store(session, alert, now)
                            known.add(key)
                            raised += 1
                cursor.deadlines_at = now
            return raised

    def _cursor(self, session: Session, *, lock: bool = False) -> AlertCursor:
        stmt = select(AlertCursor).where(AlertCursor.id == CURSOR_ID)
        row = session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
        if row is None:  # a database whose cursor row was removed by hand: start over, say so
            log.warning("alerts: no cursor row; evaluating the log from its first entry")
            row = AlertCursor(id=CURSOR_ID, next_index=0, updated_at=datetime.now(UTC))
            if lock:
                session.add(row)
                session.flush()
        return row

    # -- evaluation ---------------------------------------------------------------------------------------
    def _evaluate(self, session: Session, events: list[Event], start: int, end: int) -> list[Alert]:
        ctx = Context.load(session, events)
        return [
            *event_alerts(events, ctx, self.t),
            *self._over_cap(session, events, ctx, start),
            *self._bursts(session, events, start),
            *self._spikes(session, events, end),
        ]

    def _over_cap(self, session: Session, events: list[Event], ctx: Context, start: int) -> Iterable[Alert]:
        batch: dict[str, list[int]] = defaultdict(list)
        for e in events:
            if e.kind == "access" and e.grant in ctx.grants:
                batch[str(e.grant)].append(e.index)
        if not batch:
            return
        prior = {
            str(g): int(n)
            for g, n in session.execute(
                select(LogEntry.grant_ref, func.count())
                .where(LogEntry.grant_ref.in_(batch), LogEntry.kind == "access", LogEntry.idx < start)
                .group_by(LogEntry.grant_ref)
            ).all()
        }
        for g, indices in batch.items():
            row = ctx.grants[g]
            before = prior.get(g, 0)
            beyond = over_cap(grant_cap(row), before, indices)
            if beyond:
                yield over_cap_alert(row, before + len(indices), beyond)

    def _bursts(self, session: Session, events: list[Event], start: int) -> Iterable[Alert]:
        fresh: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        for e in events:
            if e.kind == "denied" and e.accessor:
                fresh[e.accessor].append((e.index, e.time))
        window = timedelta(minutes=self.t.burst_minutes)
        for party, new in fresh.items():
            earlier = session.execute(
                select(LogEntry.idx, LogEntry.entry)
                .where(
                    LogEntry.accessor == party,
                    LogEntry.kind == "denied",
                    LogEntry.time >= min(t for _, t in new) - window,
                    LogEntry.idx < start,
                )
                .order_by(LogEntry.idx)
            ).all()
            refused = [(e.index, e.time) for e in _parse(earlier)] + new
            new_indices = {i for i, _ in new}
            members: set[int] = set()
            for burst in bursts(refused, self.t):
                if burst[-1] in new_indices:
                    members.update(burst)
            if members:
                times = dict(refused)
                evidence = sorted(members)
                yield burst_alert(party, evidence, times[evidence[0]], self.t)

    def _spikes(self, session: Session, events: list[Event], end: int) -> Iterable[Alert]:
        fresh: dict[tuple[str, date], list[int]] = defaultdict(list)
        for e in events:
            if e.kind == "access" and e.accessor:
                fresh[(e.accessor, beijing_day(e.time))].append(e.index)
        for key in fresh:
            self._days.pop(key, None)
        if len(self._days) > _DAY_CACHE:
            self._days.clear()
        for (party, day), new in sorted(fresh.items()):
            count = self._day_count(session, party, day, end)
            others = [
                n
                for back in range(1, self.t.baseline_days + 1)
                if (n := self._day_count(session, party, day - timedelta(days=back), end))
            ]
            baseline = spike(count, others, self.t)
            if baseline is None:
                continue
            if spike(count - len(new), others, self.t) is not None:
                evidence = new  # the day was already a spike: its earlier accesses are in its alert
            else:
                evidence = [
                    int(i)
                    for i in session.scalars(
                        select(LogEntry.idx).where(*_accesses_on(party, day, end)).order_by(LogEntry.idx)
                    )
                ]
            yield spike_alert(party, day, count, baseline, evidence)

    def _day_count(self, session: Session, party: str, day: date, end: int) -> int:
        key = (party, day)
        if key not in self._days:
            self._days[key] = int(
                session.scalar(
                    select(func.count()).select_from(LogEntry).where(*_accesses_on(party, day, end))
                )
                or 0
            )
        return self._days[key]

    # -- the loop (LeaderLoop.run) -------------------------------------------------------------------
    def on_start(self) -> None:
        self._deadlines_due = 0.0  # the time-driven rules run once at start

    def tick(self, *, retrying: bool) -> None:
        while not self._stop.is_set() and self.process() > 0:
            pass
        if time.monotonic() >= self._deadlines_due and not self._stop.is_set():
            self.check_deadlines()
            self._deadlines_due = time.monotonic() + self.policy.deadline_interval


# -- helpers ----------------------------------------------------------------------------------------
_NAMED_SKIPS = 10  # indices a warning about unreadable entries names; its count says how many more


def _parse(rows: Sequence[Any]) -> list[Event]:
    """Events of ``(idx, entry)`` rows; an entry the rules cannot read is passed over (it must not
    stop the monitor: the integrity audit is what judges the log's bytes) and named in one warning
    per batch — a line per entry flooded the log with tens of thousands of lines."""
    events = []
    skipped: list[int] = []
    for idx, raw in rows:
        try:
            events.append(Event.parse(idx, raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped.append(int(idx))
    if skipped:
        shown = ", ".join(map(str, skipped[:_NAMED_SKIPS])) + (", …" if len(skipped) > _NAMED_SKIPS else "")
        log.warning(
            "alerts: %d log entries are not events the rules can read (%s); passed over", len(skipped), shown
        )
    return events


def _contiguous(rows: Sequence[Any], start: int) -> tuple[list[Event], int]:
    """The rows' events up to the first gap in the indices, and the index after the last one."""
    end = start
    for idx, _ in rows:
        if int(idx) != end:
            break
        end += 1
    return _parse(rows[: end - start]), end


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(day, datetime.min.time(), CHINA).astimezone(UTC)
    return lo, lo + timedelta(days=1)


def _accesses_on(party: str, day: date, end: int) -> list[ColumnElement[bool]]:
    """The party's accesses on a Beijing ``day`` among the log entries below ``end``."""
    lo, hi = _day_bounds(day)
    return [
        LogEntry.accessor == party,
        LogEntry.time >= lo,
        LogEntry.time < hi,
        LogEntry.kind == "access",
        LogEntry.idx < end,
    ]


def _chunks(items: list[Alert], size: int) -> Iterable[list[Alert]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _combine(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per rule and subject for the batch (evidence united, the latest message kept)."""
    merged: dict[tuple[str, str], Alert] = {}
    for a in alerts:
        key = (str(a.rule), a.subject)
        seen = merged.get(key)
        if seen is None:
            merged[key] = Alert(**{**a.__dict__, "evidence": list(a.evidence)})
        else:
            seen.evidence.extend(a.evidence)
            seen.message = a.message
    return list(merged.values())


def _store(session: Session, alert: Alert, now: datetime) -> None:
    """Insert the alert, or extend the open alert of its rule and subject."""
    row = session.scalars(
        select(RaisedAlert)
        .where(
            RaisedAlert.rule == str(alert.rule),
            RaisedAlert.subject == alert.subject,
            RaisedAlert.status == AlertStatus.OPEN.value,
        )
        .with_for_update()
    ).first()
    fresh = sorted(set(alert.evidence))
    if row is None:
        session.add(
            RaisedAlert(
                rule=str(alert.rule),
                severity=alert.severity.value,
                subject=alert.subject,
                party=_clip(alert.party, 64),
                resource=_clip(alert.resource, 64),
                grant_ref=_clip(alert.grant, 80),
                message=alert.message,
                time=_clip(alert.time, 40),
                evidence_json=json.dumps(fresh[:MAX_EVIDENCE]),
                evidence_count=len(fresh),
                first_evidence=fresh[0] if fresh else None,
                last_evidence=fresh[-1] if fresh else None,
                raised_at=now,
                updated_at=now,
                status=AlertStatus.OPEN.value,
            )
        )
        session.flush()
        return
    kept: list[int] = json.loads(row.evidence_json)
    union = sorted(set(kept) | set(fresh))
    if len(kept) < MAX_EVIDENCE:  # the stored list was complete
        count = len(union)
    else:  # entries are evaluated in log order: new evidence lies past the last one stored
        last = row.last_evidence if row.last_evidence is not None else -1
        count = row.evidence_count + sum(1 for i in fresh if i > last)
    row.evidence_json = json.dumps(union[:MAX_EVIDENCE])
    row.evidence_count = count
    if union:
        row.first_evidence = min(union[0], row.first_evidence if row.first_evidence is not None else union[0])
        row.last_evidence = max(union[-1], row.last_evidence if row.last_evidence is not None else union[-1])
    row.message = alert.message
    row.updated_at = now


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None

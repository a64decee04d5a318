"""Stored alerts (what :mod:`ledger.audit.monitor` raised): the regulator's inbox.

Listed for the regulator and the registrar, as the on-demand alerts are; acknowledged by a regulator
only — the supervising office (数据安全监管) owns the follow-up, and an acknowledgement records who,
when and why (a note is required). An acknowledged alert stays stored; the next firing of its rule on
the same subject opens a new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.audit.alerts import require_auditor
from ledger.audit.rules import AlertStatus, Rule, Severity
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.store.db import Store
from ledger.store.models import AlertCursor, LogHead, Party, RaisedAlert
from ledger.types import PartyKind, utc_text

MAX_PAGE = 500
MAX_NOTE = 2000
EVIDENCE_SHOWN = 100


@dataclass(frozen=True)
class RaisedQuery:
    status: AlertStatus | None = None
    rule: Rule | None = None
    severity: Severity | None = None
    party: str | None = None
    since: datetime | None = None  # raised or extended at or after
    before: int | None = None  # keyset: alerts with a smaller id (newest first)
    limit: int = 100


class RaisedAlerts:
    def __init__(self, *, store: Store) -> None:
        self.store = store

    def query(self, caller: Party, q: RaisedQuery) -> dict[str, Any]:
        require_auditor(caller)
        if not 1 <= q.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE}", code="invalid_limit")
        stmt = select(RaisedAlert).order_by(RaisedAlert.id.desc()).limit(q.limit + 1)
        if q.status is not None:
            stmt = stmt.where(RaisedAlert.status == q.status.value)
        if q.rule is not None:
            stmt = stmt.where(RaisedAlert.rule == q.rule.value)
        if q.severity is not None:
            stmt = stmt.where(RaisedAlert.severity == q.severity.value)
        if q.party is not None:
            stmt = stmt.where(RaisedAlert.party == q.party)
        if q.since is not None:
            stmt = stmt.where(RaisedAlert.updated_at >= _utc(q.since))
        if q.before is not None:
            stmt = stmt.where(RaisedAlert.id < q.before)
        with self.store.read() as session:
            rows = list(session.scalars(stmt))
            monitor = _monitor(session)
        more = len(rows) > q.limit
        items = [as_json(r) for r in rows[: q.limit]]
        return {
            "items": items,
            "next_before": items[-1]["id"] if more and items else None,
            "monitor": monitor,
        }

    def acknowledge(self, caller: Party, alert_id: int, note: str) -> dict[str, Any]:
        if caller.kind is not PartyKind.REGULATOR:
            raise Forbidden("only a regulator acknowledges alerts", code="forbidden_role")
        note = note.strip()
        if not note:
            raise InvalidInput("an acknowledgement states what was done (note)", code="note_required")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", code="note_too_long")
        with self.store.session() as session:
            row = session.scalars(
                select(RaisedAlert).where(RaisedAlert.id == alert_id).with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"no alert {alert_id}", code="alert_not_found")
            if row.status != AlertStatus.OPEN.value:
                raise Conflict(
                    f"alert {alert_id} was acknowledged by {row.acknowledged_by}", code="already_acknowledged"
                )
            row.status = AlertStatus.ACKNOWLEDGED.value
            row.acknowledged_by = caller.id
            row.acknowledged_at = datetime.now(UTC)
            row.note = note
            return as_json(row)

    def summary(self, caller: Party, *, latest: int = 5) -> dict[str, Any]:
        """Open alerts by severity and the latest few, for the console's dashboard."""
        require_auditor(caller)
        with self.store.read() as session:
            counts = dict(
                session.execute(
                    select(RaisedAlert.severity, func.count())
                    .where(RaisedAlert.status == AlertStatus.OPEN.value)
                    .group_by(RaisedAlert.severity)
                ).all()
            )
            rows = list(
                session.scalars(
                    select(RaisedAlert)
                    .where(RaisedAlert.status == AlertStatus.OPEN.value)
                    .order_by(RaisedAlert.id.desc())
                    .limit(latest)
                )
            )
            monitor = _monitor(session)
        by_severity = {s.value: int(counts.get(s.value, 0)) for s in Severity}
        return {
            "open": sum(by_severity.values()),
            "by_severity": by_severity,
            "latest": [as_json(r) for r in rows],
            "monitor": monitor,
        }


def _monitor(session: Session) -> dict[str, Any]:
    """How far the monitor has got: log entries evaluated, of the log's size; the last deadline check."""
    cursor = session.get(AlertCursor, 1)
    size = session.scalar(select(LogHead.size).where(LogHead.id == 1)) or 0
    checked = cursor.deadlines_at if cursor is not None else None
    return {
        "evaluated": cursor.next_index if cursor is not None else 0,
        "log_size": int(size),
        "deadlines_checked_at": utc_text(checked) if checked is not None else None,
    }


def as_json(row: RaisedAlert) -> dict[str, Any]:
    evidence: list[int] = json.loads(row.evidence_json)
    return {
        "id": row.id,
        "rule": row.rule,
        "severity": row.severity,
        "status": row.status,
        "party": row.party,
        "resource": row.resource,
        "grant": row.grant_ref,
        "time": row.time,
        "message": row.message,
        "evidence": evidence[:EVIDENCE_SHOWN],
        "evidence_total": row.evidence_count,
        "first_evidence": row.first_evidence,
        "last_evidence": row.last_evidence,
        "raised_at": utc_text(row.raised_at),
        "updated_at": utc_text(row.updated_at),
        "acknowledged": None
        if row.acknowledged_at is None
        else {"by": row.acknowledged_by, "at": utc_text(row.acknowledged_at), "note": row.note},
    }


def _utc(moment: datetime) -> datetime:
    """Aware, in UTC (SQLite hands back naive UTC datetimes; a naive query parameter is read as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("since lies outside the calendar's range", code="invalid_time") from None

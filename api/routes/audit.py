"""Audit routes for the regulator: the trail (JSON or CSV), the integrity audit, alerts (on demand, and
those the monitor raised and stored), statistics, lineage and the audit report (HTML or PDF)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from api.deps import CurrentParty, LedgerDep
from api.routing import Route
from api.schemas import AcknowledgeIn
from ledger.audit.raised import MAX_PAGE, RaisedQuery
from ledger.audit.report import ReportFormat
from ledger.audit.rules import AlertStatus, Rule, Severity
from ledger.audit.trail import MAX_EXPORT, TrailQuery
from ledger.log.events import AccessMode, EventKind

router = APIRouter(tags=["audit"], route_class=Route)
Text = Annotated[str | None, Query(max_length=80)]


@router.get(
    "/v1/audit/trail",
    summary="Who took which data, under which grant, for what purpose, when (regulator)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def trail(
    ledger: LedgerDep,
    caller: CurrentParty,
    party: Text = None,
    accessor: Text = None,
    provider: Text = None,
    resource: Text = None,
    purpose: Text = None,
    grant: Annotated[str | None, Query(max_length=80, description="grant or open-contract id")] = None,
    mode: AccessMode | None = None,
    kind: EventKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    subject: Annotated[str | None, Query(max_length=80, description="ID number or its keyed hash")] = None,
    before: Annotated[int | None, Query(ge=0, le=2**48)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EXPORT)] = 100,
    format: Literal["json", "csv"] = "json",
) -> Any:
    q = TrailQuery(
        party=party,
        accessor=accessor,
        provider=provider,
        resource=resource,
        purpose=purpose,
        grant=grant,
        mode=mode,
        kind=kind,
        since=since,
        until=until,
        subject=subject,
        before=before,
        limit=limit,
    )
    if format == "csv":
        body = ledger.trail.export_csv(caller, q)
        return Response(
            content=body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="sharetrail-trail.csv"'},
        )
    return ledger.trail.query(caller, q)


@router.post("/v1/audit/verify", summary="Run the full integrity audit and return its report (regulator)")
def verify(ledger: LedgerDep, caller: CurrentParty) -> dict[str, Any]:
    return ledger.integrity.run(caller)


@router.get("/v1/audit/alerts", summary="Alert rules evaluated over a window (default the last 7 days)")
def alerts(
    ledger: LedgerDep, caller: CurrentParty, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    return ledger.alerts.evaluate(caller, since=since, until=until)


@router.get(
    "/v1/audit/alerts/raised",
    summary="Alerts the monitor raised as events arrived, newest first (regulator, registrar)",
)
def raised_alerts(
    ledger: LedgerDep,
    caller: CurrentParty,
    status: AlertStatus | None = None,
    rule: Rule | None = None,
    severity: Severity | None = None,
    party: Text = None,
    since: Annotated[datetime | None, Query(description="raised or extended at or after")] = None,
    before: Annotated[int | None, Query(ge=0, le=2**48, description="previous page's next_before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    q = RaisedQuery(
        status=status, rule=rule, severity=severity, party=party, since=since, before=before, limit=limit
    )
    return ledger.raised_alerts.query(caller, q)


@router.post(
    "/v1/audit/alerts/{alert_id}/acknowledge",
    summary="Acknowledge a raised alert with a note (regulator)",
)
def acknowledge_alert(
    ledger: LedgerDep,
    caller: CurrentParty,
    alert_id: Annotated[int, Path(ge=1, le=2**48)],
    body: AcknowledgeIn,
) -> dict[str, Any]:
    return ledger.raised_alerts.acknowledge(caller, alert_id, body.note)


@router.get(
    "/v1/audit/statistics",
    summary="Exchanges by department, resource and month; per-department scorecards (考核)",
)
def statistics(
    ledger: LedgerDep,
    caller: CurrentParty,
    since: datetime | None = None,
    until: datetime | None = None,
    party: Text = None,
) -> dict[str, Any]:
    return ledger.statistics.report_for(caller, since=since, until=until, party_id=party).to_dict()


@router.get(
    "/v1/audit/lineage/{resource_id}",
    summary="Circulation path of a resource: provider → grants → accessors → onward shares",
)
def lineage(ledger: LedgerDep, caller: CurrentParty, resource_id: str) -> dict[str, Any]:
    return ledger.lineage.graph_for(caller, resource_id).to_dict()


@router.get(
    "/v1/audit/report",
    summary="Audit report for a period and scope, HTML or PDF, with charts (regulator)",
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
def report(
    ledger: LedgerDep,
    caller: CurrentParty,
    since: datetime | None = None,
    until: datetime | None = None,
    party: Text = None,
    resource: Text = None,
    format: ReportFormat = ReportFormat.HTML,
) -> Response:
    rendered = ledger.reports.render(
        caller, since=since, until=until, party_id=party, resource_id=resource, format=format
    )
    disposition = "attachment" if format is ReportFormat.PDF else "inline"
    return Response(
        content=rendered.content,
        media_type=rendered.media_type,
        headers={"Content-Disposition": f'{disposition}; filename="{rendered.filename}"'},
    )

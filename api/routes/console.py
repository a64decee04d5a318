"""The web console (``/console``): HTML pages over the same ledger services as the API.

Login by party token (kept in an HttpOnly, SameSite=Strict cookie); zh-CN by default, ``?lang=en``
switches. Pages by party kind (:data:`ledger.audit.console_queries.PAGES`): the regulator's and the
registrar's dashboard, trail explorer, lineage graph and scorecards; a department's workbench; an
enterprise's or the operator's portal; proof bundles for whoever the log shows them to. Handlers parse,
call ledger services and render; state-changing POSTs carry a CSRF token. Not in the OpenAPI document:
the console is a client of the API's services, not part of its contract. docs/console.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from api.console import charts, i18n
from api.console.i18n import Translate
from api.console.render import STATIC, ConsoleRoute, error_page, page, purpose_label, with_query
from api.console.session import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SESSION_SECONDS,
    CheckedForm,
    ConsoleParty,
    CsrfRejected,
    lang_of,
    read_form,
    safe_next,
    same_origin,
)
from api.deps import LedgerDep
from ledger.audit.console_queries import CHINA, ConsoleQueries, Page, home_page, require_page
from ledger.audit.lineage import LineageService
from ledger.audit.stats import StatisticsService
from ledger.audit.trail import TrailQuery
from ledger.errors import InvalidInput, Unauthorized
from ledger.log.events import AccessMode, EventKind
from ledger.runtime import Ledger
from ledger.store.models import Party
from ledger.types import Signing

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
Text = Annotated[str | None, Query(max_length=80)]
Cursor = Annotated[int | None, Query(ge=0, le=2**48)]
TRAIL_PAGE = 50
CSV_ROWS = 10_000


def _queries(ledger: LedgerDep) -> ConsoleQueries:
    return ConsoleQueries(store=ledger.store)


def _home(kind: Any) -> str:
    return f"/console/{home_page(kind).value}"


# -- session ------------------------------------------------------------------------------------------
@router.get("")
def index(caller: ConsoleParty) -> RedirectResponse:
    return RedirectResponse(_home(caller.kind), status_code=303)


@router.get("/login")
def login_form(request: Request, next: Text = None) -> HTMLResponse:
    return page(request, "login.html", None, next=safe_next(next) or "", error=None)


@router.post("/login")
async def login(request: Request, ledger: LedgerDep) -> Response:
    if not same_origin(request):
        raise CsrfRejected
    form = await read_form(request)
    token = form.get("token", "").strip()
    try:
        party = ledger.parties.authenticate(token) if token else None
    except Unauthorized:
        party = None
    if party is None:
        return page(
            request,
            "login.html",
            None,
            status=401,
            next=safe_next(form.get("next")) or "",
            error="login.invalid_token",
        )
    response = RedirectResponse(safe_next(form.get("next")) or _home(party.kind), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(_: ConsoleParty, __: CheckedForm) -> RedirectResponse:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


# -- regulator and registrar --------------------------------------------------------------------------
@router.get("/dashboard")
def dashboard(request: Request, caller: ConsoleParty, ledger: LedgerDep) -> HTMLResponse:
    q = _queries(ledger)
    volume = q.daily_volume(caller, days=30)
    alerts = ledger.alerts.evaluate(caller)
    t = page_t(request)
    return page(
        request,
        "dashboard.html",
        caller,
        current=Page.DASHBOARD,
        volume_chart=charts.volume(volume, t),
        volume_total={"access": sum(d["access"] for d in volume), "denied": sum(d["denied"] for d in volume)},
        alerts=alerts,
        raised=ledger.raised_alerts.summary(caller),
        names={pid: name for pid, name, _ in q.parties()},
        checkpoint=ledger.log.checkpoint(),
    )


@router.post("/verify")
def verify(request: Request, caller: ConsoleParty, ledger: LedgerDep, _: CheckedForm) -> HTMLResponse:
    require_page(caller, Page.DASHBOARD)
    return page(request, "_verify.html", caller, report=ledger.integrity.run(caller))


def _local_time(value: str | None, what: str) -> datetime | None:
    """A ``datetime-local`` form value, read as Beijing time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} is not a date and time", code="invalid_time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)


@dataclass(frozen=True)
class TrailFilters:
    """The trail explorer's filter form (GET parameters; empty fields mean "any")."""

    party: Text = None
    resource: Text = None
    purpose: Text = None
    mode: Text = None
    kind: Text = None
    since: Text = None
    until: Text = None

    def query(self, *, before: int | None, limit: int) -> TrailQuery:
        try:
            mode = AccessMode(self.mode) if self.mode else None
            kind = EventKind(self.kind) if self.kind else None
        except ValueError:
            raise InvalidInput("unknown mode or kind", code="invalid_filter") from None
        return TrailQuery(
            party=self.party or None,
            resource=self.resource or None,
            purpose=self.purpose or None,
            mode=mode,
            kind=kind,
            since=_local_time(self.since, "since"),
            until=_local_time(self.until, "until"),
            before=before,
            limit=limit,
        )


Filters = Annotated[TrailFilters, Depends()]


@router.get("/trail")
def trail(
    request: Request, caller: ConsoleParty, ledger: LedgerDep, filters: Filters, before: Cursor = None
) -> HTMLResponse:
    require_page(caller, Page.TRAIL)
    q = _queries(ledger)
    result = ledger.trail.query(caller, filters.query(before=before, limit=TRAIL_PAGE))
    return page(
        request,
        "trail.html",
        caller,
        current=Page.TRAIL,
        filters={k: v or "" for k, v in asdict(filters).items()},
        result=result,
        parties=q.parties(),
        resources=q.resources(),
        modes=[m.value for m in AccessMode],
        kinds=[k.value for k in EventKind],
        first_page=before is not None,
        csv_url=with_query(request, path="/console/trail.csv", before=None, lang=None),
    )


@router.get("/trail.csv")
def trail_csv(caller: ConsoleParty, ledger: LedgerDep, filters: Filters) -> Response:
    require_page(caller, Page.TRAIL)
    body = ledger.trail.export_csv(caller, filters.query(before=None, limit=CSV_ROWS))
    return Response(
        content=body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="sharetrail-trail.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/lineage")
def lineage(request: Request, caller: ConsoleParty, ledger: LedgerDep, resource: Text = None) -> HTMLResponse:
    require_page(caller, Page.LINEAGE)
    resources = _queries(ledger).resources()
    chosen = resource or (resources[0][0] if resources else None)
    graph = LineageService(store=ledger.store).graph_for(caller, chosen).to_dict() if chosen else None
    labels = charts.lineage_labels(graph, purpose_label(lang_of(request))) if graph else {}
    return page(
        request,
        "lineage.html",
        caller,
        current=Page.LINEAGE,
        resources=resources,
        chosen=chosen,
        graph=graph,
        chart=charts.lineage(graph, labels, page_t(request)) if graph else None,
        chart_height=charts.lineage_height(graph) if graph else 0,
        labels=labels,
    )


def _day(value: str | None, what: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(f"{what} is not a date (YYYY-MM-DD)", code="invalid_time") from None
    start = datetime.combine(day, time(), CHINA)
    return start + timedelta(days=1) if end else start  # ``until`` is exclusive: the next midnight


@router.get("/scorecards")
def scorecards(
    request: Request, caller: ConsoleParty, ledger: LedgerDep, since: Text = None, until: Text = None
) -> HTMLResponse:
    require_page(caller, Page.SCORECARDS)
    stats = StatisticsService(store=ledger.store).report_for(
        caller, since=_day(since, "since"), until=_day(until, "until", end=True)
    )
    report = stats.to_dict()
    t = page_t(request)
    return page(
        request,
        "scorecards.html",
        caller,
        current=Page.SCORECARDS,
        report=report,
        period={"since": since or "", "until": until or ""},
        score_chart=charts.scores(report["scorecards"], t),
        month_chart=charts.months(report["exchanges"]["by_month"], t),
    )


# -- department ---------------------------------------------------------------------------------------
@router.get("/workbench")
def workbench(
    request: Request,
    caller: ConsoleParty,
    ledger: LedgerDep,
    before: Cursor = None,
    done: Text = None,
    grant: Text = None,
) -> HTMLResponse:
    q = _queries(ledger)
    pending = q.pending_decisions(caller)  # checks the role first
    return page(
        request,
        "workbench.html",
        caller,
        current=Page.WORKBENCH,
        pending=pending,
        resources=ledger.catalog.find(provider=caller.id),
        grants=q.grants(caller),
        accesses=q.accesses(caller, before=before),
        done=done,
        done_grant=grant,
    )


@router.post("/requests/{request_id}/decision")
def decide(
    request_id: Annotated[str, Path(max_length=64)],
    caller: ConsoleParty,
    ledger: LedgerDep,
    form: CheckedForm,
) -> RedirectResponse:
    require_page(caller, Page.WORKBENCH)
    choice = form.get("decision")
    if choice not in ("approve", "reject"):
        raise InvalidInput("decision must be approve or reject", code="invalid_decision")
    row = ledger.sharing.decide(
        caller,
        request_id,
        approve=choice == "approve",
        reason=form.get("reason", "")[:4000],
        conditions=None,
        signing=Signing.CUSTODIAL,
    )
    target = f"/console/workbench?done={row.status.value}"
    if row.grant_id:
        target += f"&grant={row.grant_id}"
    return RedirectResponse(target, status_code=303)


# -- enterprise and operator --------------------------------------------------------------------------
@router.get("/portal")
def portal(request: Request, caller: ConsoleParty, ledger: LedgerDep, before: Cursor = None) -> HTMLResponse:
    require_page(caller, Page.PORTAL)
    q = _queries(ledger)
    return page(
        request,
        "portal.html",
        caller,
        current=Page.PORTAL,
        grants=q.grants(caller)["received"],
        accesses=q.accesses(caller, before=before),
        contracts=_contracts(ledger, caller),
    )


def _contracts(ledger: Ledger, caller: Party) -> list[dict[str, Any]]:
    """The caller's open contracts (契约式开放 / 依申请开放), with resource names."""
    service = ledger.open_contracts
    views = [service.view(row, caller) for row in service.visible_to(caller)]
    names = _queries(ledger).names([], [rid for v in views for rid in v["resources"]])
    return [{**v, "resource_names": [names.get(r, r) for r in v["resources"]]} for v in views]


# -- proof bundles --------------------------------------------------------------------------------------
Index = Annotated[int, Path(ge=0, le=2**48)]


@router.get("/bundles/{index}")
def bundle(request: Request, index: Index, caller: ConsoleParty, ledger: LedgerDep) -> HTMLResponse:
    require_page(caller, Page.BUNDLE)
    found = ledger.log.bundle(caller, index)
    entry = found["entry"]
    names = _queries(ledger).names([entry.get("accessor"), entry.get("provider")], [entry.get("resource")])
    return page(request, "bundle.html", caller, bundle=found, index=index, names=names)


@router.get("/bundles/{index}/download")
def bundle_download(index: Index, caller: ConsoleParty, ledger: LedgerDep) -> Response:
    require_page(caller, Page.BUNDLE)
    body = json.dumps(ledger.log.bundle(caller, index), ensure_ascii=False, indent=2, default=str)
    return Response(
        content=body.encode("utf-8"),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="sharetrail-bundle-{index}.json"',
            "Cache-Control": "no-store",
        },
    )


# -- static files (htmx, ECharts, the stylesheet) -------------------------------------------------------
@router.get("/static/{path:path}")
def static(request: Request, path: Annotated[str, Path(max_length=200)]) -> Response:
    target = (STATIC / path).resolve()
    if (
        not target.is_relative_to(STATIC)
        or any(part.startswith(".") for part in target.relative_to(STATIC).parts)
        or not target.is_file()
    ):
        return error_page(request, 404, "not_found", page_t(request)("error.not_found"))
    return FileResponse(
        target, headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    )


def page_t(request: Request) -> Translate:
    return i18n.translator(lang_of(request))

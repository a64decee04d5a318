"""Rendering console pages: one Jinja2 environment (autoescaped), the page frame's context, error pages,
and the route class that turns the console's exceptions into HTML instead of the API's JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console import i18n
from api.console.session import (
    COOKIE_PATH,
    LANG_COOKIE,
    SESSION_COOKIE,
    CsrfRejected,
    LoginRequired,
    csrf_for,
    lang_of,
    session_token,
)
from api.errors import status_for
from api.routing import Route
from ledger import purposes
from ledger.audit.console_queries import navigation
from ledger.errors import LedgerError
from ledger.store.models import Party

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
CHINA = ZoneInfo("Asia/Shanghai")
SECURITY_HEADERS = {
    # ECharts writes inline style attributes into its tooltips, hence 'unsafe-inline' for styles only.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def beijing_time(value: Any) -> str:
    """An ISO time or datetime as Beijing wall time (``YYYY-MM-DD HH:MM:SS``)."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:  # the store keeps UTC (SQLite without the offset)
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def short(value: Any, head: int = 10, tail: int = 6) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= head + tail + 1 else f"{text[:head]}…{text[-tail:]}"


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(time=beijing_time, short=short, percent=percent)
    env.filters["json_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2, default=str)
    return env


def purpose_label(lang: str) -> Callable[[str | None], str]:
    labels = {p.code: (p.label_zh if lang == "zh" else p.label_en) for p in purposes.vocabulary()}

    def label(code: str | None) -> str:
        return "" if code is None else labels.get(code, code)

    return label


def with_query(request: Request, path: str | None = None, **changes: Any) -> str:
    """The current URL (or ``path``) with some query parameters replaced (``None`` removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    target = path or request.url.path
    return f"{target}?{query}" if query else target


def context(request: Request, party: Party | None, **extra: Any) -> dict[str, Any]:
    lang = lang_of(request)
    token = session_token(request)
    return {
        "request": request,
        "lang": lang,
        "t": i18n.translator(lang),
        "purpose": purpose_label(lang),
        "purposes_list": [p.code for p in purposes.vocabulary()],
        "party": party,
        "nav": navigation(party.kind) if party is not None else [],
        "csrf": csrf_for(token) if token and party is not None else "",
        "lang_switch": with_query(request, lang="en" if lang == "zh" else "zh"),
        "with_query": lambda **kw: with_query(request, **kw),
        "current": "",
        **extra,
    }


def page(
    request: Request, template: str, party: Party | None, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    html = environment().get_template(template).render(context(request, party, **extra))
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    asked = request.query_params.get("lang")
    if asked in i18n.CATALOGS:  # remember an explicit choice
        response.set_cookie(
            LANG_COOKIE, asked, max_age=365 * 86400, path=COOKIE_PATH, samesite="lax", httponly=True
        )
    return response


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    party: Party | None = getattr(request.state, "console_party", None)
    template = "_error.html" if request.headers.get("hx-request") == "true" else "error.html"
    response = page(request, template, party, status=status, status_code=status, code=code, message=message)
    response.headers["X-Error-Code"] = code
    return response


def login_redirect(request: Request) -> Response:
    """Back to the login form (GET), or a 401 page (a POST cannot be replayed after a redirect)."""
    if request.method == "GET":
        target = f"/console/login?{urlencode({'next': with_query(request, lang=None)})}"
        response: Response = RedirectResponse(target, status_code=303)
    else:
        t = i18n.translator(lang_of(request))
        response = error_page(request, 401, "login_required", t("error.login_required"))
    if session_token(request) is not None:  # a stale or foreign token: forget it
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


class ConsoleRoute(Route):
    """Console handlers answer HTML: a login redirect, a CSRF refusal, or the ledger's error (403 for a
    role that may not open the page) as a page with the same status the API would give."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            t = i18n.translator(lang_of(request))
            try:
                return await original(request)
            except LoginRequired:
                return login_redirect(request)
            except CsrfRejected:
                return error_page(request, 403, "csrf_failed", t("error.csrf_failed"))
            except RequestValidationError:
                return error_page(request, 422, "validation_failed", t("error.validation_failed"))
            except LedgerError as exc:
                status = status_for(exc)
                key = f"error.{exc.code}"
                message = t(key) if i18n.has(key) else exc.message
                response = error_page(request, status if status != 500 else 503, exc.code, message)
                if exc.code == "party_suspended":  # the session ends with the party's standing
                    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
                return response

        return handler

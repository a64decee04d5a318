"""Console sessions: the party's API token in a cookie, CSRF tokens, the display language, forms.

- The session cookie holds the party's own API token (the console is a client of the same ledger
  services as the API): ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
  makes the browser send it), ``Secure`` over HTTPS, and scoped to ``/console``.
- Every state-changing console request carries a CSRF token (OWASP "synchronizer token"): a hidden
  form field or, from htmx, the ``X-CSRF-Token`` header. The token is an HMAC keyed with the session
  token, so it needs no server state, survives restarts, and cannot be forged without the session
  token, which no script can read. A POST whose ``Origin`` names another site is refused as well.
- The language is ``zh`` (default) or ``en``, from ``?lang=`` (remembered in a cookie) or the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request

from api.deps import LedgerDep
from ledger.errors import InvalidInput, Unauthorized
from ledger.store.models import Party

SESSION_COOKIE = "st_console"
LANG_COOKIE = "st_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/console"
SESSION_SECONDS = 8 * 3600
LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
MAX_FORM_FIELDS = 50
_CSRF_LABEL = b"sharetrail console csrf v1"


class LoginRequired(Exception):
    """No console session, or one whose token no longer authenticates."""


class CsrfRejected(Exception):
    """A state-changing console request without a valid CSRF token (or from another origin)."""


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    saved = request.cookies.get(LANG_COOKIE)
    return saved if saved in LANGS else DEFAULT_LANG


def session_token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token or None


def console_party(request: Request, ledger: LedgerDep) -> Party:
    """The party of the console session; :class:`LoginRequired` without a valid one. A suspended
    party's Forbidden (``party_suspended``) passes through as a 403 page."""
    token = session_token(request)
    if token is None:
        raise LoginRequired
    try:
        party = ledger.parties.authenticate(token)
    except Unauthorized:
        raise LoginRequired from None
    request.state.console_party = party
    return party


ConsoleParty = Annotated[Party, Depends(console_party)]


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (``Origin`` header)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the console's forms send). The
    body size is already bounded by the app's input guard."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if media != "application/x-www-form-urlencoded":
        raise InvalidInput("console forms are sent URL-encoded", code="unsupported_media_type")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8", code="invalid_utf8") from None
    if len(pairs) > MAX_FORM_FIELDS:
        raise InvalidInput("too many form fields", code="invalid_form")
    form: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise InvalidInput("text in a request may not contain U+0000 (NUL)", code="nul_character")
        form.setdefault(key, value)
    return form


async def checked_form(request: Request) -> dict[str, str]:
    """The form of a state-changing request of a session, after the origin and CSRF checks."""
    token = session_token(request)
    if token is None:
        raise LoginRequired
    if not same_origin(request):
        raise CsrfRejected
    form = await read_form(request)
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD, "")
    if not hmac.compare_digest(sent.encode("utf-8"), csrf_for(token).encode("utf-8")):
        raise CsrfRejected
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def safe_next(value: str | None) -> str | None:
    """A post-login destination inside the console only (no open redirect)."""
    if not value or not value.startswith("/console") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value

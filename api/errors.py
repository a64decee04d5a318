"""Every error leaves the API as ``{"error": {"code": ..., "message": ...}}`` (DESIGN.md).

One place maps the project's exceptions to HTTP statuses; bad input is always a 4xx with a code,
never a 500. Unexpected exceptions become a 500 whose body says nothing about internals.
"""

from __future__ import annotations

import logging
import re
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    ChainError,
    Conflict,
    ContractRevert,
    Forbidden,
    InvalidInput,
    LedgerError,
    NotFound,
    StoreError,
    Unauthorized,
    VerificationError,
)

log = logging.getLogger("sharetrail.api")

STATUS: list[tuple[type[LedgerError], int]] = [
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ContractRevert, 409),
    (InvalidInput, 422),
    (VerificationError, 422),
    (StoreError, 503),
    (ChainError, 503),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


# -- bodies refused before any parser sees them -------------------------------------------------------
MAX_JSON_DEPTH = 64
"""Deepest JSON nesting accepted. Far above any request shape of the API; far below the depth at which
a recursive parser or encoder overflows the C stack (py-evm raises the recursion limit to 100000, so
``json.loads`` of ~100k nested brackets would crash the process instead of raising)."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_NESTING = [0] * 256
for _opener, _closer in (b"[]", b"{}"):
    _NESTING[_opener], _NESTING[_closer] = 1, -1


def json_depth(body: bytes) -> int:
    """Maximum nesting of ``[``/``{`` in a JSON text, without parsing it (no recursion; C-speed scans).

    Brackets inside strings do not count. For text that is not JSON the figure is meaningless but
    finite, and the parser refuses such text anyway."""
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_NESTING.__getitem__, brackets)), default=0)


_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # a \u0000 escape, not an escaped backslash + "u0000"
_NUL_MESSAGE = "text in a request may not contain U+0000 (NUL)"


def json_body_problem(body: bytes) -> tuple[str, str] | None:
    """Why a JSON request body must be refused before parsing (``(code, message)``), or None.

    RFC 8259 §8.1: JSON exchanged between systems is UTF-8. Nesting is bounded by MAX_JSON_DEPTH.
    No field of the API may hold U+0000, and PostgreSQL cannot store it in text: refused here, once,
    rather than failing deep in a query."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "invalid_utf8", f"the request body is not valid UTF-8 (byte {exc.start})"
    if b"\\u0000" in body and _JSON_NUL.search(body):
        return "nul_character", _NUL_MESSAGE
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
        return "json_too_deep", f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
    return None


def target_problem(path: str, query_string: bytes) -> tuple[str, str] | None:
    """Why a request's path or query must be refused before routing (``(code, message)``), or None."""
    if "\x00" in path or b"\x00" in unquote_to_bytes(query_string):
        return "nul_character", _NUL_MESSAGE
    return None


def _reason(exc: ValueError) -> str:
    """The decoder's complaint in the API's words (Python's own advice is not the caller's to take)."""
    text = str(exc)
    if "integer string conversion" in text or "int_max_str_digits" in text:
        return "a number has more than 4,300 digits"
    return text


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<something>+json`` (parameters ignored)."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update(extra)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_for(exc: LedgerError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        extra: dict[str, Any] = {}
        if status == 503:
            headers = {"Retry-After": "5"}
        retry_after = exc.details.get("retry_after")
        if isinstance(retry_after, int):
            headers = {"Retry-After": str(retry_after)}
            extra["retry_after"] = retry_after
        access_event = exc.details.get("access_event")
        if isinstance(access_event, int):  # a refused access: it is in the log at this index
            headers = {**(headers or {}), "X-Access-Event": str(access_event)}
            extra["access_event"] = access_event
        typed_data = exc.details.get("typed_data")
        if exc.code == "stale_nonce" and isinstance(typed_data, dict):  # the re-issued document to sign
            extra["typed_data"] = typed_data
        return error_response(status, exc.code, exc.message, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        if not is_json_media_type(request.headers.get("content-type")) and any(
            tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing" for e in errors
        ):
            # a body was sent but not as JSON, so it was never parsed: say so, not "invalid field"
            return error_response(
                415,
                "unsupported_media_type",
                "send the request body as JSON (Content-Type: application/json)",
            )
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": str(e.get("type"))}
            for e in errors
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return error_response(422, "validation_failed", f"{where}: {first['msg']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # FastAPI's "error parsing the body": JSON the decoder refused other than by a syntax error
            # (a UTF-16/32 guess on a body starting with NUL, a number of more than 4300 digits)
            return error_response(
                400, "malformed_json", f"the request body is not valid JSON ({_reason(exc.__cause__)})"
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; the request was not completed")

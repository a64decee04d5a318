"""Every error leaves the API as ``{"error": {"code": ..., "message": ...}}`` (DESIGN.md).

One place maps the project's exceptions to HTTP statuses; bad input is always a 4xx with a code,
never a 500. Unexpected exceptions become a 500 whose body says nothing about internals.
"""

from __future__ import annotations

import logging
from typing import Any

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
        return error_response(status, exc.code, exc.message, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": str(e.get("type"))}
            for e in errors
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return error_response(422, "validation_failed", f"{where}: {first['msg']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; the request was not completed")

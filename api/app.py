"""``create_app(settings)``: the FastAPI application factory. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.routes import (
    audit,
    catalog,
    console,
    data,
    disputes,
    log,
    opening,
    parties,
    resources,
    sharing,
    subjects,
    system,
)
from api.routing import Route
from ledger.runtime import Ledger, frozen_heap
from ledger.settings import Settings

# The modules whose ``router`` makes the API, in matching order.
ROUTE_MODULES = (
    system,
    parties,
    log,
    catalog,
    resources,
    sharing,
    disputes,
    data,
    subjects,
    audit,
    opening,
    console,
)


class InputGuard:
    """Refuse hostile requests before any router or parser sees them (pure ASGI middleware).

    - over ``limit`` bytes: 413 ``body_too_large`` — at once from ``Content-Length``, or as soon as a
      chunked body without one passes the limit (never buffering more than ``limit`` bytes); a
      ``Content-Length`` that is not a number: 400 ``invalid_content_length`` (RFC 9110 §8.6);
    - a JSON body (``application/json``, ``…+json``, or no Content-Type) that is not UTF-8 or is nested
      deeper than :data:`api.errors.MAX_JSON_DEPTH`: 400 ``invalid_utf8`` / ``json_too_deep``, so a deep
      body can never reach a recursive parser (it would overflow the C stack and kill the process);
    - U+0000 in the path, the query or a JSON body: 400 ``nul_character`` (no field of the API may
      hold it, and PostgreSQL cannot store it in text).
    The body, once checked, is replayed to the app unchanged.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = errors.target_problem(scope.get("path", ""), scope.get("query_string", b""))
        if problem is not None:
            await self._refuse(scope, receive, send, 400, *problem)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and not (length.isascii() and length.isdigit()):
            reason = "Content-Length must be a decimal number of bytes"
            await self._refuse(scope, receive, send, 400, "invalid_content_length", reason)
            return
        if length is not None and int(length) > self.limit:
            await self._refuse(scope, receive, send, 413, "body_too_large", self._too_large)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send, 413, "body_too_large", self._too_large)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        content_type = headers.get("content-type")
        if body and (content_type is None or errors.is_json_media_type(content_type)):
            problem = errors.json_body_problem(body)
            if problem is not None:
                await self._refuse(scope, receive, send, 400, *problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @property
    def _too_large(self) -> str:
        return f"request body exceeds {self.limit} bytes"

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        await errors.error_response(status, code, message)(scope, receive, send)


def create_app(settings: Settings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    """Build the app. The ledger is opened in the lifespan unless one is passed in (tests, demo)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ledger is None
        app.state.ledger = running = ledger or Ledger.open(settings)
        if settings.anchor_loop:
            running.anchorer.start()
        if settings.alert_monitor:
            running.alert_monitor.start()
        if settings.stat_rollup:
            running.stat_rollup.start()
        if settings.subject_indexer:
            running.subject_indexer.start()
        try:
            with frozen_heap():
                yield
        finally:
            running.subject_indexer.stop()
            running.stat_rollup.stop()
            running.alert_monitor.stop()
            running.anchorer.stop()
            if owned:
                app.state.ledger.close()

    app = FastAPI(
        title="sharetrail",
        version="0.1.0",
        description="Blockchain-backed audit ledger for government data sharing and opening: "
        "who took which data, under which grant, for what purpose, when.",
        lifespan=lifespan,
    )
    app.add_middleware(InputGuard, limit=settings.max_body_bytes)
    errors.install(app)
    for module in ROUTE_MODULES:
        _add_routes(app, module.router)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put ``router``'s routes on the app itself, as ``@app.get`` would.

    ``app.include_router`` (FastAPI 0.165) keeps each router as a view that is matched route by
    route through a per-request context on every request, and re-matched inside the router it
    selects: ~0.25–0.4 ms a request on this app's 95 routes (docs/benchmarks.md, "API: the request
    path"). Our routers carry nothing to combine at inclusion — their prefix, tags and route class
    are already on each route, and they declare no dependencies, callbacks or lifespan handlers
    (asserted here, so a router that does cannot be added silently without them)."""
    if router.dependencies or router.callbacks or router.on_startup or router.on_shutdown:
        raise RuntimeError("a router with dependencies, callbacks or event handlers needs include_router")
    for route in router.routes:
        if not isinstance(route, Route):
            raise RuntimeError(f"{route!r} is not an api.routing.Route (APIRouter(route_class=Route))")
    app.router.routes.extend(router.routes)

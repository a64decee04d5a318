"""``create_app(settings)``: the FastAPI application factory. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from api import errors
from api.routes import catalog, disputes, log, parties, resources, sharing, system
from ledger.runtime import Ledger
from ledger.settings import Settings


class BodyLimit(BaseHTTPMiddleware):
    """Refuse oversized bodies before they are read (413), by Content-Length."""

    def __init__(self, app: object, limit: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.limit = limit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return errors.error_response(413, "body_too_large", f"request body exceeds {self.limit} bytes")
        return await call_next(request)


def create_app(settings: Settings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    """Build the app. The ledger is opened in the lifespan unless one is passed in (tests, demo)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ledger is None
        app.state.ledger = running = ledger or Ledger.open(settings)
        if settings.anchor_loop:
            running.anchorer.start()
        try:
            yield
        finally:
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
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    errors.install(app)
    app.include_router(system.router)
    app.include_router(parties.router)
    app.include_router(log.router)
    app.include_router(catalog.router)
    app.include_router(resources.router)
    app.include_router(sharing.router)
    app.include_router(disputes.router)
    return app

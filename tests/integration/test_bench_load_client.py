"""The load generator's HTTP/1.1 client (``ledger.bench.load._Connection``) against real uvicorn:
keep-alive, a JSON body, a chunked answer, a server that closes the connection, and a server
that has gone away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from ledger.bench.load import _Connection
from tests.support.live import free_port, serve


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello(request: Request) -> dict[str, str | None]:
        return {"auth": request.headers.get("authorization"), "peer": f"{request.client.port}"}  # type: ignore[union-attr]

    @app.post("/echo", status_code=201)
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body, status_code=201, media_type=request.headers["content-type"])

    @app.get("/chunks")
    async def chunks() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"abc", b"", b"defgh", b"i" * 5000):
                if part:
                    yield part

        return StreamingResponse(parts(), media_type="application/octet-stream")

    @app.get("/bye")
    async def bye() -> Response:
        return Response(b"closing", headers={"Connection": "close"})

    @app.get("/missing")
    async def missing() -> Response:
        return Response(b'{"error": "no"}', status_code=404)

    return app


def test_requests_on_one_kept_alive_connection() -> None:
    with serve(_app()) as base:
        port = int(base.rsplit(":", 1)[1])

        async def main() -> None:
            conn = _Connection("127.0.0.1", port, {"Authorization": "Bearer st_x"})
            status, body = await conn.request("GET", "/hello")
            assert status == 200 and b'"auth":"Bearer st_x"' in body
            first_peer = body
            status, body = await conn.request("GET", "/hello")
            assert body == first_peer  # the same client port: the connection was kept
            assert await conn.request("POST", "/echo", b'{"a": [1, 2]}') == (201, b'{"a": [1, 2]}')
            assert await conn.request("GET", "/chunks") == (200, b"abcdefgh" + b"i" * 5000)
            assert await conn.request("GET", "/missing") == (404, b'{"error": "no"}')
            assert await conn.request("GET", "/bye") == (200, b"closing")
            assert conn.writer is None  # the server said close: so did we
            status, body = await conn.request("GET", "/hello")  # a new connection
            assert status == 200 and body != first_peer
            await conn.close()

        asyncio.run(main())


def test_a_server_that_is_gone_is_an_error_not_a_hang() -> None:
    async def main() -> None:
        conn = _Connection("127.0.0.1", free_port(), {})
        with pytest.raises(OSError):
            await asyncio.wait_for(conn.request("GET", "/hello"), timeout=10)

    asyncio.run(main())

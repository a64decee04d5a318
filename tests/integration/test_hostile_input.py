"""Hostile request bodies are refused early, with the JSON error envelope, never a 500 or a crash.

- :class:`api.app.InputGuard` on its own (a bare ASGI app behind it): an oversized body is refused
  from its Content-Length without reading it, and a chunked one as soon as it passes the limit; a
  JSON body nested deeper than 64 levels, not UTF-8 or holding U+0000 never reaches the app;
- the real app: every route that takes a body answers malformed JSON, a wrong content type, invalid
  UTF-8, deep nesting and oversize with 400/413/415 and its exact code; ``/rpc`` answers JSON-RPC
  parse errors; a body of 100,000 nested brackets — which used to kill the server with a C stack
  overflow (py-evm raises Python's recursion limit to 100,000) — is refused and the server lives on;
  U+0000 is refused before PostgreSQL (which cannot store it) sees it;
- real HTTP (uvicorn): a huge Content-Length is answered before any body byte is sent, and an
  unfinished chunked body as soon as it passes the limit.

Bugs found here were fixed where they lived; each test now pins the fix.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from api.app import InputGuard, create_app
from api.errors import MAX_JSON_DEPTH, json_depth
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.live import serve
from tests.support.world import BOOTSTRAP_TOKEN, World, access_event, build_world, request_body

LIMIT = 64 * 1024

# -- InputGuard as a bare ASGI middleware ----------------------------------------------------------------


class Recorder:
    """The app behind the guard: records whether it was reached and the body it then read."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        more = True
        while more:
            message = await receive()
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def run_guard(
    chunks: list[bytes], headers: dict[str, str], limit: int = 100, disconnect_after: int | None = None
) -> tuple[Recorder, list[Message], int]:
    """Drive the guard with ``chunks``; return the inner app, what was sent, and how many messages
    the guard asked for."""
    inner = Recorder()
    guard = InputGuard(inner, limit)
    sent: list[Message] = []
    asked = 0

    async def receive() -> Message:
        nonlocal asked
        asked += 1
        if disconnect_after is not None and asked > disconnect_after:
            return {"type": "http.disconnect"}
        if asked > len(chunks):
            await asyncio.sleep(3600)  # the client never sends more
        return {"type": "http.request", "body": chunks[asked - 1], "more_body": asked < len(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/x",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    asyncio.run(asyncio.wait_for(guard(scope, receive, send), timeout=10))
    return inner, sent, asked


def sent_error(sent: list[Message]) -> tuple[int, dict[str, Any]]:
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["type"] == "http.response.start"
    assert (b"content-type", b"application/json") in start["headers"]
    envelope = json.loads(body)
    assert set(envelope) == {"error"} and envelope["error"]["message"]
    return start["status"], envelope["error"]


JSON = {"content-type": "application/json"}


def test_guard_refuses_by_content_length_without_reading() -> None:
    inner, sent, asked = run_guard([b"x" * 101], {**JSON, "content-length": "101"})
    assert not inner.called and asked == 0
    status, error = sent_error(sent)
    assert status == 413 and error["code"] == "body_too_large" and "100 bytes" in error["message"]


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "²", " 12", "0x10"])
def test_guard_refuses_a_malformed_content_length(length: str) -> None:
    inner, sent, asked = run_guard([b"{}"], {**JSON, "content-length": length})
    assert not inner.called and asked == 0
    assert sent_error(sent)[0] == 400 and sent_error(sent)[1]["code"] == "invalid_content_length"


def test_guard_stops_reading_a_chunked_body_at_the_limit() -> None:
    chunks = [b"[" * 40] * 10  # 400 bytes in 10 chunks, no Content-Length; the 10th never needed
    inner, sent, asked = run_guard(chunks, JSON)
    assert not inner.called and asked == 3  # 120 > 100 after the third chunk
    assert sent_error(sent)[0] == 413


def test_guard_refuses_an_unfinished_chunked_body_without_waiting_for_its_end() -> None:
    inner, sent, _ = run_guard([b"x" * 60, b"x" * 60], JSON, limit=100)  # more_body stays True
    assert not inner.called and sent_error(sent)[0] == 413


def test_guard_passes_a_body_at_the_limit_unchanged() -> None:
    body = b'{"a": "' + b"x" * 91 + b'"}'
    assert len(body) == 100
    inner, sent, _ = run_guard([body[:50], body[50:]], {**JSON, "content-length": "100"})
    assert inner.called and inner.body == body and sent[0]["status"] == 204


def test_guard_refuses_deep_json_before_the_app() -> None:
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    for content_type in (
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ):
        inner, sent, _ = run_guard([deep], {"content-type": content_type}, limit=LIMIT)
        assert not inner.called
        status, error = sent_error(sent)
        assert status == 400 and error["code"] == "json_too_deep" and "64" in error["message"]
    inner, sent, _ = run_guard([deep], {}, limit=LIMIT)  # no Content-Type: /rpc parses it anyway
    assert not inner.called and sent_error(sent)[1]["code"] == "json_too_deep"


def test_guard_counts_structure_not_brackets_in_strings() -> None:
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    in_string = json.dumps({"name": "[" * 5000 + "{" * 5000, "q": '\\"[[[['}).encode()
    for body in (at_limit, in_string):
        inner, _, _ = run_guard([body], JSON, limit=LIMIT)
        assert inner.called and inner.body == body


def test_json_depth_matches_a_naive_count() -> None:
    assert json_depth(b"") == 0 and json_depth(b'"[[["') == 0
    assert json_depth(b'{"a": [1, {"b": [[]]}], "c": "]]]]"}') == 5
    assert json_depth(b'["\\"[", [[0]]]') == 3
    assert json_depth(b"[" * 100_000) == 100_000  # linear and non-recursive on absurd input


def test_guard_leaves_other_media_types_to_the_app() -> None:
    deep = b"[" * 500
    inner, _, _ = run_guard([deep], {"content-type": "text/csv"}, limit=LIMIT)
    assert inner.called


def test_guard_refuses_invalid_utf8() -> None:
    for body in (b'{"name": "\xff"}', '{"name": "贵阳"}'.encode("utf-16"), b'{"a": "\xed\xa0\x80"}'):
        inner, sent, _ = run_guard([body], JSON, limit=LIMIT)
        assert not inner.called
        status, error = sent_error(sent)
        assert status == 400 and error["code"] == "invalid_utf8"


def test_guard_refuses_nul_in_the_path_and_the_query() -> None:
    for path, query in (("/v1/parties/a\x00b", b""), ("/v1/resources", b"provider=a%00b"), ("/x", b"q=\x00")):
        inner, sent = Recorder(), list[Message]()

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message, sent: list[Message] = sent) -> None:
            sent.append(message)

        scope: Scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
        asyncio.run(InputGuard(inner, LIMIT)(scope, receive, send))
        status, error = sent_error(sent)
        assert not inner.called and status == 400 and error["code"] == "nul_character"


def test_guard_refuses_nul_in_json_text() -> None:
    for body in (b'{"name": "a\\u0000b"}', b'["\\\\", "\\u0000"]'):
        inner, sent, _ = run_guard([body], JSON, limit=LIMIT)
        status, error = sent_error(sent)
        assert not inner.called and status == 400 and error["code"] == "nul_character"
    for body in (b'{"name": "a\\\\u0000b"}', b'{"name": "u0000"}'):  # an escaped backslash; plain text
        inner, _, _ = run_guard([body], JSON, limit=LIMIT)
        assert inner.called


def test_guard_gives_up_quietly_when_the_client_disconnects() -> None:
    inner, sent, _ = run_guard([b"x" * 10] * 5, JSON, disconnect_after=2)
    assert not inner.called and sent == []


# -- the real app -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, World]]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    settings = Settings(
        data_dir=tmp / "data", bootstrap_token=BOOTSTRAP_TOKEN, anchor_loop=False, max_body_bytes=LIMIT
    )
    with Ledger.open(settings) as ledger, TestClient(create_app(settings, ledger=ledger)) as client:
        yield client, build_world(client, ledger)


def body_routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "requestBody" in op and path != "/rpc"
    )


def _url(path: str) -> str:
    return path.replace("{", "").replace("}", "")  # any id: bodies are refused before lookups


def _err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_every_body_route_refuses_hostile_bodies(env: tuple[TestClient, World]) -> None:
    client, world = env
    routes = body_routes(client)
    assert len(routes) >= 20, routes
    auth = world.auth("registrar")
    json_headers = {**auth, "content-type": "application/json"}
    deep = b"[" * 30_000 + b"]" * 30_000  # under the size limit, far over the depth limit
    for method, path in routes:
        url = _url(path)
        send = client.request
        _err(send(method, url, content=b'{"reason": ', headers=json_headers), 400, "malformed_json")
        _err(send(method, url, content=b"\x00\x01garbage", headers=json_headers), 400, "malformed_json")
        _err(send(method, url, content=b'{"reason": "\xc3\x28"}', headers=json_headers), 400, "invalid_utf8")
        _err(send(method, url, content=deep, headers=json_headers), 400, "json_too_deep")
        _err(send(method, url, content=b"x" * (LIMIT + 1), headers=json_headers), 413, "body_too_large")
        chunked = iter([b"[" + b" " * 4096] * 20)  # a generator: sent chunked, without Content-Length
        _err(send(method, url, content=chunked, headers=json_headers), 413, "body_too_large")
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
            headers = {**auth, **({"content-type": content_type} if content_type else {})}
            _err(
                send(method, url, content=b'{"reason": "x"}', headers=headers), 415, "unsupported_media_type"
            )
    assert client.get("/healthz").status_code == 200


def test_rpc_answers_hostile_bodies_with_json_rpc_parse_errors(env: tuple[TestClient, World]) -> None:
    client, _ = env
    deep = b"[" * 30_000 + b"]" * 30_000
    for content_type in ("text/plain", "application/octet-stream"):
        for body in (deep, b'{"jsonrpc": "2.0", "method": "\xff"}', b"{nope"):
            r = client.post("/rpc", content=body, headers={"content-type": content_type})
            assert r.status_code == 200 and r.json()["error"]["code"] == -32700, r.text
    _err(
        client.post("/rpc", content=deep, headers={"content-type": "application/json"}), 400, "json_too_deep"
    )
    _err(client.post("/rpc", content=b"[" * (LIMIT + 1)), 413, "body_too_large")
    deep_id = {"jsonrpc": "2.0", "id": json.loads("[" * 60 + "]" * 60), "method": "eth_chainId", "params": []}
    assert "result" in client.post("/rpc", json=deep_id).json()
    assert client.get("/healthz").status_code == 200


def test_other_hostile_shapes(env: tuple[TestClient, World]) -> None:
    client, world = env
    auth = {**world.auth("registrar"), "content-type": "application/json"}
    party = {"kind": "department", "name": "x", "uscc": make_uscc(31)}
    # a lone surrogate is valid JSON but not Unicode text
    lone = json.dumps({**party, "name": "\ud800"}).encode()
    _err(client.post("/v1/parties", content=lone, headers=auth), 422, "validation_failed")
    # a number of 5000 digits (Python refuses to convert it)
    huge = b'{"kind": "department", "name": "x", "uscc": "y", "address": ' + b"9" * 5000 + b"}"
    r = client.post("/v1/parties", content=huge, headers=auth)
    _err(r, 400, "malformed_json")
    assert r.json()["error"]["message"] == (
        "the request body is not valid JSON (a number has more than 4,300 digits)"
    )  # not Python's advice to call sys.set_int_max_str_digits()
    # a log index in a body past what a SQL integer holds (it reached SQLite: a 500)
    declaration = {
        "contract_id": "0x" + "ab" * 32,
        "name": "p",
        "inputs": [2**63],
        "purpose": "public_service",
        "release_mode": "internal",
    }
    err = client.post("/v1/declarations", json=declaration, headers=world.auth("enterprise"))
    _err(err, 422, "validation_failed")
    assert err.json()["error"]["message"].startswith("inputs.0:"), err.text
    dispute = {"resource_id": world.resource, "version": 2**63, "reason": "x"}
    _err(client.post("/v1/disputes", json=dispute, headers=world.auth("requester")), 422, "validation_failed")
    # NaN and infinities are not JSON
    nan = b'{"kind": "department", "name": NaN, "uscc": "y"}'
    assert 400 <= client.post("/v1/parties", content=nan, headers=auth).status_code < 500
    # the body is an array, a string, null
    for body in (b"[]", b'"x"', b"null", b"0"):
        _err(client.post("/v1/parties", content=body, headers=auth), 422, "validation_failed")
    # an empty body where one is required
    _err(client.post("/v1/parties", content=b"", headers=auth), 422, "validation_failed")
    # a huge index in a path or a query
    _err(client.get(f"/v1/proofs/access/{2**70}", headers=auth), 422, "validation_failed")
    _err(
        client.get(f"/v1/log/proof/inclusion?index={2**70}&tree_size=1", headers=auth),
        422,
        "validation_failed",
    )
    # a token that is absurdly long, or not a bearer token at all
    _err(
        client.get("/v1/parties/me", headers={"Authorization": "Bearer " + "x" * 8000}), 401, "invalid_token"
    )
    _err(client.get("/v1/parties/me", headers={"Authorization": "Bearer"}), 401, "missing_token")
    assert client.get("/healthz").status_code == 200


def test_access_event_time_at_the_edge_of_the_calendar(env: tuple[TestClient, World]) -> None:
    client, world = env
    event = {
        **access_event("edge-1", world.ids["requester"], world.ids["provider"]),
        "time": "0001-01-01T00:00+05:00",
    }
    r = client.post("/v1/access-events", json=[event], headers=world.auth("operator"))
    _err(r, 422, "validation_failed")


EDGE_TIMES = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00")


@pytest.mark.parametrize(("bound", "edge"), [("valid_from", EDGE_TIMES[0]), ("valid_until", EDGE_TIMES[1])])
def test_share_request_window_at_the_edge_of_the_calendar(
    env: tuple[TestClient, World], bound: str, edge: str
) -> None:
    client, world = env
    body = request_body(world.resource)
    body["scope"][bound] = edge
    r = client.post("/v1/share-requests", json=body, headers=world.auth("requester"))
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"], r.text


def test_audit_alerts_window_at_the_edge_of_the_calendar(env: tuple[TestClient, World]) -> None:
    client, world = env
    r = client.get("/v1/audit/alerts?until=0001-01-01T00:00:00Z", headers=world.auth("regulator"))
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"], r.text


@pytest.mark.parametrize(
    "query", ["fields=" + "f" * 65, "group_by=" + "g" * 65, "fields=" + ",".join(["f"] * 300)]
)
def test_data_query_lists_over_their_limits(env: tuple[TestClient, World], query: str) -> None:
    client, world = env
    r = client.get(
        f"/v1/data/{world.open_resource}?grant={world.grant}&{query}", headers=world.auth("requester")
    )
    _err(r, 422, "validation_failed")


def test_data_access_with_an_empty_field_name(env: tuple[TestClient, World]) -> None:
    client, world = env
    r = client.post(
        f"/v1/data/{world.open_resource}",
        json={"grant": world.grant, "fields": [""]},
        headers=world.auth("outsider"),
    )
    assert r.status_code in (403, 422), r.text


# -- NUL and control characters: SQLite and PostgreSQL --------------------------------------------------


@pytest.fixture
def fresh(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_nul_is_refused_before_it_reaches_the_database(
    fresh: TestClient, registrar_headers: dict[str, str]
) -> None:
    """PostgreSQL cannot store U+0000 in text (psycopg raises DataError: a 500 before the guard)."""
    body = {"kind": "department", "name": "贵阳\x00市", "uscc": make_uscc(40)}
    _err(fresh.post("/v1/parties", json=body, headers=registrar_headers), 400, "nul_character")
    _err(fresh.get("/v1/resources?provider=%00", headers=registrar_headers), 400, "nul_character")
    _err(fresh.get("/v1/parties/a%00b", headers=registrar_headers), 400, "nul_character")
    dispute = {"resource_id": "\x00", "reason": "x"}
    _err(fresh.post("/v1/disputes", json=dispute, headers=registrar_headers), 400, "nul_character")
    escaped = {"kind": "department", "name": "贵阳\\u0000市", "uscc": make_uscc(41)}  # a backslash, then text
    r = fresh.post("/v1/parties", json=escaped, headers=registrar_headers)
    assert r.status_code == 201 and r.json()["name"] == "贵阳\\u0000市", r.text


def test_the_body_that_used_to_kill_the_server(fresh: TestClient, registrar_headers: dict[str, str]) -> None:
    """100,000 nested brackets (200 KB, under the default 1 MiB limit): json.loads used to overflow the
    C stack and the process died with SIGSEGV; now refused before parsing, and the server lives on."""
    deep = b"[" * 100_000 + b"]" * 100_000
    json_headers = {**registrar_headers, "content-type": "application/json"}
    _err(fresh.post("/v1/parties", content=deep, headers=json_headers), 400, "json_too_deep")
    _err(fresh.post("/rpc", content=deep, headers={"content-type": "application/json"}), 400, "json_too_deep")
    r = fresh.post("/rpc", content=deep, headers={"content-type": "text/plain"})
    assert r.status_code == 200 and r.json()["error"]["code"] == -32700
    assert fresh.get("/healthz").status_code == 200


def test_party_name_with_control_characters(fresh: TestClient, registrar_headers: dict[str, str]) -> None:
    body = {"kind": "department", "name": "贵阳\x1b[2J\x1b[31m市", "uscc": make_uscc(42)}
    _err(fresh.post("/v1/parties", json=body, headers=registrar_headers), 422, "invalid_name")


# -- real HTTP: refusal before the body is sent ---------------------------------------------------------


@pytest.fixture(scope="module")
def live(env: tuple[TestClient, World]) -> Iterator[str]:
    client, _ = env
    with serve(client.app) as url:  # type: ignore[arg-type]
        yield url


def _exchange(url: str, head: bytes, chunks: list[bytes], *, read_after: int) -> tuple[bytes, int]:
    """Send ``head``, then up to ``read_after`` chunks; return the response and how many chunks went."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(head)
        sent = 0
        for chunk in chunks[:read_after]:
            sock.sendall(chunk)
            sent += 1
        sock.settimeout(15)
        response = b""
        deadline = time.monotonic() + 15
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part or time.monotonic() > deadline:
                break
            response += part
        return response, sent


def test_huge_content_length_is_answered_before_the_body(live: str, env: tuple[TestClient, World]) -> None:
    _, world = env
    head = (
        b"POST /v1/parties HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {world.tokens['registrar']}\r\n".encode()
        + b"Content-Length: 1000000000\r\n\r\n"
    )
    response, _ = _exchange(live, head, [], read_after=0)  # not one byte of the body sent
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"body_too_large"' in response


def test_unfinished_chunked_body_is_answered_at_the_limit(live: str, env: tuple[TestClient, World]) -> None:
    _, world = env
    head = (
        b"POST /v1/parties HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {world.tokens['registrar']}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KiB per chunk; the limit is 64 KiB
    response, sent = _exchange(live, head, [chunk] * 8, read_after=5)  # never sends the last chunk
    assert sent == 5 and response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"body_too_large"' in response

"""What every API request goes through, made cheap without changing what it answers: routes on the
app itself (not FastAPI's per-request router views), one thread-pool hop per synchronous endpoint,
the caller's token and status from this process's caches, the log's size and latest checkpoint by
single statements, and SQLite writers of one process taking turns on a lock instead of sleeping in
SQLite's busy handler (docs/benchmarks.md, "API: the request path")."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import text

import api.routing
from api.app import ROUTE_MODULES, _add_routes, create_app
from api.routing import Route, offloaded
from ledger.errors import Forbidden, StoreError, Unauthorized
from ledger.identity.parties import NewParty, hash_token
from ledger.identity.uscc import make_uscc
from ledger.log.store import NewEntry
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.store.db import Store
from ledger.types import PartyKind

# -- routes on the app, one hop per synchronous endpoint ---------------------------------------------


def test_every_route_is_on_the_app_itself(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    api_routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert not [r for r in app.router.routes if hasattr(r, "original_router")]  # no router views
    assert len(api_routes) == sum(len(m.router.routes) for m in ROUTE_MODULES) >= 90
    assert all(isinstance(r, Route) for r in api_routes)


def test_the_openapi_document_is_what_include_router_gives(tmp_path: Path) -> None:
    ours = create_app(Settings(data_dir=tmp_path)).openapi()
    reference = FastAPI(title=ours["info"]["title"], version=ours["info"]["version"])
    for module in ROUTE_MODULES:
        reference.include_router(module.router)
    theirs = reference.openapi()
    assert ours["paths"] == theirs["paths"]
    assert ours["components"] == theirs["components"]
    assert len(ours["paths"]) >= 60


def test_add_routes_refuses_what_it_would_drop() -> None:
    app = FastAPI()
    guarded = APIRouter(dependencies=[Depends(lambda: None)], route_class=Route)
    with pytest.raises(RuntimeError) as refused:
        _add_routes(app, guarded)
    expected = "a router with dependencies, callbacks or event handlers needs include_router"
    assert str(refused.value) == expected
    plain = APIRouter()

    @plain.get("/x")
    def x() -> int:
        return 1

    with pytest.raises(RuntimeError, match=r"is not an api\.routing\.Route"):
        _add_routes(app, plain)
    assert not [r for r in app.router.routes if getattr(r, "path", None) == "/x"]  # nothing added


def test_offloaded_runs_a_plain_function_in_a_worker_thread_and_keeps_coroutines() -> None:
    def work(a: int, *, b: int) -> tuple[int, int]:
        return a + b, threading.get_ident()

    async def already() -> int:
        return 1

    assert offloaded(already) is already
    wrapped = offloaded(work)
    assert asyncio.iscoroutinefunction(wrapped) and wrapped.__wrapped__ is work  # type: ignore[attr-defined]

    async def main() -> tuple[tuple[int, int], int]:
        return await wrapped(2, b=3), threading.get_ident()

    (total, worker), loop_thread = asyncio.run(main())
    assert total == 5 and worker != loop_thread


class _Out(BaseModel):
    n: int


def _hops(monkeypatch: pytest.MonkeyPatch, route_class: type[APIRoute]) -> int:
    """Thread-pool hand-offs of one request to a sync endpoint with a response model."""
    import fastapi.routing

    hops = 0
    for module in (fastapi.routing, api.routing):
        original = module.run_in_threadpool

        async def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            nonlocal hops
            hops += 1
            return await _original(*args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", counted)
    router = APIRouter(route_class=route_class)

    @router.get("/n", response_model=_Out)
    def n() -> dict[str, int]:
        return {"n": 7}

    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/n").json() == {"n": 7}
    monkeypatch.undo()
    return hops


def test_a_sync_endpoint_costs_one_thread_hop_not_two(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _hops(monkeypatch, APIRoute) == 2  # FastAPI: the endpoint, then the response validation
    assert _hops(monkeypatch, Route) == 1


# -- the caller from this process's caches --------------------------------------------------------


@pytest.fixture
def quick(settings: Settings) -> Iterator[Ledger]:
    with Ledger.open(settings.model_copy(update={"suspension_cache_seconds": 0.4})) as opened:
        yield opened


def _party(ledger: Ledger, seq: int) -> tuple[Any, str]:
    registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
    return ledger.parties.register(registrar, NewParty(PartyKind.DEPARTMENT, f"dept {seq}", make_uscc(seq)))


def test_a_token_is_remembered_for_the_cache_period_only(quick: Ledger) -> None:
    party, token = _party(quick, 610)
    service = quick.parties
    assert service.authenticate_cached(token) is None  # never seen: the caller must look it up
    assert service.authenticate(token).id == party.id
    assert service.authenticate_cached(token).id == party.id  # type: ignore[union-attr]
    # the token is replaced in the database (as the demo re-seeding does): the old one keeps
    # working for the cache period at most, then is refused like any unknown token
    with quick.store.session() as session:
        session.execute(
            text("UPDATE parties SET token_hash = :h WHERE id = :id"),
            {"h": hash_token("st_new"), "id": party.id},
        )
    assert service.authenticate(token).id == party.id
    time.sleep(0.45)
    assert service.authenticate_cached(token) is None
    with pytest.raises(Unauthorized) as refused:
        service.authenticate(token)
    assert refused.value.code == "invalid_token" and refused.value.message == "unknown API token"
    assert service.authenticate("st_new").id == party.id


def test_an_unknown_token_is_never_remembered(quick: Ledger) -> None:
    for _ in range(2):
        with pytest.raises(Unauthorized) as refused:
            quick.parties.authenticate("st_nobody")
        assert refused.value.code == "invalid_token"
        assert quick.parties.authenticate_cached("st_nobody") is None


def test_a_suspended_party_is_refused_from_the_cache_too(quick: Ledger) -> None:
    party, token = _party(quick, 611)
    quick.parties.authenticate(token)
    registrar = quick.parties.get(quick.bootstrap.registrar_id)
    quick.parties.set_suspended(registrar, party.id, True, "audit")
    assert quick.parties.authenticate_cached(token) is None  # suspension here forgets the status
    with pytest.raises(Forbidden) as refused:
        quick.parties.authenticate(token)
    assert refused.value.code == "party_suspended"
    with pytest.raises(Forbidden) as cached:
        quick.parties.authenticate_cached(token)
    assert cached.value.code == "party_suspended"
    assert cached.value.message == f"party {party.id} is suspended on chain"


def test_the_api_refuses_a_suspended_caller_whose_token_it_has_cached(client: TestClient) -> None:
    boot = {"Authorization": "Bearer st_bootstrap-registrar-token"}
    made = client.post(
        "/v1/parties", json={"kind": "department", "name": "d", "uscc": make_uscc(612)}, headers=boot
    )
    caller = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/v1/parties/me", headers=caller).status_code == 200
    assert (
        client.post(
            f"/v1/parties/{made.json()['id']}/suspend", json={"reason": "x"}, headers=boot
        ).status_code
        == 200
    )
    refused = client.get("/v1/parties/me", headers=caller)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "party_suspended"


# -- the log's size and latest checkpoint ---------------------------------------------------------


def _grow(ledger: Ledger, start: int, end: int) -> None:
    now = datetime.now(UTC)
    ledger.log.log.append(
        [
            NewEntry(event_id=f"rp-{i}", kind="access", time=now, event={"n": i}, accessor="a", resource="r")
            for i in range(start, end)
        ]
    )


def test_size_and_latest_checkpoint_follow_the_log(ledger: Ledger) -> None:
    store = ledger.log.log
    assert store.size() == 0 and store.latest_checkpoint() is None
    _grow(ledger, 0, 5)
    assert store.size() == 5
    first = ledger.anchorer.anchor_once()
    assert first is not None and store.latest_checkpoint().size == 5  # type: ignore[union-attr]
    assert store.latest_checkpoint() is store.latest_checkpoint()  # the row is read once
    _grow(ledger, 5, 12)
    assert store.size() == 12 and store.latest_checkpoint().size == 5  # type: ignore[union-attr]
    ledger.anchorer.anchor_once()
    latest = store.latest_checkpoint()
    assert latest is not None and latest.size == 12 and latest.root == store.root(12)


def test_read_rows_gives_the_drivers_rows(ledger: Ledger) -> None:
    rows = ledger.store.read_rows("SELECT size FROM log_head WHERE id = :id", {"id": 1})
    assert rows == [(0,)]
    assert ledger.store.read_rows("SELECT size FROM log_head WHERE id = :id", {"id": 2}) == []


def test_read_rows_reports_a_broken_statement_as_a_store_error(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.sqlite'}")
    store.migrate()
    with pytest.raises(StoreError) as broken:
        store.read_rows("SELECT 1 FROM nowhere")
    assert broken.value.message == "database unavailable: no such table: nowhere"
    store.close()


# -- SQLite writers take turns --------------------------------------------------------------------


def _hold(store: Store, seconds: float, marks: dict[str, float]) -> None:
    with store.session() as session:
        session.execute(text("UPDATE log_head SET size = size WHERE id = 1"))
        marks["a_in"] = time.monotonic()
        time.sleep(seconds)
    marks["a_out"] = time.monotonic()


def _holding(store: Store, seconds: float) -> tuple[threading.Thread, dict[str, float]]:
    """A thread inside a write session for ``seconds``, started; returns once it is in."""
    marks: dict[str, float] = {}
    holder = threading.Thread(target=_hold, args=(store, seconds, marks))
    holder.start()
    while "a_in" not in marks:
        time.sleep(0.005)
    return holder, marks


def test_sqlite_writers_of_one_process_go_in_as_soon_as_the_last_commits(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.sqlite'}")
    store.migrate()
    holder, marks = _holding(store, 0.35)
    with store.session() as session:
        marks["b_in"] = time.monotonic()
        session.execute(text("UPDATE log_head SET size = size WHERE id = 1"))
    holder.join()
    # SQLite's busy handler would have slept until ~0.43 s (its 100 ms steps): ≥ 78 ms late
    assert 0 <= marks["b_in"] - marks["a_out"] < 0.05
    store.close()


def test_a_write_turn_is_waited_for_no_longer_than_the_timeout(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.sqlite'}?timeout=0.2")
    store.migrate()
    holder, _ = _holding(store, 0.6)
    began = time.monotonic()
    with pytest.raises(StoreError) as busy, store.session():
        pass
    assert 0.15 < time.monotonic() - began < 0.5
    # the same answer as SQLite's own busy timeout (the fault tests see that one across processes)
    assert busy.value.message == "database unavailable: database is locked"
    assert busy.value.code == "store_unavailable"
    holder.join()
    with store.session() as session:  # the turn is free again
        session.execute(text("UPDATE log_head SET size = size WHERE id = 1"))
    store.close()


@pytest.mark.postgres
def test_a_standalone_read_on_a_dropped_connection_is_retried_once(pg_url: str) -> None:
    store = Store(pg_url)
    store.migrate()
    try:
        ((first,),) = store.read_rows("SELECT pg_backend_pid()")
        ((again,),) = store.read_rows("SELECT pg_backend_pid()")
        assert again == first  # the pool keeps its connection
        with store.engine.connect() as conn:  # the server drops it (as a restart would)
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar() is True
        ((fresh,),) = store.read_rows("SELECT pg_backend_pid()")
        assert fresh != first
    finally:
        store.close()

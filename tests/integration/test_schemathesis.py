"""Schemathesis over the whole OpenAPI document: no generated request may get a response >= 500, and
every 4xx answer is the JSON error envelope (DESIGN.md "Errors": never a 500 for bad input).

The real app is served by uvicorn on loopback (tests/support/live.py) over the real embedded chain
and a real database, seeded with one object of every kind (tests/support/world.py). Each operation is
fuzzed with a registrar's token and with a department's: Schemathesis's positive (schema-conforming)
and negative (schema-violating) generation, plus positive cases whose path parameters name the real
seeded objects, so that requests get past "not found" into the services.

The operations are read from ``create_app(...).openapi()`` at collection time, so a new route is
fuzzed without touching this file. The default suite runs a few examples per operation on SQLite;
``@pytest.mark.slow`` runs many more, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode

from api.app import create_app
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.support.live import serve
from tests.support.postgres import drop_database, fresh_database
from tests.support.world import BOOTSTRAP_TOKEN, World, build_world

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
FAST_EXAMPLES = 15
SLOW_EXAMPLES = 300
CALLERS = ("registrar", "requester")  # a registrar's token and a department's


def _operations() -> list[tuple[str, str]]:
    spec = create_app(Settings(data_dir=Path("unused"), anchor_loop=False)).openapi()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


OPERATIONS = _operations()


@dataclass
class Target:
    url: str
    world: World
    schema: Any  # schemathesis' OpenApiSchema
    session: requests.Session


@contextmanager
def running(tmp: Path, db_url: str | None) -> Iterator[Target]:
    settings = Settings(
        data_dir=tmp / "data", db_url=db_url, bootstrap_token=BOOTSTRAP_TOKEN, anchor_loop=False
    )
    with Ledger.open(settings) as ledger:
        app = create_app(settings, ledger=ledger)  # one ledger for the TestClient and uvicorn alike
        with TestClient(app) as client:
            world = build_world(client, ledger)
        schema = schemathesis.openapi.from_dict(app.openapi())
        with serve(app) as url, requests.Session() as session:
            yield Target(url=url, world=world, schema=schema, session=session)


@pytest.fixture(scope="module")
def sqlite_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running(tmp_path_factory.mktemp("fuzz-sqlite"), None) as target:
        yield target


@pytest.fixture(scope="module")
def postgres_target(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Target]:
    url = fresh_database(pg_server_url)
    try:
        with running(tmp_path_factory.mktemp("fuzz-pg"), url) as target:
            yield target
    finally:
        drop_database(pg_server_url, url)


def _hints(world: World, path: str) -> dict[str, Any]:
    """Path parameters naming real seeded objects (only those the path has)."""
    values: dict[str, Any] = {
        "party_id": world.ids["victim"],  # suspending it harms no caller of this test
        "resource_id": world.open_resource
        if path.endswith("/source") or path.startswith("/v1/data/")
        else world.resource,
        "request_id": world.request,
        "grant_id": world.grant,
        "dispute_id": world.dispute,
        "index": world.access_index,
    }
    return {name: value for name, value in values.items() if "{" + name + "}" in path}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _check(case: Any, response: requests.Response) -> None:
    where = f"{case.method} {case.formatted_path}"
    curl = case.as_curl_command()
    assert response.status_code < 500, f"{where} -> {response.status_code} {response.text[:500]}\n{curl}"
    if 400 <= response.status_code < 500:
        try:
            body = response.json()
        except ValueError:
            pytest.fail(
                f"{where} -> {response.status_code} without a JSON body: {response.text[:300]}\n{curl}"
            )
        assert isinstance(body, dict) and set(body) == {"error"}, f"{where}: not the error envelope {body}"
        error = body["error"]
        assert isinstance(error.get("code"), str) and error["code"], f"{where}: {body}"
        assert isinstance(error.get("message"), str), f"{where}: {body}"


def fuzz(target: Target, method: str, path: str, caller: str, *, examples: int, derandomize: bool) -> None:
    operation = target.schema[path][method]
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    hints = _hints(target.world, path)
    if hints:
        strategies.append(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=hints)
        )
    headers = target.world.auth(caller)

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(case=st.one_of(strategies))
    def run(case: Any) -> None:
        # uvicorn's HTTP parser (h11) refuses a request line over 16 KiB before the app sees it: it
        # answers a plain-text 400 and closes, which the client sees as that answer, or — when it was
        # still sending — as a reset connection, even in the middle of reading the answer
        too_long = len(case.as_curl_command()) > 8192
        try:
            response = case.call(base_url=target.url, session=target.session, headers=headers, timeout=120)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            assert too_long, f"{case.method} {case.formatted_path}: connection failed: {exc}"
            return
        if too_long and response.status_code == 400 and response.text == "Invalid HTTP request received.":
            return
        _check(case, response)

    run()


def _params() -> list[Any]:
    return [
        pytest.param(method, path, caller, id=f"{caller}-{method} {path}")
        for method, path in OPERATIONS
        for caller in CALLERS
    ]


@pytest.mark.parametrize(("method", "path", "caller"), _params())
def test_no_server_error(sqlite_target: Target, method: str, path: str, caller: str) -> None:
    fuzz(sqlite_target, method, path, caller, examples=FAST_EXAMPLES, derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "caller"), _params())
def test_no_server_error_thorough(sqlite_target: Target, method: str, path: str, caller: str) -> None:
    fuzz(sqlite_target, method, path, caller, examples=SLOW_EXAMPLES, derandomize=False)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize(("method", "path", "caller"), _params())
def test_no_server_error_on_postgres(postgres_target: Target, method: str, path: str, caller: str) -> None:
    fuzz(postgres_target, method, path, caller, examples=SLOW_EXAMPLES // 3, derandomize=False)


def test_every_operation_is_fuzzed(sqlite_target: Target) -> None:
    """The document Schemathesis reads is the one the running app serves, and none is skipped."""
    served = requests.get(f"{sqlite_target.url}/openapi.json", timeout=30).json()
    assert {(m.upper(), p) for p, item in served["paths"].items() for m in item if m in HTTP_METHODS} == set(
        OPERATIONS
    )
    assert len(OPERATIONS) >= 40, json.dumps(sorted(served["paths"]))

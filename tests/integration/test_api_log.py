"""The log routes through the real app: every rejection with its exact status and code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.identity.uscc import make_uscc
from ledger.settings import Settings
from tests.support.world import resource_body

BOOT = {"Authorization": "Bearer st_boot-log"}


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-log", anchor_loop=False
    )
    with TestClient(create_app(settings)) as client:
        parties = {}
        for n, kind in enumerate(("operator", "department", "regulator")):
            r = client.post(
                "/v1/parties", json={"kind": kind, "name": kind, "uscc": make_uscc(60 + n)}, headers=BOOT
            )
            parties[kind] = {"Authorization": f"Bearer {r.json()['token']}", "id": r.json()["id"]}
        # the catalog entry the events name (an exchange platform reports real resources only)
        r = client.post(
            "/v1/resources",
            json=resource_body("GY-RS-003"),
            headers={"Authorization": parties["department"]["Authorization"]},
        )
        assert r.status_code == 201, r.text
        yield {"client": client, **parties}


def ev(env: dict[str, Any], i: int = 0, **over: Any) -> dict[str, Any]:
    base = {
        "event_id": f"e-{i}",
        "accessor": env["department"]["id"],
        "resource": "GY-RS-003",
        "purpose": "employment_service",
        "time": "2026-11-21T02:30:00+08:00",
        "gateway": "gw",
    }
    return {**base, **over}


def post(env: dict[str, Any], events: Any, who: str = "operator") -> Any:
    return env["client"].post(
        "/v1/access-events", json=events, headers={"Authorization": env[who]["Authorization"]}
    )


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.json()


def test_record_and_read_back(env: dict[str, Any]) -> None:
    r = post(env, [ev(env, i) for i in range(3)])
    assert r.status_code == 201 and [x["index"] for x in r.json()] == [0, 1, 2]
    again = post(env, [ev(env, 2), ev(env, 3)])
    assert [(x["index"], x["duplicate"]) for x in again.json()] == [(2, True), (3, False)]
    rows = env["client"].get(
        "/v1/log/entries?start=0&end=4", headers={"Authorization": env["regulator"]["Authorization"]}
    )
    assert rows.status_code == 200
    assert rows.json()[0]["entry"]["time"] == "2026-11-20T18:30:00.000Z"  # normalised to UTC
    assert rows.json()[0]["entry"]["recorded_by"] == env["operator"]["id"]
    cp = env["client"].get("/v1/log/checkpoint", headers=BOOT).json()
    assert cp["tree_size"] == 0 and cp["log_size"] == 4 and cp["pending"] == 4
    proof = env["client"].get("/v1/log/proof/inclusion?index=1&tree_size=4", headers=BOOT).json()
    assert len(proof["proof"]) == 2
    cons = env["client"].get("/v1/log/proof/consistency?first=1&second=4", headers=BOOT).json()
    assert len(cons["proof"]) == 2
    # anchored: when, in the API's one time form (UTC, Z) — read back from SQLite it had no zone
    assert env["client"].app.state.ledger.anchorer.anchor_once() is not None
    anchored = env["client"].get("/v1/log/checkpoint", headers=BOOT).json()["anchored"]
    assert anchored["at"].endswith("Z") and "+" not in anchored["at"], anchored
    audit = env["client"].post("/v1/audit/verify", headers=env["regulator"]).json()
    assert audit["latest_anchored"]["anchored_at"].endswith("Z"), audit["latest_anchored"]


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"query_hash": "0x12"}, "query_hash"),
        ({"time": "2026-11-21T02:30:00"}, "timezone"),
        ({"time": "2999-01-01T00:00:00Z"}, "future"),
        ({"kind": "denied"}, "reason"),
        ({"reason": "no_grant"}, "reason is only"),
        ({"kind": "grant"}, "only kinds"),
        ({"event_id": "has space"}, "event_id"),
        ({"mode": "stolen"}, "mode"),
        ({"record_count": -1}, "record_count"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_events(env: dict[str, Any], over: dict[str, Any], fragment: str) -> None:
    r = post(env, [ev(env, **over)])
    err(r, 422, "validation_failed")
    assert fragment in r.text


def test_batch_rules(env: dict[str, Any]) -> None:
    err(post(env, []), 422, "empty_batch")
    err(post(env, [ev(env, i) for i in range(1001)]), 422, "validation_failed")
    err(post(env, [ev(env, 1), ev(env, 1)]), 422, "duplicate_event_id")
    err(post(env, [ev(env, accessor="nobody")]), 422, "unknown_party")
    err(post(env, {"not": "a list"}), 422, "validation_failed")
    assert post(env, [ev(env, 5)]).status_code == 201
    err(post(env, [ev(env, 5, record_count=9)]), 409, "event_id_conflict")


def test_roles(env: dict[str, Any]) -> None:
    err(post(env, [ev(env)], who="department"), 403, "forbidden_role")
    err(post(env, [ev(env)], who="regulator"), 403, "forbidden_role")
    r = env["client"].get(
        "/v1/log/entries?start=0&end=1", headers={"Authorization": env["department"]["Authorization"]}
    )
    err(r, 403, "forbidden_role")
    err(env["client"].get("/v1/log/checkpoint"), 401, "missing_token")


def test_proof_parameters(env: dict[str, Any]) -> None:
    post(env, [ev(env, i) for i in range(4)])
    c = env["client"]
    err(c.get("/v1/log/proof/inclusion?index=4&tree_size=4", headers=BOOT), 422, "index_out_of_range")
    err(c.get("/v1/log/proof/inclusion?index=0&tree_size=5", headers=BOOT), 422, "tree_size_too_large")
    err(c.get("/v1/log/proof/inclusion?index=-1&tree_size=2", headers=BOOT), 422, "validation_failed")
    err(c.get("/v1/log/proof/inclusion?index=x&tree_size=2", headers=BOOT), 422, "validation_failed")
    err(c.get("/v1/log/proof/consistency?first=3&second=2", headers=BOOT), 422, "invalid_sizes")
    err(c.get("/v1/log/proof/consistency?first=1&second=9", headers=BOOT), 422, "tree_size_too_large")
    err(c.get("/v1/log/entries?start=0&end=5000", headers=BOOT), 422, "range_too_large")
    err(c.get("/v1/log/entries?start=3&end=3", headers=BOOT), 422, "invalid_range")

"""What a share request and a decision may say, through the real app, the real embedded chain, SQLite
and PostgreSQL (docs/architecture.md, "Share workflow"; ledger/sharing/conditions.py).

Regressions of a QA pass: parallel decisions stored the terms of a decision that failed on chain (every
access then 403 ``scope_mismatch``); an inverted window overwrote the requester's scope before the
contract refused it; conditions widened the request (ScopeIn's defaults: raw, 1000 records, 100
accesses); invalid row filters and windows in the past were accepted; ``"approve": "yes"`` was true.
Every refusal asserts its status and code, and that the request is left exactly as requested.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.canonical import canonical_json
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings

BOOT = {"Authorization": "Bearer st_boot-decision-checks"}
NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(days=10)  # requested windows began ten days ago ...
END = NOW + timedelta(days=365)  # ... and run for a year
FIELDS: list[dict[str, Any]] = [
    {"name": "name", "sensitive": True, "masking": "name"},
    {"name": "district"},
    {"name": "v", "type": "integer"},
    {"name": "id_number", "sensitive": True, "masking": "id_number"},
]
ROWS = [
    {"name": "张伟", "district": "云岩区", "v": 1, "id_number": "520102199001011234"},
    {"name": "王芳", "district": "南明区", "v": 2, "id_number": "520102199002021234"},
    {"name": "李强", "district": "云岩区", "v": 3, "id_number": "520102199003031234"},
]


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token=BOOT["Authorization"][7:], anchor_loop=False
    )
    app = create_app(settings)
    source = settings.data_dir / "sources" / "people.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    with source.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f["name"] for f in FIELDS])
        writer.writeheader()
        writer.writerows(ROWS)
    with TestClient(app) as client:
        out: dict[str, Any] = {"client": client, "ledger": app.state.ledger}
        for n, (name, kind) in enumerate([("provider", "department"), ("requester", "department")]):
            r = client.post(
                "/v1/parties", json={"kind": kind, "name": name, "uscc": make_uscc(700 + n)}, headers=BOOT
            )
            assert r.status_code == 201, r.text
            out[name] = {"Authorization": f"Bearer {r.json()['token']}"}
            out[name + "_id"] = r.json()["id"]
        for code, share_type, level in (
            ("L2", "conditional", 2),
            ("L3", "conditional", 3),
            ("AUTO", "unconditional", 1),
        ):
            body = {
                "code": f"GY-DC-{code}",
                "name": code,
                "format": "table",
                "share_type": share_type,
                "open_type": "none",
                "level": level,
                "update_frequency": "monthly",
                "legal_basis": "《社会救助暂行办法》",
                "fields": FIELDS,
            }
            r = client.post("/v1/resources", json=body, headers=out["provider"])
            assert r.status_code == 201, r.text
            out[code] = r.json()["id"]
            r = client.put(
                f"/v1/resources/{out[code]}/source",
                json={"kind": "csv", "location": str(source)},
                headers=out["provider"],
            )
            assert r.status_code == 200, r.text
        yield out


def scope(**over: Any) -> dict[str, Any]:
    body = {
        "fields": ["district", "name"],
        "valid_from": START.isoformat(),
        "valid_until": END.isoformat(),
        "mode": "masked",
        "max_records": 500,
        "max_accesses": 50,
    }
    return {**body, **over}


def request(env: dict[str, Any], code: str = "L2", **over: Any) -> Any:
    body = {
        "resource_id": env[code],
        "purpose": {"code": "employment_service", "text": "就业困难人员认定"},
        "legal_basis": "《就业促进法》第五十二条",
        "scope": scope(**over),
    }
    return env["client"].post("/v1/share-requests", json=body, headers=env["requester"])


def requested(env: dict[str, Any], code: str = "L2", **over: Any) -> dict[str, Any]:
    r = request(env, code, **over)
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    out: dict[str, Any] = r.json()
    return out


def decide(env: dict[str, Any], request_id: str, body: dict[str, Any]) -> Any:
    return env["client"].post(f"/v1/share-requests/{request_id}/decision", json=body, headers=env["provider"])


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.json()


def current(env: dict[str, Any], request_id: str) -> dict[str, Any]:
    out: dict[str, Any] = (
        env["client"].get(f"/v1/share-requests/{request_id}", headers=env["provider"]).json()
    )
    return out


def untouched(env: dict[str, Any], req: dict[str, Any]) -> None:
    """The request is still pending, exactly as requested: no terms, no reason, no decision."""
    now = current(env, req["id"])
    assert now["status"] == "pending" and now["scope"] == req["scope"], now
    assert now["reason"] is None and now["decision_tx"] is None and now["grant_id"] is None


def log_kinds(env: dict[str, Any]) -> list[str]:
    ledger: Ledger = env["ledger"]
    return [e.kind for e in ledger.log.log.entries(0, 1000)]


def consistent_grant(env: dict[str, Any], grant_id: str) -> dict[str, Any]:
    """The stored scope hashes to the grant's on-chain scope hash and carries its cap, and the grantee
    reads data under it (the gateway's own scope-hash check)."""
    grant: dict[str, Any] = env["client"].get(f"/v1/grants/{grant_id}", headers=env["requester"]).json()
    assert grant["scope_hash"] == "0x" + keccak(canonical_json(grant["scope"])).hex(), grant
    assert grant["max_accesses"] == grant["scope"]["max_accesses"], grant
    r = env["client"].get(
        f"/v1/data/{grant['resource_id']}", params={"grant": grant_id}, headers=env["requester"]
    )
    assert r.status_code == 200, r.text
    return grant


# -- 1. racing decisions --------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["L2", "L3"])
def test_parallel_decisions_store_only_the_winners_terms(env: dict[str, Any], code: str) -> None:
    req = requested(env, code)
    bodies: list[dict[str, Any]] = []
    for n in range(4):
        bodies.append({"approve": True, "reason": f"同意{n}", "conditions": {"max_accesses": 10 + n}})
        bodies.append({"approve": False, "reason": f"驳回{n}"})
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> Any:
        barrier.wait()
        return decide(env, req["id"], body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(post, bodies))
    won = [(body, r) for body, r in zip(bodies, answers, strict=True) if r.status_code == 200]
    assert len(won) == 1, [r.text for r in answers]
    for r in answers:
        if r.status_code != 200:
            err(r, 409, "not_pending")
    body, r = won[0]
    stored = current(env, req["id"])
    assert stored["reason"] == body["reason"] and stored["decision_tx"] == r.json()["decision_tx"]
    assert log_kinds(env).count("decision") == 1
    if not body["approve"]:
        assert stored["status"] == "rejected" and stored["scope"] == req["scope"]
        return
    assert stored["scope"] == {**req["scope"], "max_accesses": body["conditions"]["max_accesses"]}
    if code == "L3":  # the co-signers endorse the decision that won, and the grant has its terms
        assert stored["status"] == "awaiting_cosign"
        r = env["client"].post(f"/v1/share-requests/{req['id']}/cosign", headers=BOOT)
        assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    grant = consistent_grant(env, current(env, req["id"])["grant_id"])
    assert grant["max_accesses"] == body["conditions"]["max_accesses"]


# -- 2. an inverted window ------------------------------------------------------------------------------
def test_an_inverted_window_is_refused_before_anything_is_written(env: dict[str, Any]) -> None:
    req = requested(env)
    inverted = {
        "valid_from": (NOW + timedelta(days=20)).isoformat(),
        "valid_until": (NOW + timedelta(days=10)).isoformat(),
    }
    err(
        decide(env, req["id"], {"approve": True, "conditions": {**inverted, "mode": "raw"}}),
        422,
        "invalid_window",
    )
    err(decide(env, req["id"], {"approve": True, "conditions": inverted}), 422, "invalid_window")
    same = {"valid_from": NOW.isoformat(), "valid_until": NOW.isoformat()}
    err(decide(env, req["id"], {"approve": True, "conditions": same}), 422, "invalid_window")
    untouched(env, req)
    assert log_kinds(env) == ["request"]
    r = decide(env, req["id"], {"approve": True, "reason": "同意"})  # not stuck
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    assert r.json()["scope"] == req["scope"] and r.json()["scope"]["mode"] == "masked"
    consistent_grant(env, r.json()["grant_id"])


# -- 3. conditions only narrow --------------------------------------------------------------------------
def test_conditions_wider_than_the_request_are_refused(env: dict[str, Any]) -> None:
    req = requested(env, row_filter={"district": "云岩区"})
    wider = "conditions_wider_than_request"
    refused: list[tuple[dict[str, Any], int, str]] = [
        # the QA case: masked name/district, approved with a raw ID number
        ({"fields": ["district", "id_number"]}, 422, wider),
        ({"fields": ["district", "name", "v"]}, 422, wider),
        ({"fields": ["salary"]}, 422, "unknown_field"),
        ({"mode": "raw"}, 422, wider),
        ({"mode": "aggregate"}, 422, wider),
        ({"mode": "verify"}, 422, wider),
        ({"max_records": 501}, 422, wider),
        ({"max_accesses": 51}, 422, wider),
        ({"valid_from": (START - timedelta(seconds=1)).isoformat()}, 422, wider),
        ({"valid_until": (END + timedelta(seconds=1)).isoformat()}, 422, wider),
        ({"valid_until": (NOW - timedelta(days=1)).isoformat()}, 422, "window_in_past"),
        ({"row_filter": {}}, 422, wider),  # drops the requested district
        ({"row_filter": {"district": "南明区"}}, 422, wider),
        ({"row_filter": {"district": "云岩区", "v": {"$gt": 1}}}, 422, "invalid_row_filter"),
        ({"row_filter": {"district": "云岩区", "salary": 1}}, 422, "unknown_field"),
        ({"row_filter": {"district": {"in": [{"x": 1}]}}}, 422, "invalid_row_filter"),
    ]
    for conditions, status, code in refused:
        err(decide(env, req["id"], {"approve": True, "conditions": conditions}), status, code)
    err(
        decide(env, req["id"], {"approve": False, "reason": "不同意", "conditions": {"max_accesses": 1}}),
        422,
        "conditions_on_rejection",
    )
    untouched(env, req)
    assert log_kinds(env) == ["request"]


def test_conditions_left_out_are_the_requests_own_terms(env: dict[str, Any]) -> None:
    req = requested(env, row_filter={"district": "云岩区"})
    r = decide(env, req["id"], {"approve": True, "reason": "同意", "conditions": {"max_accesses": 10}})
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    assert r.json()["scope"] == {**req["scope"], "max_accesses": 10}  # not raw / 1000 / defaults
    grant = consistent_grant(env, r.json()["grant_id"])
    assert grant["max_accesses"] == 10


def test_conditions_narrow_every_term(env: dict[str, Any]) -> None:
    req = requested(env, mode="raw", fields=["district", "name", "v"], row_filter={"v": {"gte": 1}})
    conditions = {
        "fields": ["name", "district"],
        "mode": "masked",
        "max_records": 2,
        "max_accesses": 3,
        "valid_from": (START + timedelta(days=1)).isoformat(),
        "valid_until": (END - timedelta(days=1)).isoformat(),
        "row_filter": {"v": [{"gte": 1}, {"lte": 2}], "district": {"in": ["云岩区", "南明区"]}},
    }
    r = decide(env, req["id"], {"approve": True, "reason": "附条件同意", "conditions": conditions})
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    stored = r.json()["scope"]
    assert stored["fields"] == ["district", "name"] and stored["mode"] == "masked"
    assert (stored["max_records"], stored["max_accesses"]) == (2, 3)
    assert stored["valid_until"] == (END - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grant = consistent_grant(env, r.json()["grant_id"])
    assert grant["valid_until"] == int((END - timedelta(days=1)).timestamp())
    data = env["client"].get(
        f"/v1/data/{env['L2']}", params={"grant": grant["grant_id"]}, headers=env["requester"]
    )
    assert [row["district"] for row in data.json()["rows"]] == ["云岩区", "南明区"]


@pytest.mark.parametrize("mode", ["masked", "aggregate", "verify"])
def test_a_non_raw_request_is_granted_in_its_own_mode_only(env: dict[str, Any], mode: str) -> None:
    req = requested(env, mode=mode)
    for other in {"raw", "masked", "aggregate", "verify"} - {mode}:
        err(
            decide(env, req["id"], {"approve": True, "conditions": {"mode": other}}),
            422,
            "conditions_wider_than_request",
        )
    untouched(env, req)
    r = decide(env, req["id"], {"approve": True, "conditions": {"mode": mode}})
    assert r.status_code == 200 and r.json()["scope"]["mode"] == mode, r.text


# -- 4, 5. what a request may ask for -------------------------------------------------------------------
def test_request_row_filter_and_window_are_checked(env: dict[str, Any]) -> None:
    for code in ("L2", "AUTO"):  # an unconditional resource would be granted at once: nothing may be
        err(request(env, code, row_filter={"v": {"$gt": 1}}), 422, "invalid_row_filter")
        err(request(env, code, row_filter={"v": {"gt": [1]}}), 422, "invalid_row_filter")
        err(request(env, code, row_filter={"v": "1", "salary": {"gt": 1}}), 422, "unknown_field")
        err(request(env, code, row_filter=["v"]), 422, "validation_failed")
        err(request(env, code, fields=["district", "salary"]), 422, "unknown_field")
        err(request(env, code, valid_until=(NOW - timedelta(seconds=1)).isoformat()), 422, "window_in_past")
        err(
            request(
                env,
                code,
                valid_from=(NOW - timedelta(days=30)).isoformat(),
                valid_until=(NOW - timedelta(days=1)).isoformat(),
            ),
            422,
            "window_in_past",
        )
        err(request(env, code, valid_until=START.isoformat()), 422, "invalid_window")
        err(request(env, code, valid_from=(END + timedelta(days=1)).isoformat()), 422, "invalid_window")
    assert env["client"].get("/v1/share-requests", headers=env["requester"]).json() == []
    assert log_kinds(env) == []
    # a window that has already begun, a filter on a field not requested (the provider's data decides
    # which rows; the grantee cannot vary it), and the auto grant's data is served
    r = request(env, "AUTO", fields=["district"], row_filter={"v": {"gte": 2}})
    assert r.status_code == 201 and r.json()["status"] == "granted", r.text
    data = env["client"].get(
        f"/v1/data/{env['AUTO']}", params={"grant": r.json()["grant_id"]}, headers=env["requester"]
    )
    assert data.status_code == 200 and data.json()["rows"] == [
        {"district": "南明区"},
        {"district": "云岩区"},
    ], data.text


# -- 6. strict JSON types -------------------------------------------------------------------------------
def test_booleans_and_numbers_are_strict(env: dict[str, Any]) -> None:
    req = requested(env)
    for approve in ("yes", "true", 1, 0, None):
        err(decide(env, req["id"], {"approve": approve, "reason": "x"}), 422, "validation_failed")
    for bad in ("5", True, 5.5):
        err(
            decide(env, req["id"], {"approve": True, "conditions": {"max_accesses": bad}}),
            422,
            "validation_failed",
        )
        err(
            decide(env, req["id"], {"approve": True, "conditions": {"max_records": bad}}),
            422,
            "validation_failed",
        )
        err(request(env, max_records=bad), 422, "validation_failed")
        err(request(env, max_accesses=bad), 422, "validation_failed")
    err(
        decide(env, req["id"], {"approve": True, "conditions": {"max_accesses": 0}}), 422, "validation_failed"
    )
    err(decide(env, req["id"], {"approve": True, "conditions": {"fields": []}}), 422, "validation_failed")
    err(decide(env, req["id"], {"approve": True, "conditions": {"bogus": 1}}), 422, "validation_failed")
    naive = {"valid_until": (END - timedelta(days=1)).replace(tzinfo=None).isoformat()}
    err(decide(env, req["id"], {"approve": True, "conditions": naive}), 422, "invalid_window")
    untouched(env, req)
    r = decide(env, req["id"], {"approve": False, "reason": "不符合"})
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text


# -- client mode ----------------------------------------------------------------------------------------
def _sign(env: dict[str, Any], typed_data: dict[str, Any]) -> str:
    ledger: Ledger = env["ledger"]
    provider = ledger.parties.get(env["provider_id"])
    signature: str = (
        ledger.parties.signer(provider).sign_typed_data(full_message=typed_data).signature.to_0x_hex()
    )
    return signature


def test_a_client_mode_decision_keeps_its_terms_apart_until_signed(env: dict[str, Any]) -> None:
    c = env["client"]
    req = requested(env)
    r = decide(
        env,
        req["id"],
        {"approve": True, "reason": "同意", "conditions": {"max_accesses": 7}, "signing": "client"},
    )
    assert r.status_code == 200 and r.json()["status"] == "awaiting_decision_signature", r.text
    draft = r.json()
    assert draft["scope"] == req["scope"] and draft["reason"] is None  # not the request's until confirmed
    assert draft["typed_data"]["message"]["maxAccesses"] == 7
    assert c.get(f"/v1/share-requests/{req['id']}", headers=env["requester"]).json()["scope"] == req["scope"]
    # a refused replacement changes nothing; a valid one replaces the draft
    err(
        decide(env, req["id"], {"approve": True, "conditions": {"max_accesses": 99}}),
        422,
        "conditions_wider_than_request",
    )
    r = decide(
        env,
        req["id"],
        {"approve": True, "reason": "再议", "conditions": {"max_accesses": 6}, "signing": "client"},
    )
    assert r.status_code == 200 and r.json()["typed_data"]["message"]["maxAccesses"] == 6, r.text
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/decision/signature",
            json={"signature": _sign(env, draft["typed_data"])},
            headers=env["provider"],
        ),
        422,
        "wrong_signer",
    )
    signed = c.post(
        f"/v1/share-requests/{req['id']}/decision/signature",
        json={"signature": _sign(env, r.json()["typed_data"])},
        headers=env["provider"],
    )
    assert signed.status_code == 200 and signed.json()["status"] == "granted", signed.text
    assert signed.json()["scope"] == {**req["scope"], "max_accesses": 6} and signed.json()["reason"] == "再议"
    assert signed.json()["typed_data"] is None
    consistent_grant(env, signed.json()["grant_id"])
    err(decide(env, req["id"], {"approve": False, "reason": "晚了"}), 409, "not_pending")


def test_a_failed_client_mode_relay_leaves_the_request_as_requested(env: dict[str, Any]) -> None:
    c = env["client"]
    req = requested(env)
    r = decide(env, req["id"], {"approve": True, "conditions": {"fields": ["district"]}, "signing": "client"})
    assert r.status_code == 200 and r.json()["status"] == "awaiting_decision_signature", r.text
    closed = {
        "code": "GY-DC-L2",
        "name": "L2",
        "format": "table",
        "share_type": "none",
        "open_type": "none",
        "level": 2,
        "update_frequency": "monthly",
        "legal_basis": "停止共享",
        "fields": FIELDS,
    }
    assert c.put(f"/v1/resources/{env['L2']}", json=closed, headers=env["provider"]).status_code == 200
    path = f"/v1/share-requests/{req['id']}/decision/signature"
    err(
        c.post(path, json={"signature": _sign(env, r.json()["typed_data"])}, headers=env["provider"]),
        409,
        "not_shareable",
    )
    now = current(env, req["id"])
    assert (
        now["status"] == "awaiting_decision_signature"
        and now["scope"] == req["scope"]
        and now["reason"] is None
    )
    # not stuck: the provider answers with a rejection instead
    r = decide(env, req["id"], {"approve": False, "reason": "该资源已调整为不予共享"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["scope"] == req["scope"], (
        r.text
    )
    err(
        c.post(path, json={"signature": _sign(env, now["typed_data"])}, headers=env["provider"]),
        409,
        "not_awaiting_signature",
    )


def test_a_decision_signed_after_its_window_ended_is_refused(env: dict[str, Any]) -> None:
    req = requested(env)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    r = decide(
        env,
        req["id"],
        {"approve": True, "conditions": {"valid_until": soon.isoformat()}, "signing": "client"},
    )
    assert r.status_code == 200 and r.json()["status"] == "awaiting_decision_signature", r.text
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
    err(
        env["client"].post(
            f"/v1/share-requests/{req['id']}/decision/signature",
            json={"signature": _sign(env, r.json()["typed_data"])},
            headers=env["provider"],
        ),
        422,
        "window_in_past",
    )
    assert current(env, req["id"])["scope"] == req["scope"]

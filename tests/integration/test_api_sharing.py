"""Share workflow through the real app and the real chain: requests (custodial and client-signed),
decisions within the working-day deadline, co-signature for level >= 3, grants, revocation — and the
log holds every state change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.store.models import ShareRequest
from ledger.workdays import respond_by

BOOT = {"Authorization": "Bearer st_boot-share"}
FROM = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-share", anchor_loop=False
    )
    app = create_app(settings)
    own_key = Account.create()
    with TestClient(app) as client:
        out: dict[str, Any] = {"client": client, "ledger": app.state.ledger, "own_key": own_key}
        for n, (name, kind, extra) in enumerate(
            [
                ("minzheng", "department", {}),
                ("renshe", "department", {}),
                ("shulian", "enterprise", {}),
                ("wallet", "department", {"address": own_key.address}),
            ]
        ):
            r = client.post(
                "/v1/parties",
                json={"kind": kind, "name": name, "uscc": make_uscc(400 + n), **extra},
                headers=BOOT,
            )
            assert r.status_code == 201, r.text
            out[name] = {"Authorization": f"Bearer {r.json()['token']}", "id": r.json()["id"]}
        for code, share_type, level in (
            ("GY-MZ-001", "conditional", 2),
            ("GY-MZ-002", "unconditional", 1),
            ("GY-MZ-003", "conditional", 3),
            ("GY-MZ-004", "none", 4),
        ):
            body = {
                "code": code,
                "name": code,
                "format": "table",
                "share_type": share_type,
                "open_type": "none",
                "level": level,
                "update_frequency": "monthly",
                "legal_basis": "《社会救助暂行办法》",
                "fields": [{"name": "name", "sensitive": True, "masking": "name"}, {"name": "district"}],
            }
            r = client.post("/v1/resources", json=body, headers=auth(out, "minzheng"))
            assert r.status_code == 201, r.text
            out[code] = r.json()["id"]
        yield out


def auth(env: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": env[who]["Authorization"]}


def request_body(env: dict[str, Any], code: str, **over: Any) -> dict[str, Any]:
    body = {
        "resource_id": env[code],
        "purpose": {"code": "employment_service", "text": "就业困难人员认定"},
        "legal_basis": "《就业促进法》第五十二条",
        "scope": {
            "fields": ["district", "name"],
            "valid_from": FROM.isoformat(),
            "valid_until": (FROM + timedelta(days=365)).isoformat(),
            "mode": "masked",
            "max_records": 500,
            "max_accesses": 50,
        },
    }
    return {**body, **over}


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.json()


def log_kinds(env: dict[str, Any]) -> list[str]:
    ledger: Ledger = env["ledger"]
    return [e.kind for e in ledger.log.log.entries(0, 1000)]


def test_conditional_request_decision_grant_revoke(env: dict[str, Any]) -> None:
    c = env["client"]
    r = c.post("/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe"))
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["status"] == "pending" and req["request_tx"].startswith("0x") and req["typed_data"] is None
    assert req["respond_by"] == respond_by(datetime.fromisoformat(req["applied_on"]).date()).isoformat()
    pending = c.get("/v1/share-requests?status=pending", headers=auth(env, "minzheng")).json()
    assert [p["id"] for p in pending] == [req["id"]]
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/decision", json={"approve": True}, headers=auth(env, "renshe")
        ),
        403,
        "not_provider",
    )
    r = c.post(
        f"/v1/share-requests/{req['id']}/decision",
        json={"approve": True, "reason": "符合履职需要"},
        headers=auth(env, "minzheng"),
    )
    assert r.status_code == 200, r.text
    decided = r.json()
    assert (
        decided["status"] == "granted" and decided["late"] is False and decided["grant_id"].startswith("0x")
    )
    grant = c.get(f"/v1/grants/{decided['grant_id']}", headers=auth(env, "renshe")).json()
    assert (
        grant["status"] == "active"
        and grant["max_accesses"] == 50
        and grant["grantee"] == env["renshe"]["id"]
    )
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/decision", json={"approve": True}, headers=auth(env, "minzheng")
        ),
        409,
        "not_pending",
    )
    r = c.post(
        f"/v1/grants/{decided['grant_id']}/revoke", json={"reason": "用途变更"}, headers=auth(env, "minzheng")
    )
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    err(
        c.post(f"/v1/grants/{decided['grant_id']}/revoke", json={"reason": "again"}, headers=BOOT),
        409,
        "not_active",
    )
    assert log_kinds(env) == ["request", "decision", "grant", "revoke"]


def test_unconditional_is_granted_in_the_same_transaction(env: dict[str, Any]) -> None:
    r = env["client"].post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-002"), headers=auth(env, "renshe")
    )
    assert r.status_code == 201 and r.json()["status"] == "granted" and r.json()["grant_id"]
    assert r.json()["decision_tx"] is None
    assert log_kinds(env) == ["request", "grant"]


def test_level_3_needs_the_registrar_cosignature(env: dict[str, Any]) -> None:
    c = env["client"]
    req = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-003"), headers=auth(env, "renshe")
    ).json()
    r = c.post(
        f"/v1/share-requests/{req['id']}/decision", json={"approve": True}, headers=auth(env, "minzheng")
    )
    assert r.json()["status"] == "awaiting_cosign" and r.json()["grant_id"] is None
    err(c.post(f"/v1/share-requests/{req['id']}/cosign", headers=auth(env, "minzheng")), 403, "not_registrar")
    r = c.post(f"/v1/share-requests/{req['id']}/cosign", headers=BOOT)
    assert r.status_code == 200 and r.json()["status"] == "granted" and len(r.json()["cosign_txs"]) == 1
    err(c.post(f"/v1/share-requests/{req['id']}/cosign", headers=BOOT), 409, "not_awaiting_cosign")


def test_rejection_needs_a_reason(env: dict[str, Any]) -> None:
    c = env["client"]
    req = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe")
    ).json()
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/decision", json={"approve": False}, headers=auth(env, "minzheng")
        ),
        422,
        "reason_required",
    )
    r = c.post(
        f"/v1/share-requests/{req['id']}/decision",
        json={"approve": False, "reason": "超出履职范围"},
        headers=auth(env, "minzheng"),
    )
    assert r.json()["status"] == "rejected" and r.json()["reason"] == "超出履职范围"


def test_client_mode_signed_with_eth_account_only(env: dict[str, Any]) -> None:
    c = env["client"]
    r = c.post(
        "/v1/share-requests",
        json=request_body(env, "GY-MZ-001", signing="client"),
        headers=auth(env, "wallet"),
    )
    assert r.status_code == 201 and r.json()["status"] == "awaiting_signature"
    req = r.json()
    typed = req["typed_data"]
    assert typed["domain"]["chainId"] == env["ledger"].chain.chain_id
    assert typed["domain"]["verifyingContract"] == env["ledger"].contracts["ShareLedger"].address
    stranger = Account.create().sign_typed_data(full_message=typed).signature.to_0x_hex()
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/signature",
            json={"signature": stranger},
            headers=auth(env, "wallet"),
        ),
        422,
        "wrong_signer",
    )
    signature = env["own_key"].sign_typed_data(full_message=typed).signature.to_0x_hex()
    r = c.post(
        f"/v1/share-requests/{req['id']}/signature",
        json={"signature": signature},
        headers=auth(env, "wallet"),
    )
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/signature",
            json={"signature": signature},
            headers=auth(env, "wallet"),
        ),
        409,
        "not_awaiting_signature",
    )
    # a custodial signature is refused for a party that keeps its own key
    err(
        c.post("/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "wallet")),
        409,
        "client_custody",
    )


def test_request_rejections(env: dict[str, Any]) -> None:
    c = env["client"]
    err(
        c.post("/v1/share-requests", json=request_body(env, "GY-MZ-004"), headers=auth(env, "renshe")),
        409,
        "not_shareable",
    )
    err(
        c.post("/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "shulian")),
        403,
        "forbidden_role",
    )
    err(
        c.post("/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "minzheng")),
        409,
        "own_resource",
    )
    bad_purpose = request_body(env, "GY-MZ-001", purpose={"code": "curiosity", "text": ""})
    err(c.post("/v1/share-requests", json=bad_purpose, headers=auth(env, "renshe")), 422, "unknown_purpose")
    body = request_body(env, "GY-MZ-001")
    body["scope"]["fields"] = ["salary"]
    err(c.post("/v1/share-requests", json=body, headers=auth(env, "renshe")), 422, "unknown_field")
    body = request_body(env, "GY-MZ-001")
    body["scope"]["valid_until"] = body["scope"]["valid_from"]
    err(c.post("/v1/share-requests", json=body, headers=auth(env, "renshe")), 422, "invalid_window")
    err(
        c.post(
            "/v1/share-requests",
            json={**request_body(env, "GY-MZ-001"), "resource_id": "nope"},
            headers=auth(env, "renshe"),
        ),
        404,
        "resource_not_found",
    )
    err(c.get("/v1/share-requests?status=stuck", headers=auth(env, "renshe")), 422, "invalid_status")
    err(c.get("/v1/share-requests/nope", headers=auth(env, "renshe")), 404, "request_not_found")


def test_overdue_and_late(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    req = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe")
    ).json()
    assert c.get("/v1/share-requests?status=overdue", headers=BOOT).json() == []
    with ledger.store.session() as session:  # the application was filed 3 weeks ago
        session.execute(
            update(ShareRequest)
            .where(ShareRequest.id == req["id"])
            .values(respond_by=datetime.now(UTC).date() - timedelta(days=5))
        )
    overdue = c.get("/v1/share-requests?status=overdue", headers=auth(env, "minzheng")).json()
    assert [o["id"] for o in overdue] == [req["id"]] and overdue[0]["overdue"] is True
    assert c.get("/v1/share-requests?status=overdue", headers=auth(env, "shulian")).json() == []  # own scope
    r = c.post(
        f"/v1/share-requests/{req['id']}/decision", json={"approve": True}, headers=auth(env, "minzheng")
    )
    assert r.json()["status"] == "granted" and r.json()["late"] is True


def test_dispute_answered_with_a_correction(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    r = c.post(
        "/v1/disputes",
        json={"resource_id": env["GY-MZ-001"], "reason": "街道名称与民政系统不一致"},
        headers=auth(env, "renshe"),
    )
    assert r.status_code == 201, r.text
    dispute = r.json()
    assert dispute["status"] == "open" and dispute["version"] == 1 and dispute["file_tx"].startswith("0x")
    assert [d["id"] for d in c.get("/v1/disputes?status=open", headers=auth(env, "minzheng")).json()] == [
        dispute["id"]
    ]
    err(
        c.post(f"/v1/disputes/{dispute['id']}/answer", json={"answer": "x"}, headers=auth(env, "renshe")),
        403,
        "not_provider",
    )
    correction = {
        "code": "GY-MZ-001",
        "name": "GY-MZ-001",
        "format": "table",
        "share_type": "conditional",
        "open_type": "none",
        "level": 2,
        "update_frequency": "monthly",
        "legal_basis": "更正后",
        "fields": [{"name": "name", "sensitive": True, "masking": "name"}, {"name": "district"}],
    }
    r = c.post(
        f"/v1/disputes/{dispute['id']}/answer",
        json={"answer": "已更正街道名称", "correction": correction},
        headers=auth(env, "minzheng"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "answered" and r.json()["corrected"] is True and r.json()["new_version"] == 2
    resource = c.get(f"/v1/resources/{env['GY-MZ-001']}", headers=auth(env, "renshe")).json()
    assert resource["version"] == 2 and resource["metadata"]["legal_basis"] == "更正后"
    share = ledger.contracts["ShareLedger"]
    from ledger.sharing.catalog import resource_id_bytes32

    on_chain = ledger.chain.call(share.functions.metadataHashAt(resource_id_bytes32(env["GY-MZ-001"]), 2))
    assert "0x" + bytes(on_chain).hex() == resource["metadata_hash"]
    err(
        c.post(
            f"/v1/disputes/{dispute['id']}/answer", json={"answer": "again"}, headers=auth(env, "minzheng")
        ),
        409,
        "dispute_not_open",
    )
    assert log_kinds(env).count("dispute") == 2


def test_dispute_rejections(env: dict[str, Any]) -> None:
    c = env["client"]
    err(
        c.post(
            "/v1/disputes",
            json={"resource_id": env["GY-MZ-001"], "reason": "x"},
            headers=auth(env, "shulian"),
        ),
        403,
        "forbidden_role",
    )
    err(
        c.post(
            "/v1/disputes",
            json={"resource_id": env["GY-MZ-001"], "reason": "x"},
            headers=auth(env, "minzheng"),
        ),
        409,
        "own_resource",
    )
    err(
        c.post(
            "/v1/disputes",
            json={"resource_id": env["GY-MZ-001"], "reason": "x", "version": 9},
            headers=auth(env, "renshe"),
        ),
        422,
        "unknown_version",
    )
    err(c.get("/v1/disputes?status=weird", headers=auth(env, "renshe")), 422, "invalid_status")
    err(c.get("/v1/disputes/nope", headers=auth(env, "renshe")), 404, "dispute_not_found")


def test_api_refuses_replayed_and_cross_chain_client_signatures(env: dict[str, Any]) -> None:
    c, key = env["client"], env["own_key"]
    first = c.post(
        "/v1/share-requests",
        json=request_body(env, "GY-MZ-001", signing="client"),
        headers=auth(env, "wallet"),
    ).json()
    second = c.post(
        "/v1/share-requests",
        json=request_body(env, "GY-MZ-001", signing="client"),
        headers=auth(env, "wallet"),
    ).json()
    signature = key.sign_typed_data(full_message=first["typed_data"]).signature.to_0x_hex()
    # the signature of one request replayed on another is not the requester's consent to it
    err(
        c.post(
            f"/v1/share-requests/{second['id']}/signature",
            json={"signature": signature},
            headers=auth(env, "wallet"),
        ),
        422,
        "wrong_signer",
    )
    # the same message signed for another chain id does not verify either
    other_chain = {**second["typed_data"], "domain": {**second["typed_data"]["domain"], "chainId": 1}}
    cross = key.sign_typed_data(full_message=other_chain).signature.to_0x_hex()
    err(
        c.post(
            f"/v1/share-requests/{second['id']}/signature",
            json={"signature": cross},
            headers=auth(env, "wallet"),
        ),
        422,
        "wrong_signer",
    )
    # the first request, signed properly, goes through; its nonce is then spent, so the second
    # request's typed data (issued with the same nonce) is stale: refused with a clear 409, and
    # re-issued with the fresh nonce for the client to sign again
    assert (
        c.post(
            f"/v1/share-requests/{first['id']}/signature",
            json={"signature": signature},
            headers=auth(env, "wallet"),
        ).json()["status"]
        == "pending"
    )
    stale = key.sign_typed_data(full_message=second["typed_data"]).signature.to_0x_hex()
    r = c.post(
        f"/v1/share-requests/{second['id']}/signature",
        json={"signature": stale},
        headers=auth(env, "wallet"),
    )
    err(r, 409, "stale_nonce")
    assert "nonce is now 1" in r.json()["error"]["message"]
    fresh = c.get(f"/v1/share-requests/{second['id']}", headers=auth(env, "wallet")).json()
    assert fresh["status"] == "awaiting_signature" and fresh["sign_at"].endswith("/signature")
    assert (second["typed_data"]["message"]["nonce"], fresh["typed_data"]["message"]["nonce"]) == (0, 1)
    assert {**fresh["typed_data"]["message"], "nonce": 0} == second["typed_data"]["message"]
    # the replayed (stale) signature stays refused; the fresh one goes through
    err(
        c.post(
            f"/v1/share-requests/{second['id']}/signature",
            json={"signature": stale},
            headers=auth(env, "wallet"),
        ),
        422,
        "wrong_signer",
    )
    signed = key.sign_typed_data(full_message=fresh["typed_data"]).signature.to_0x_hex()
    r = c.post(
        f"/v1/share-requests/{second['id']}/signature",
        json={"signature": signed},
        headers=auth(env, "wallet"),
    )
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text


def test_grant_expires_by_time(env: dict[str, Any]) -> None:
    import time

    c = env["client"]
    now = datetime.now(UTC).replace(microsecond=0)
    body = request_body(env, "GY-MZ-001")
    # conditions only narrow the request: a raw request whose window began two days ago
    body["scope"].update(mode="raw", valid_from=(now - timedelta(days=2)).isoformat())
    req = c.post("/v1/share-requests", json=body, headers=auth(env, "renshe")).json()
    conditions = {
        "fields": ["district"],
        "valid_from": (now - timedelta(days=1)).isoformat(),
        "valid_until": (now + timedelta(seconds=2)).isoformat(),
        "mode": "aggregate",
        "max_accesses": 3,
    }
    r = c.post(
        f"/v1/share-requests/{req['id']}/decision",
        json={"approve": True, "conditions": conditions},
        headers=auth(env, "minzheng"),
    )
    assert r.json()["status"] == "granted" and r.json()["scope"]["mode"] == "aggregate"
    grant_id = r.json()["grant_id"]
    assert c.get(f"/v1/grants/{grant_id}", headers=auth(env, "renshe")).json()["status"] == "active"
    r = c.get(f"/v1/grants/{grant_id}/authorization", headers=auth(env, "renshe"))
    assert r.status_code == 200 and r.json()["authorized"] is True, r.text
    time.sleep(3)
    assert c.get(f"/v1/grants/{grant_id}", headers=auth(env, "renshe")).json()["status"] == "expired"
    err(c.get(f"/v1/grants/{grant_id}/authorization", headers=auth(env, "renshe")), 403, "expired")
    ledger: Ledger = env["ledger"]
    share = ledger.contracts["ShareLedger"]
    grantee = ledger.parties.get(env["renshe"]["id"]).address
    assert ledger.chain.call(
        share.functions.isAuthorized(bytes.fromhex(grant_id[2:]), grantee, int(now.timestamp()))
    )
    later = int(now.timestamp()) + 10
    assert not ledger.chain.call(share.functions.isAuthorized(bytes.fromhex(grant_id[2:]), grantee, later))


def test_level_3_with_one_of_two_cosignatures_is_not_granted(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    share = ledger.contracts["ShareLedger"]
    ledger.chain.transact(share.functions.setCosignThreshold(3, 2), ledger.funder)  # M-of-N: 2 registrars
    second = c.post(
        "/v1/parties", json={"kind": "registrar", "name": "副主任", "uscc": make_uscc(499)}, headers=BOOT
    ).json()
    req = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-003"), headers=auth(env, "renshe")
    ).json()
    c.post(f"/v1/share-requests/{req['id']}/decision", json={"approve": True}, headers=auth(env, "minzheng"))
    r = c.post(f"/v1/share-requests/{req['id']}/cosign", headers=BOOT)
    assert r.json()["status"] == "awaiting_cosign" and r.json()["grant_id"] is None, (
        "one signature is not enough"
    )
    err(c.post(f"/v1/share-requests/{req['id']}/cosign", headers=BOOT), 409, "already_cosigned")
    r = c.post(
        f"/v1/share-requests/{req['id']}/cosign", headers={"Authorization": f"Bearer {second['token']}"}
    )
    assert r.json()["status"] == "granted" and len(r.json()["cosign_txs"]) == 2


def test_authorization_names_why_a_grant_is_refused(env: dict[str, Any]) -> None:
    c = env["client"]
    req = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe")
    ).json()
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    conditions = {
        "fields": ["district"],
        "valid_from": later.isoformat(),
        "valid_until": (later + timedelta(days=30)).isoformat(),
    }
    grant_id = c.post(
        f"/v1/share-requests/{req['id']}/decision",
        json={"approve": True, "conditions": conditions},
        headers=auth(env, "minzheng"),
    ).json()["grant_id"]
    path = f"/v1/grants/{grant_id}/authorization"
    err(c.get(path, headers=auth(env, "renshe")), 403, "not_yet_valid")
    err(c.get(path, headers=auth(env, "minzheng")), 403, "not_grantee")  # the provider is not the grantee
    err(c.get(path, headers=auth(env, "shulian")), 404, "grant_not_found")
    err(c.get("/v1/grants/0x" + "00" * 32 + "/authorization", headers=BOOT), 404, "grant_not_found")
    r = c.post(f"/v1/grants/{grant_id}/revoke", json={"reason": "撤销"}, headers=BOOT)
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoked_tx"]
    err(c.get(path, headers=auth(env, "renshe")), 403, "revoked")


def _close(env: dict[str, Any], code: str, level: int) -> None:
    """The provider publishes a new version of ``code`` whose share type is none (不予共享)."""
    body = {
        "code": code,
        "name": code,
        "format": "table",
        "share_type": "none",
        "open_type": "none",
        "level": level,
        "update_frequency": "monthly",
        "legal_basis": "停止共享",
        "fields": [{"name": "name", "sensitive": True, "masking": "name"}, {"name": "district"}],
    }
    r = env["client"].put(f"/v1/resources/{env[code]}", json=body, headers=auth(env, "minzheng"))
    assert r.status_code == 200 and r.json()["version"] == 2, r.text


def test_an_approval_is_refused_once_the_resource_is_no_longer_shared(env: dict[str, Any]) -> None:
    c = env["client"]
    custodial = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe")
    ).json()
    client = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe")
    ).json()
    r = c.post(
        f"/v1/share-requests/{client['id']}/decision",
        json={"approve": True, "signing": "client"},
        headers=auth(env, "minzheng"),
    )
    assert r.json()["status"] == "awaiting_decision_signature" and r.json()["typed_data"], r.text
    _close(env, "GY-MZ-001", 2)
    r = c.post(
        f"/v1/share-requests/{custodial['id']}/decision",
        json={"approve": True},
        headers=auth(env, "minzheng"),
    )
    err(r, 409, "not_shareable")
    assert "published after this request" in r.json()["error"]["message"]
    # the approval prepared before the change cannot be signed through either (the signature would be
    # the provider's own, so this is the ledger's re-check, not a signature check)
    ledger: Ledger = env["ledger"]
    provider = ledger.parties.get(env["minzheng"]["id"])
    pending = c.get(f"/v1/share-requests/{client['id']}", headers=auth(env, "minzheng")).json()
    assert pending["status"] == "awaiting_decision_signature"
    signature = ledger.parties.signer(provider).sign_typed_data(full_message=pending["typed_data"])
    err(
        c.post(
            f"/v1/share-requests/{client['id']}/decision/signature",
            json={"signature": signature.signature.to_0x_hex()},
            headers=auth(env, "minzheng"),
        ),
        409,
        "not_shareable",
    )
    # a rejection with its reason is still the provider's answer
    r = c.post(
        f"/v1/share-requests/{custodial['id']}/decision",
        json={"approve": False, "reason": "该资源已调整为不予共享"},
        headers=auth(env, "minzheng"),
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    # and a new request is refused outright
    err(
        c.post("/v1/share-requests", json=request_body(env, "GY-MZ-001"), headers=auth(env, "renshe")),
        409,
        "not_shareable",
    )


def test_a_cosignature_is_refused_once_the_resource_is_no_longer_shared(env: dict[str, Any]) -> None:
    c = env["client"]
    req = c.post(
        "/v1/share-requests", json=request_body(env, "GY-MZ-003"), headers=auth(env, "renshe")
    ).json()
    r = c.post(
        f"/v1/share-requests/{req['id']}/decision", json={"approve": True}, headers=auth(env, "minzheng")
    )
    assert r.json()["status"] == "awaiting_cosign"
    _close(env, "GY-MZ-003", 3)
    err(c.post(f"/v1/share-requests/{req['id']}/cosign", headers=BOOT), 409, "not_shareable")
    r = c.get(f"/v1/share-requests/{req['id']}", headers=BOOT)
    assert r.json()["status"] == "awaiting_cosign" and r.json()["grant_id"] is None

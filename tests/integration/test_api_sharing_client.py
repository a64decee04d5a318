"""Client-mode signing of every consent, through the real app and the real chain (SQLite and PostgreSQL).

Parties registered with their own ``address`` keep their keys: the server cannot sign for them
(409 ``client_custody``). For each step — catalog version, request, decision, co-signature,
revocation, dispute filing and answer — the response carries EIP-712 ``typed_data``, which the test
signs with nothing but ``eth_account`` (``Account.sign_typed_data(key, full_message=typed_data)``),
then POSTs to ``sign_at``. A signature whose nonce another signature of the same party spent first is
refused with 409 ``stale_nonce`` and the document is re-issued (``GET`` shows it) with the fresh nonce.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings

BOOT = {"Authorization": "Bearer st_boot-client"}
FROM = datetime.now(UTC).replace(microsecond=0)
# name -> (kind, keeps its own key)
PARTIES = {
    "provider": ("department", True),  # publishes the catalog, decides, answers disputes
    "requester": ("department", True),  # requests, files disputes
    "registrar": ("registrar", True),  # co-signs, revokes
    "custodial": ("department", False),  # a department whose key the server holds
}


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-client", anchor_loop=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        out: dict[str, Any] = {"client": client, "ledger": app.state.ledger}
        for n, (name, (kind, own_key)) in enumerate(PARTIES.items()):
            key: LocalAccount | None = Account.create() if own_key else None
            body = {"kind": kind, "name": name, "uscc": make_uscc(600 + n)}
            if key is not None:
                body["address"] = key.address
            r = client.post("/v1/parties", json=body, headers=BOOT)
            assert r.status_code == 201, r.text
            out[name] = {
                "auth": {"Authorization": f"Bearer {r.json()['token']}"},
                "id": r.json()["id"],
                "key": key,
            }
        yield out


def resource(code: str, **over: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": code,
        "format": "table",
        "fields": [{"name": "name", "sensitive": True, "masking": "name"}, {"name": "district"}],
        "share_type": "conditional",
        "open_type": "none",
        "level": 2,
        "update_frequency": "monthly",
        "legal_basis": "《社会救助暂行办法》",
    }
    return {**body, **over}


def request_body(resource_id: str) -> dict[str, Any]:
    return {
        "resource_id": resource_id,
        "purpose": {"code": "employment_service", "text": "就业困难人员认定"},
        "legal_basis": "《就业促进法》",
        "scope": {
            "fields": ["district"],
            "valid_from": FROM.isoformat(),
            "valid_until": (FROM + timedelta(days=365)).isoformat(),
            "max_accesses": 5,
        },
        "signing": "client",
    }


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.json()


def sign(key: LocalAccount, typed_data: dict[str, Any]) -> str:
    """What any client does with the JSON it was given: eth_account only, no sharetrail code."""
    encode_typed_data(full_message=typed_data)  # a well-formed EIP-712 document
    signature: str = Account.sign_typed_data(key.key, full_message=typed_data).signature.to_0x_hex()
    return signature


def post_signature(
    env: dict[str, Any], who: str, out: dict[str, Any], key: LocalAccount | None = None
) -> Any:
    """Sign ``out["typed_data"]`` as ``who`` (or with ``key``) and POST it to ``out["sign_at"]``."""
    signature = sign(key or env[who]["key"], out["typed_data"])
    return env["client"].post(out["sign_at"], json={"signature": signature}, headers=env[who]["auth"])


def publish(env: dict[str, Any], code: str, **over: Any) -> str:
    c = env["client"]
    r = c.post(
        "/v1/resources", json={**resource(code, **over), "signing": "client"}, headers=env["provider"]["auth"]
    )
    assert r.status_code == 201, r.text
    r = post_signature(env, "provider", r.json())
    assert r.status_code == 200 and r.json()["version"] == 1, r.text
    rid: str = r.json()["id"]
    return rid


def requested(env: dict[str, Any], resource_id: str) -> dict[str, Any]:
    r = env["client"].post(
        "/v1/share-requests", json=request_body(resource_id), headers=env["requester"]["auth"]
    )
    assert r.status_code == 201 and r.json()["status"] == "awaiting_signature", r.text
    r = post_signature(env, "requester", r.json())
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    out: dict[str, Any] = r.json()
    return out


def decided(env: dict[str, Any], request_id: str, *, sign_it: bool = True) -> dict[str, Any]:
    r = env["client"].post(
        f"/v1/share-requests/{request_id}/decision",
        json={"approve": True, "reason": "符合履职需要", "signing": "client"},
        headers=env["provider"]["auth"],
    )
    assert r.status_code == 200 and r.json()["status"] == "awaiting_decision_signature", r.text
    if not sign_it:
        out: dict[str, Any] = r.json()
        return out
    r = post_signature(env, "provider", r.json())
    assert r.status_code == 200, r.text
    signed: dict[str, Any] = r.json()
    return signed


def log_kinds(env: dict[str, Any]) -> list[str]:
    ledger: Ledger = env["ledger"]
    return [e.kind for e in ledger.log.log.entries(0, 1000)]


def test_catalog_versions_signed_by_the_provider_itself(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    provider = env["provider"]
    err(c.post("/v1/resources", json=resource("GY-C-1"), headers=provider["auth"]), 409, "client_custody")
    r = c.post("/v1/resources", json={**resource("GY-C-1"), "signing": "client"}, headers=provider["auth"])
    assert r.status_code == 201, r.text
    draft = r.json()
    assert (draft["version"], draft["published"], draft["pending_version"], draft["tx_hash"]) == (
        0,
        False,
        1,
        None,
    )
    typed = draft["typed_data"]
    assert (
        typed["primaryType"] == "ResourceVersion"
        and draft["sign_at"] == f"/v1/resources/{draft['id']}/signature"
    )
    share = ledger.contracts["ShareLedger"]
    assert typed["domain"] == {
        "name": "sharetrail",
        "version": "1",
        "chainId": ledger.chain.chain_id,
        "verifyingContract": share.address,
    }
    assert typed["message"]["metadataHash"] == draft["metadata_hash"] and typed["message"]["version"] == 1
    # the draft reserves the code (一数一源) but is not in the catalog, and cannot be requested
    err(
        c.post("/v1/resources", json=resource("GY-C-1"), headers=env["custodial"]["auth"]),
        409,
        "resource_code_taken",
    )
    assert c.get("/v1/resources", headers=env["requester"]["auth"]).json() == []
    other = c.get(f"/v1/resources/{draft['id']}", headers=env["requester"]["auth"]).json()
    assert other["typed_data"] is None and other["published"] is False
    r = c.post("/v1/share-requests", json=request_body(draft["id"]), headers=env["requester"]["auth"])
    err(r, 409, "not_published")
    err(
        c.put(
            f"/v1/resources/{draft['id']}",
            json={**resource("GY-C-1"), "signing": "client"},
            headers=provider["auth"],
        ),
        409,
        "not_published",
    )

    # wrong key, another chain id, another contract: each recovers someone else
    err(post_signature(env, "provider", draft, key=env["requester"]["key"]), 422, "wrong_signer")
    for domain in (
        {"chainId": ledger.chain.chain_id + 1},
        {"verifyingContract": ledger.contracts["Anchor"].address},
    ):
        forged = {**draft, "typed_data": {**typed, "domain": {**typed["domain"], **domain}}}
        r = c.post(
            draft["sign_at"],
            json={"signature": sign(provider["key"], forged["typed_data"])},
            headers=provider["auth"],
        )
        err(r, 422, "wrong_signer")
    err(post_signature(env, "requester", draft), 403, "not_provider")
    bad = c.post(draft["sign_at"], json={"signature": "0x" + "00" * 65}, headers=provider["auth"])
    err(bad, 422, "invalid_signature")

    r = post_signature(env, "provider", draft)
    assert r.status_code == 200, r.text
    published = r.json()
    assert (
        published["version"],
        published["published"],
        published["typed_data"],
        published["pending_version"],
    ) == (
        1,
        True,
        None,
        None,
    )
    rid = bytes(16) + bytes.fromhex(draft["id"])
    assert (
        "0x" + bytes(ledger.chain.call(share.functions.metadataHashAt(rid, 1))).hex()
        == draft["metadata_hash"]
    )
    assert ledger.chain.call(share.functions.resourceOf(rid))[0] == provider["key"].address
    err(post_signature(env, "provider", draft), 409, "not_awaiting_signature")
    assert [x["id"] for x in c.get("/v1/resources", headers=env["requester"]["auth"]).json()] == [draft["id"]]

    # a new version: held with its typed data until signed; the catalog keeps showing version 1
    r = c.put(
        f"/v1/resources/{draft['id']}",
        json={**resource("GY-C-1", level=3), "signing": "client"},
        headers=provider["auth"],
    )
    assert r.status_code == 200, r.text
    held = r.json()
    assert (held["version"], held["pending_version"], held["metadata"]["level"]) == (1, 2, 2)
    assert held["typed_data"]["message"]["version"] == 2 and held["typed_data"]["message"]["level"] == 3
    err(
        c.put(f"/v1/resources/{draft['id']}", json=resource("GY-C-1", level=3), headers=provider["auth"]),
        409,
        "client_custody",
    )
    r = post_signature(env, "provider", held)
    assert r.status_code == 200 and (r.json()["version"], r.json()["metadata"]["level"]) == (2, 3), r.text
    versions = c.get(f"/v1/resources/{draft['id']}/versions", headers=env["requester"]["auth"]).json()
    assert [v["version"] for v in versions] == [1, 2]


def test_request_decision_and_cosignature_signed_by_each_party(env: dict[str, Any]) -> None:
    c = env["client"]
    resource_id = publish(env, "GY-C-3", level=3)
    req = requested(env, resource_id)
    # the provider sees the pending request without anyone's typed data to sign
    seen = c.get(f"/v1/share-requests/{req['id']}", headers=env["provider"]["auth"]).json()
    assert seen["typed_data"] is None and seen["sign_at"] is None
    err(
        c.post(
            f"/v1/share-requests/{req['id']}/decision",
            json={"approve": True},
            headers=env["provider"]["auth"],
        ),
        409,
        "client_custody",
    )
    draft = decided(env, req["id"], sign_it=False)
    assert draft["typed_data"]["primaryType"] == "Decision"
    assert draft["sign_at"] == f"/v1/share-requests/{req['id']}/decision/signature"
    err(post_signature(env, "provider", draft, key=env["registrar"]["key"]), 422, "wrong_signer")
    err(post_signature(env, "requester", draft), 403, "not_provider")
    r = post_signature(env, "provider", draft)
    assert (
        r.status_code == 200 and r.json()["status"] == "awaiting_cosign" and r.json()["grant_id"] is None
    ), r.text

    registrar = env["registrar"]
    path = f"/v1/share-requests/{req['id']}/cosign"
    err(c.post(path, headers=registrar["auth"]), 409, "client_custody")
    err(
        c.post(f"{path}/signature", json={"signature": "0x" + "11" * 65}, headers=registrar["auth"]),
        409,
        "not_awaiting_signature",
    )
    r = c.post(path, json={"signing": "client"}, headers=registrar["auth"])
    assert r.status_code == 200 and r.json()["status"] == "awaiting_cosign", r.text
    cosign = r.json()
    assert cosign["typed_data"]["primaryType"] == "Cosign" and cosign["sign_at"] == f"{path}/signature"
    # the co-signature endorses exactly the decision the provider signed
    ledger: Ledger = env["ledger"]
    share = ledger.contracts["ShareLedger"]
    record = ledger.chain.call(share.functions.requestOf(bytes(16) + bytes.fromhex(req["id"])))
    assert cosign["typed_data"]["message"]["decisionHash"] == "0x" + bytes(record[8]).hex()
    # only the registrar who asked sees its document
    assert c.get(f"/v1/share-requests/{req['id']}", headers=BOOT).json()["typed_data"] is None
    assert (
        c.get(f"/v1/share-requests/{req['id']}", headers=registrar["auth"]).json()["typed_data"]
        == cosign["typed_data"]
    )
    err(
        c.post(
            f"{path}/signature",
            json={"signature": sign(registrar["key"], cosign["typed_data"])},
            headers=BOOT,
        ),
        409,
        "not_awaiting_signature",
    )
    err(post_signature(env, "registrar", cosign, key=env["provider"]["key"]), 422, "wrong_signer")
    r = post_signature(env, "registrar", cosign)
    assert r.status_code == 200 and r.json()["status"] == "granted" and r.json()["grant_id"], r.text
    assert len(r.json()["cosign_txs"]) == 1
    err(post_signature(env, "registrar", cosign), 409, "not_awaiting_cosign")
    assert log_kinds(env) == ["request", "decision", "grant"]


def test_a_grant_revoked_by_the_provider_itself(env: dict[str, Any]) -> None:
    c = env["client"]
    req = requested(env, publish(env, "GY-C-R"))
    grant_id = decided(env, req["id"])["grant_id"]
    assert grant_id
    path = f"/v1/grants/{grant_id}/revoke"
    err(c.post(path, json={"reason": "用途变更"}, headers=env["provider"]["auth"]), 409, "client_custody")
    err(
        c.post(path, json={"reason": "x", "signing": "client"}, headers=env["requester"]["auth"]),
        403,
        "not_authorized_to_revoke",
    )
    r = c.post(path, json={"reason": "用途变更", "signing": "client"}, headers=env["provider"]["auth"])
    assert r.status_code == 200, r.text
    draft = r.json()
    assert draft["status"] == "active" and draft["typed_data"]["primaryType"] == "Revocation"
    assert draft["sign_at"] == f"{path}/signature"
    assert c.get(f"/v1/grants/{grant_id}", headers=env["requester"]["auth"]).json()["typed_data"] is None
    assert (
        c.get(f"/v1/grants/{grant_id}", headers=env["provider"]["auth"]).json()["typed_data"]
        == draft["typed_data"]
    )
    assert c.get(f"/v1/grants/{grant_id}/authorization", headers=env["requester"]["auth"]).status_code == 200
    err(post_signature(env, "provider", draft, key=env["requester"]["key"]), 422, "wrong_signer")
    err(post_signature(env, "requester", draft), 403, "not_authorized_to_revoke")  # the role comes first
    err(
        c.post(
            f"{path}/signature",
            json={"signature": sign(env["registrar"]["key"], draft["typed_data"])},
            headers=env["registrar"]["auth"],
        ),
        409,
        "not_awaiting_signature",  # a registrar may revoke, but was given no document to sign
    )
    r = post_signature(env, "provider", draft)
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["typed_data"] is None, r.text
    err(post_signature(env, "provider", draft), 409, "not_awaiting_signature")
    err(
        c.post(path, json={"reason": "again", "signing": "client"}, headers=env["provider"]["auth"]),
        409,
        "not_active",
    )
    err(c.get(f"/v1/grants/{grant_id}/authorization", headers=env["requester"]["auth"]), 403, "revoked")
    assert log_kinds(env)[-1] == "revoke"


def test_a_dispute_filed_and_answered_with_a_correction_in_client_mode(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    resource_id = publish(env, "GY-C-D")
    body = {"resource_id": resource_id, "reason": "街道名称有误"}
    err(c.post("/v1/disputes", json=body, headers=env["requester"]["auth"]), 409, "client_custody")
    r = c.post("/v1/disputes", json={**body, "signing": "client"}, headers=env["requester"]["auth"])
    assert r.status_code == 201, r.text
    draft = r.json()
    assert (draft["status"], draft["file_tx"], draft["typed_data"]["primaryType"]) == (
        "awaiting_signature",
        None,
        "Dispute",
    )
    assert draft["sign_at"] == f"/v1/disputes/{draft['id']}/signature"
    answer = f"/v1/disputes/{draft['id']}/answer"
    # not filed until signed: the provider has nothing to answer yet, nor to sign
    assert c.get(f"/v1/disputes/{draft['id']}", headers=env["provider"]["auth"]).json()["typed_data"] is None
    err(
        c.post(answer, json={"answer": "x", "signing": "client"}, headers=env["provider"]["auth"]),
        409,
        "dispute_not_open",
    )
    err(post_signature(env, "provider", draft), 403, "not_filer")
    err(post_signature(env, "requester", draft, key=env["provider"]["key"]), 422, "wrong_signer")
    r = post_signature(env, "requester", draft)
    assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["file_tx"], r.text
    err(post_signature(env, "requester", draft), 409, "not_awaiting_signature")
    assert [d["id"] for d in c.get("/v1/disputes?status=open", headers=env["provider"]["auth"]).json()] == [
        draft["id"]
    ]

    correction = resource("GY-C-D", legal_basis="更正后")
    err(
        c.post(f"{answer}/signature", json={"signature": "0x" + "11" * 65}, headers=env["provider"]["auth"]),
        409,
        "not_awaiting_signature",
    )
    err(
        c.post(answer, json={"answer": "已更正", "correction": correction}, headers=env["provider"]["auth"]),
        409,
        "client_custody",
    )
    r = c.post(
        answer,
        json={"answer": "已更正", "correction": correction, "signing": "client"},
        headers=env["provider"]["auth"],
    )
    assert r.status_code == 200, r.text
    pending = r.json()
    assert pending["status"] == "open" and pending["answer"] is None
    assert (
        pending["typed_data"]["primaryType"] == "DisputeAnswer"
        and pending["sign_at"] == f"{answer}/signature"
    )
    assert pending["typed_data"]["message"]["corrected"] is True
    err(post_signature(env, "requester", pending), 403, "not_provider")
    err(post_signature(env, "provider", pending, key=env["requester"]["key"]), 422, "wrong_signer")
    r = post_signature(env, "provider", pending)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["corrected"], r.json()["new_version"], r.json()["answer"]) == (
        "answered",
        True,
        2,
        "已更正",
    )
    entry = c.get(f"/v1/resources/{resource_id}", headers=env["requester"]["auth"]).json()
    assert entry["version"] == 2 and entry["metadata"]["legal_basis"] == "更正后"
    share = ledger.contracts["ShareLedger"]
    on_chain = ledger.chain.call(share.functions.metadataHashAt(bytes(16) + bytes.fromhex(resource_id), 2))
    assert "0x" + bytes(on_chain).hex() == entry["metadata_hash"]
    assert log_kinds(env).count("dispute") == 2


def test_every_client_document_is_reissued_after_a_stale_nonce(env: dict[str, Any]) -> None:
    """Two documents issued to the same party carry the same nonce; once one lands, the other is
    refused with 409 stale_nonce and re-issued with the new nonce (shown by GET), which then lands."""
    c = env["client"]
    provider, requester, registrar = env["provider"], env["requester"], env["registrar"]
    rid = publish(env, "GY-C-S")
    l3 = publish(env, "GY-C-S3", level=3)

    # provider: a catalog version raced by a dispute correction (the version number moves too)
    dispute = c.post(
        "/v1/disputes",
        json={"resource_id": rid, "reason": "有误", "signing": "client"},
        headers=requester["auth"],
    ).json()
    assert post_signature(env, "requester", dispute).status_code == 200
    version = c.put(
        f"/v1/resources/{rid}",
        json={**resource("GY-C-S", level=1), "signing": "client"},
        headers=provider["auth"],
    ).json()
    answer = c.post(
        f"/v1/disputes/{dispute['id']}/answer",
        json={"answer": "已更正", "correction": resource("GY-C-S", name="更正"), "signing": "client"},
        headers=provider["auth"],
    ).json()
    assert version["typed_data"]["message"]["nonce"] == answer["typed_data"]["message"]["nonce"]
    assert post_signature(env, "provider", answer).json()["new_version"] == 2
    r = post_signature(env, "provider", version)
    err(r, 409, "stale_nonce")
    reissued = r.json()["error"].get("typed_data")
    fresh = c.get(f"/v1/resources/{rid}", headers=provider["auth"]).json()
    assert reissued is None or reissued == fresh["typed_data"]  # the error carries it when it can
    assert fresh["version"] == 2 and fresh["pending_version"] == 3
    assert fresh["typed_data"]["message"]["nonce"] == version["typed_data"]["message"]["nonce"] + 1
    assert fresh["typed_data"]["message"]["version"] == 3
    r = post_signature(env, "provider", fresh)
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["metadata"]["level"] == 1, r.text

    # requester: a dispute filing raced by a request
    filing = c.post(
        "/v1/disputes",
        json={"resource_id": l3, "reason": "有误", "signing": "client"},
        headers=requester["auth"],
    ).json()
    first = requested(env, l3)
    err(post_signature(env, "requester", filing), 409, "stale_nonce")
    fresh = c.get(f"/v1/disputes/{filing['id']}", headers=requester["auth"]).json()
    assert fresh["status"] == "awaiting_signature" and fresh["typed_data"] != filing["typed_data"]
    assert post_signature(env, "requester", fresh).json()["status"] == "open"

    # provider: a revocation raced by a decision
    second = requested(env, rid)
    grant_id = decided(env, second["id"])["grant_id"]
    third = requested(env, l3)
    revocation = c.post(
        f"/v1/grants/{grant_id}/revoke",
        json={"reason": "到期", "signing": "client"},
        headers=provider["auth"],
    ).json()
    decision = decided(env, third["id"], sign_it=False)
    assert post_signature(env, "provider", decision).json()["status"] == "awaiting_cosign"
    err(post_signature(env, "provider", revocation), 409, "stale_nonce")
    fresh = c.get(f"/v1/grants/{grant_id}", headers=provider["auth"]).json()
    assert (
        fresh["status"] == "active"
        and fresh["typed_data"]["message"]["nonce"] == revocation["typed_data"]["message"]["nonce"] + 1
    )
    assert post_signature(env, "provider", fresh).json()["status"] == "revoked"

    # provider: a decision raced by an answer to a dispute
    decision = decided(env, first["id"], sign_it=False)
    keep = c.post(
        f"/v1/disputes/{fresh_dispute(env, l3)}/answer",
        json={"answer": "数据无误", "signing": "client"},
        headers=provider["auth"],
    ).json()
    assert post_signature(env, "provider", keep).json()["corrected"] is False
    err(post_signature(env, "provider", decision), 409, "stale_nonce")
    fresh = c.get(f"/v1/share-requests/{first['id']}", headers=provider["auth"]).json()
    assert fresh["status"] == "awaiting_decision_signature" and fresh["sign_at"].endswith(
        "/decision/signature"
    )
    assert post_signature(env, "provider", fresh).json()["status"] == "awaiting_cosign"

    # registrar: a co-signature raced by another co-signature
    one = c.post(
        f"/v1/share-requests/{first['id']}/cosign", json={"signing": "client"}, headers=registrar["auth"]
    ).json()
    two = c.post(
        f"/v1/share-requests/{third['id']}/cosign", json={"signing": "client"}, headers=registrar["auth"]
    ).json()
    assert post_signature(env, "registrar", two).json()["status"] == "granted"
    err(post_signature(env, "registrar", one), 409, "stale_nonce")
    fresh = c.get(f"/v1/share-requests/{first['id']}", headers=registrar["auth"]).json()
    assert fresh["typed_data"]["message"]["nonce"] == one["typed_data"]["message"]["nonce"] + 1
    assert post_signature(env, "registrar", fresh).json()["status"] == "granted"


def fresh_dispute(env: dict[str, Any], resource_id: str) -> str:
    """A dispute filed (and signed) by the requester; its id."""
    r = env["client"].post(
        "/v1/disputes",
        json={"resource_id": resource_id, "reason": "核对", "signing": "client"},
        headers=env["requester"]["auth"],
    )
    r = post_signature(env, "requester", r.json())
    assert r.status_code == 200, r.text
    dispute_id: str = r.json()["id"]
    return dispute_id

"""Issue 6 end to end through the real app and chain: open contracts (契约式开放) signed by three
parties in both signing modes, applications (依申请开放) reviewed within the working-day deadline,
open types enforced by the gateway, the negative list (负面清单), usage declarations, and proof of
authorized use — ``sharetrail verify-bundle`` against nothing but a chain endpoint, with the
sharetrail server stopped, refusing every forgery with its exact code."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from tests.integration.test_gateway import FIELDS, people, write_csv
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401 - the fixture

BOOT = {"Authorization": "Bearer st_boot-open"}
NOW = datetime.now(UTC).replace(microsecond=0)
TERMS = "0x" + hashlib.sha256("《贵阳市政府数据开放协议》第3版".encode()).hexdigest()
SCOPE = {"fields": ["district", "insured", "monthly_base", "name"], "mode": "masked", "max_records": 50}
PARTIES = [
    ("operator", "operator"),
    ("qiye", "enterprise"),
    ("qiye2", "enterprise"),
    ("renshe", "department"),
    ("gongan", "department"),
    ("minzheng", "department"),
    ("jianguan", "regulator"),
]
RESOURCES = [  # code, provider, open type
    ("GY-C-1", "renshe", "contract"),
    ("GY-C-2", "gongan", "contract"),
    ("GY-A-1", "renshe", "on_application"),
    ("GY-N-1", "renshe", "none"),
    ("GY-O-1", "renshe", "open"),
]


def _setup(client: TestClient, settings: Settings, ledger: Ledger) -> dict[str, Any]:
    out: dict[str, Any] = {"client": client, "ledger": ledger, "settings": settings, "registrar": BOOT}
    source = settings.data_dir / "sources" / "people.csv"
    write_csv(source, people())
    for n, (name, kind) in enumerate(PARTIES):
        r = client.post(
            "/v1/parties", json={"kind": kind, "name": name, "uscc": make_uscc(800 + n)}, headers=BOOT
        )
        assert r.status_code == 201, r.text
        out[name] = {"Authorization": f"Bearer {r.json()['token']}"}
        out[name + "_id"] = r.json()["id"]
    for code, provider, open_type in RESOURCES:
        body = {
            "code": code,
            "name": "社会保险参保信息",
            "format": "table",
            "share_type": "conditional",
            "open_type": open_type,
            "level": 2,
            "update_frequency": "monthly",
            "legal_basis": "《社会保险法》",
            "fields": FIELDS,
        }
        r = client.post("/v1/resources", json=body, headers=out[provider])
        assert r.status_code == 201, r.text
        out[code] = r.json()["id"]
        r = client.put(
            f"/v1/resources/{out[code]}/source",
            json={"kind": "csv", "location": str(source)},
            headers=out[provider],
        )
        assert r.status_code == 200, r.text
    return out


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-open", anchor_loop=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield _setup(client, settings, app.state.ledger)


def contract_body(env: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enterprise_id": env["qiye_id"],
        "resources": [env["GY-C-1"], env["GY-C-2"]],
        "purposes": ["credit_assessment", "commercial_development"],
        "scope": {env["GY-C-1"]: SCOPE, env["GY-C-2"]: {**SCOPE, "mode": "raw"}},
        "valid_from": (NOW - timedelta(minutes=5)).isoformat(),
        "valid_until": (NOW + timedelta(days=365)).isoformat(),
        "terms_hash": TERMS,
        "terms_uri": "https://open.example.gov.cn/agreements/3",
    }
    body.update(changes)
    return body


def effective_contract(env: dict[str, Any]) -> str:
    c: TestClient = env["client"]
    r = c.post("/v1/open-contracts", json=contract_body(env), headers=env["operator"])
    assert r.status_code == 201 and r.json()["status"] == "proposed", r.text
    cid: str = r.json()["id"]
    for who in ("qiye", "renshe", "gongan"):
        r = c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env[who])
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "effective", r.text
    return cid


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


def denied(env: dict[str, Any], r: Any, reason: str) -> dict[str, Any]:
    err(r, 403, reason)
    ledger: Ledger = env["ledger"]
    logged: dict[str, Any] = json.loads(ledger.log.log.entry(r.json()["error"]["access_event"]).entry)
    assert logged["kind"] == "denied" and logged["reason"] == reason, logged
    return logged


def access(
    env: dict[str, Any], rid: str, cid: str, who: str = "qiye", purpose: str = "credit_assessment"
) -> Any:
    return env["client"].get(
        f"/v1/data/{rid}", params={"contract": cid, "purpose": purpose}, headers=env[who]
    )


def test_three_party_contract_custodial(env: dict[str, Any]) -> None:
    c: TestClient = env["client"]
    r = c.post("/v1/open-contracts", json=contract_body(env), headers=env["operator"])
    assert r.status_code == 201, r.text
    body = r.json()
    cid = body["id"]
    assert body["status"] == "proposed" and body["kind"] == "contract"
    assert body["awaiting"] == [env["qiye_id"], env["renshe_id"], env["gongan_id"]]
    assert body["obligations"] == [
        "no_reidentification",
        "no_onward_transfer",
        "declare_derived",
        "public_release",
    ]
    # Not effective yet: the gateway refuses, naming why.
    denied(env, access(env, env["GY-C-1"], cid), "contract_not_effective")
    err(c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["minzheng"]), 404, "contract_not_found")
    err(c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["operator"]), 403, "not_a_party")
    r = c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["qiye"])
    assert r.json()["status"] == "proposed" and r.json()["signed_by"] == [env["qiye_id"]]
    err(c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["qiye"]), 409, "already_signed")
    c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["renshe"])
    r = c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["gongan"])
    assert r.json()["status"] == "effective" and r.json()["effective_at"] is not None
    ledger: Ledger = env["ledger"]
    record = ledger.chain.call(ledger.contracts["OpenContracts"].functions.contractOf(bytes.fromhex(cid[2:])))
    assert int(record[1]) == 2 and int(record[3]) == 3  # Effective, three signatures
    # The contract's access: masked per its scope for GY-C-1, raw for GY-C-2.
    r = access(env, env["GY-C-1"], cid)
    assert r.status_code == 200, r.text
    assert (
        r.json()["contract"] == cid and r.json()["mode"] == "masked" and "id_number" not in r.json()["fields"]
    )
    logged = json.loads(ledger.log.log.entry(int(r.headers["X-Access-Event"])).entry)
    assert logged["contract"] == cid and logged["purpose"] == "credit_assessment" and "grant" not in logged
    assert access(env, env["GY-C-2"], cid).json()["mode"] == "raw"
    # Refusals, each logged as denied with its reason.
    denied(env, access(env, env["GY-C-1"], cid, purpose="law_enforcement"), "purpose_not_in_contract")
    denied(env, access(env, env["GY-C-1"], cid, who="qiye2"), "not_contract_enterprise")
    denied(env, access(env, env["GY-A-1"], cid), "resource_not_in_contract")
    denied(
        env,
        env["client"].get(f"/v1/data/{env['GY-C-1']}", params={"contract": cid}, headers=env["qiye"]),
        "purpose_required",
    )
    denied(env, access(env, env["GY-C-1"], "0x" + "ab" * 32), "unknown_contract")
    denied(env, access(env, env["GY-C-1"], "nonsense"), "unknown_contract")
    # Visibility: parties and supervisors see it; a stranger gets 404.
    assert c.get(f"/v1/open-contracts/{cid}", headers=env["jianguan"]).status_code == 200
    err(c.get(f"/v1/open-contracts/{cid}", headers=env["minzheng"]), 404, "contract_not_found")
    assert [x["id"] for x in c.get("/v1/open-contracts", headers=env["qiye"]).json()] == [cid]
    assert c.get("/v1/open-contracts", headers=env["qiye2"]).json() == []
    kinds = [
        json.loads(e.entry)["action"]
        for e in ledger.log.log.entries(0, ledger.log.log.size())
        if e.kind == "contract"
    ]
    assert kinds == ["proposed", "signed", "signed", "signed", "effective"]


def test_client_mode_signing(env: dict[str, Any]) -> None:
    """Every party may keep its own key: the proposal and the acceptances are signed by eth_account."""
    c: TestClient = env["client"]
    keys: dict[str, Any] = {}
    for name, kind in (("op2", "operator"), ("ent2", "enterprise")):
        account = Account.create()
        r = c.post(
            "/v1/parties",
            json={"kind": kind, "name": name, "uscc": make_uscc(880 + len(keys)), "address": account.address},
            headers=BOOT,
        )
        assert r.status_code == 201, r.text
        env[name] = {"Authorization": f"Bearer {r.json()['token']}"}
        env[name + "_id"] = r.json()["id"]
        keys[name] = account
    body = contract_body(
        env, enterprise_id=env["ent2_id"], resources=[env["GY-C-1"]], scope={env["GY-C-1"]: SCOPE}
    )
    err(c.post("/v1/open-contracts", json=body, headers=env["op2"]), 409, "client_custody")
    r = c.post("/v1/open-contracts", json={**body, "signing": "client"}, headers=env["op2"])
    assert r.status_code == 201 and r.json()["status"] == "awaiting_signature", r.text
    cid, typed = r.json()["id"], r.json()["typed_data"]
    assert r.json()["sign_at"] == f"/v1/open-contracts/{cid}/signature"
    wrong = Account.create().sign_typed_data(full_message=typed).signature.to_0x_hex()
    err(
        c.post(f"/v1/open-contracts/{cid}/signature", json={"signature": wrong}, headers=env["op2"]),
        422,
        "wrong_signer",
    )
    good = keys["op2"].sign_typed_data(full_message=typed).signature.to_0x_hex()
    r = c.post(f"/v1/open-contracts/{cid}/signature", json={"signature": good}, headers=env["op2"])
    assert r.json()["status"] == "proposed", r.text
    r = c.post(f"/v1/open-contracts/{cid}/sign", json={"signing": "client"}, headers=env["ent2"])
    typed = r.json()["typed_data"]
    assert (
        typed["primaryType"] == "Acceptance" and typed["message"]["contractHash"] == r.json()["contract_hash"]
    )
    sig = keys["ent2"].sign_typed_data(full_message=typed).signature.to_0x_hex()
    r = c.post(f"/v1/open-contracts/{cid}/signature", json={"signature": sig}, headers=env["ent2"])
    assert r.json()["signed_by"] == [env["ent2_id"]], r.text
    err(
        c.post(f"/v1/open-contracts/{cid}/signature", json={"signature": sig}, headers=env["ent2"]),
        409,
        "not_awaiting_signature",
    )
    r = c.post(f"/v1/open-contracts/{cid}/sign", json={}, headers=env["renshe"])
    assert r.json()["status"] == "effective"


def test_proposal_rules(env: dict[str, Any]) -> None:
    c: TestClient = env["client"]
    op = env["operator"]
    err(c.post("/v1/open-contracts", json=contract_body(env), headers=env["qiye"]), 403, "forbidden_role")
    err(
        c.post("/v1/open-contracts", json=contract_body(env, enterprise_id=env["renshe_id"]), headers=op),
        422,
        "not_enterprise",
    )
    for code, why in (("GY-A-1", "not_openable"), ("GY-N-1", "not_openable"), ("GY-O-1", "not_openable")):
        body = contract_body(env, resources=[env[code]], scope={env[code]: SCOPE})
        err(c.post("/v1/open-contracts", json=body, headers=op), 409, why)
    err(
        c.post("/v1/open-contracts", json=contract_body(env, scope={env["GY-C-1"]: SCOPE}), headers=op),
        422,
        "invalid_scope",
    )
    bad_field = {env["GY-C-1"]: {**SCOPE, "fields": ["salary"]}, env["GY-C-2"]: SCOPE}
    err(
        c.post("/v1/open-contracts", json=contract_body(env, scope=bad_field), headers=op),
        422,
        "unknown_field",
    )
    err(
        c.post("/v1/open-contracts", json=contract_body(env, purposes=["gossip"]), headers=op),
        422,
        "unknown_purpose",
    )
    err(
        c.post(
            "/v1/open-contracts", json=contract_body(env, purposes=["statistics", "statistics"]), headers=op
        ),
        422,
        "invalid_purposes",
    )
    late = contract_body(env, valid_from=(NOW + timedelta(days=2)).isoformat(), valid_until=NOW.isoformat())
    err(c.post("/v1/open-contracts", json=late, headers=op), 422, "invalid_window")
    err(
        c.post("/v1/open-contracts", json=contract_body(env, terms_hash="0x12"), headers=op),
        422,
        "invalid_hash",
    )


def test_open_types_and_negative_list(env: dict[str, Any]) -> None:
    c: TestClient = env["client"]
    # open: no grant, still logged; none: refused; contract / on_application: need a contract.
    r = c.get(f"/v1/data/{env['GY-O-1']}", params={"purpose": "academic_research"}, headers=env["qiye"])
    assert r.status_code == 200 and r.json()["mode"] == "masked", r.text
    denied(env, c.get(f"/v1/data/{env['GY-N-1']}", headers=env["qiye"]), "not_open")
    denied(env, c.get(f"/v1/data/{env['GY-C-1']}", headers=env["qiye"]), "no_contract")
    denied(env, c.get(f"/v1/data/{env['GY-A-1']}", headers=env["qiye"]), "no_contract")
    denied(env, c.get(f"/v1/data/{env['GY-C-1']}", headers=env["minzheng"]), "no_grant")
    cid = effective_contract(env)
    assert access(env, env["GY-C-1"], cid).status_code == 200
    # The registrar lists GY-C-1 and GY-O-1: refused at once, even under an effective contract.
    err(
        c.post(
            "/v1/negative-list", json={"resource_id": env["GY-C-1"], "reason": "x"}, headers=env["operator"]
        ),
        403,
        "forbidden_role",
    )
    for code in ("GY-C-1", "GY-O-1"):
        r = c.post(
            "/v1/negative-list", json={"resource_id": env[code], "reason": "涉及国家安全"}, headers=BOOT
        )
        assert r.status_code == 200 and r.json()["listed"] is True, r.text
    err(
        c.post("/v1/negative-list", json={"resource_id": env["GY-C-1"], "reason": "again"}, headers=BOOT),
        409,
        "listing_unchanged",
    )
    assert {x["resource_id"] for x in c.get("/v1/negative-list", headers=env["qiye"]).json()} == {
        env["GY-C-1"],
        env["GY-O-1"],
    }
    denied(env, access(env, env["GY-C-1"], cid), "negative_listed")
    denied(env, c.get(f"/v1/data/{env['GY-O-1']}", headers=env["qiye"]), "negative_listed")
    assert access(env, env["GY-C-2"], cid).status_code == 200  # the contract's other resource
    err(
        c.post("/v1/open-contracts", json=contract_body(env), headers=env["operator"]), 409, "negative_listed"
    )
    ledger: Ledger = env["ledger"]
    oc = ledger.contracts["OpenContracts"]
    from ledger.sharing.catalog import resource_id_bytes32

    assert ledger.chain.call(oc.functions.isNegativeListed(resource_id_bytes32(env["GY-C-1"]))) is True
    r = c.post(
        "/v1/negative-list",
        json={"resource_id": env["GY-C-1"], "listed": False, "reason": "解除"},
        headers=BOOT,
    )
    assert r.json()["listed"] is False
    assert access(env, env["GY-C-1"], cid).status_code == 200


def test_suspension_and_termination(env: dict[str, Any]) -> None:
    c: TestClient = env["client"]
    cid = effective_contract(env)
    reason = {"reason": "违反不得再识别义务"}
    err(
        c.post(f"/v1/open-contracts/{cid}/suspend", json=reason, headers=env["qiye"]),
        403,
        "not_authorized_to_change",
    )
    err(
        c.post(f"/v1/open-contracts/{cid}/resume", json=reason, headers=env["operator"]),
        409,
        "invalid_transition",
    )
    r = c.post(f"/v1/open-contracts/{cid}/suspend", json=reason, headers=env["operator"])
    assert r.json()["status"] == "suspended", r.text
    denied(env, access(env, env["GY-C-1"], cid), "contract_suspended")
    r = c.post(f"/v1/open-contracts/{cid}/resume", json={"reason": "整改完成"}, headers=BOOT)
    assert r.json()["status"] == "effective", r.text
    assert access(env, env["GY-C-1"], cid).status_code == 200
    r = c.post(f"/v1/open-contracts/{cid}/terminate", json={"reason": "协议解除"}, headers=BOOT)
    assert r.json()["status"] == "terminated" and r.json()["terminated_at"], r.text
    denied(env, access(env, env["GY-C-1"], cid), "contract_terminated")
    err(
        c.post(f"/v1/open-contracts/{cid}/terminate", json={"reason": "again"}, headers=BOOT),
        409,
        "invalid_transition",
    )
    assert [h["event"] for h in r.json()["history"]][-3:] == ["suspended", "resumed", "terminated"]
    # An exchange platform reports an access under the terminated contract: logged, and alerted on.
    event = {
        "event_id": "ext:after-end",
        "accessor": env["qiye_id"],
        "resource": env["GY-C-1"],
        "contract": cid,
        "purpose": "credit_assessment",
        "time": datetime.now(UTC).isoformat(),
        "gateway": "exchange-platform-1",
    }
    r = c.post("/v1/access-events", json=[event], headers=env["operator"])
    assert r.status_code == 201, r.text
    index = r.json()[0]["index"]
    alerts = c.get("/v1/audit/alerts", headers=env["jianguan"]).json()["alerts"]
    found = [a for a in alerts if a["rule"] == "outside_contract"]
    assert [(a["evidence"], a["severity"], a["message"]) for a in found] == [
        ([index], "high", "access while the contract was terminated")
    ]


def application_body(env: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_id": env["GY-A-1"],
        "purpose": {"code": "employment_service", "text": "就业服务平台岗位匹配"},
        "scope": {"fields": ["district", "insured"], "mode": "aggregate", "max_records": 100},
        "qualifications": [
            {"name": "营业执照", "sha256": "0x" + hashlib.sha256(b"license").hexdigest()},
            {"name": "数据安全管理制度", "sha256": "0x" + hashlib.sha256(b"policy").hexdigest()},
        ],
        "valid_from": (NOW - timedelta(minutes=5)).isoformat(),
        "valid_until": (NOW + timedelta(days=90)).isoformat(),
    }
    body.update(changes)
    return body


def test_application_reviewed_into_a_contract(env: dict[str, Any]) -> None:
    c: TestClient = env["client"]
    err(
        c.post("/v1/open-applications", json=application_body(env), headers=env["minzheng"]),
        403,
        "forbidden_role",
    )
    err(
        c.post(
            "/v1/open-applications",
            json=application_body(env, resource_id=env["GY-C-1"]),
            headers=env["qiye"],
        ),
        409,
        "not_openable",
    )
    bad = application_body(env, qualifications=[{"name": "营业执照", "sha256": "0x12"}])
    assert c.post("/v1/open-applications", json=bad, headers=env["qiye"]).status_code == 422
    r = c.post("/v1/open-applications", json=application_body(env), headers=env["qiye"])
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    app = r.json()
    assert app["review_by"] > app["applied_on"] and app["overdue"] is False
    aid = app["id"]
    assert [x["id"] for x in c.get("/v1/open-applications?status=pending", headers=env["renshe"]).json()] == [
        aid
    ]
    assert c.get("/v1/open-applications?status=pending", headers=env["gongan"]).json() == []
    err(c.get(f"/v1/open-applications/{aid}", headers=env["gongan"]), 404, "application_not_found")
    err(
        c.post(f"/v1/open-applications/{aid}/review", json={"approve": True}, headers=env["jianguan"]),
        403,
        "not_reviewer",
    )
    err(
        c.post(f"/v1/open-applications/{aid}/review", json={"approve": False}, headers=env["renshe"]),
        422,
        "reason_required",
    )
    r = c.post(
        f"/v1/open-applications/{aid}/review",
        json={"approve": True, "reason": "资质齐全"},
        headers=env["renshe"],
    )
    assert r.json()["status"] == "pending" and r.json()["reviews"]["provider"]["approve"] is True, r.text
    err(
        c.post(f"/v1/open-applications/{aid}/review", json={"approve": True}, headers=env["renshe"]),
        409,
        "already_reviewed",
    )
    denied(env, access(env, env["GY-A-1"], aid, purpose="employment_service"), "unknown_contract")
    r = c.post(f"/v1/open-applications/{aid}/review", json={"approve": True}, headers=env["operator"])
    assert r.json()["status"] == "approved" and r.json()["contract_id"] == aid, r.text
    contract = c.get(f"/v1/open-contracts/{aid}", headers=env["qiye"]).json()
    assert contract["kind"] == "application" and contract["status"] == "effective"
    r = c.get(
        f"/v1/data/{env['GY-A-1']}",
        params={"contract": aid, "purpose": "employment_service", "group_by": "district"},
        headers=env["qiye"],
    )
    assert r.status_code == 200 and r.json()["mode"] == "aggregate", r.text
    denied(env, access(env, env["GY-A-1"], aid, purpose="credit_assessment"), "purpose_not_in_contract")
    # A rejection is final.
    r = c.post("/v1/open-applications", json=application_body(env), headers=env["qiye2"])
    aid2 = r.json()["id"]
    r = c.post(
        f"/v1/open-applications/{aid2}/review",
        json={"approve": False, "reason": "用途不明"},
        headers=env["operator"],
    )
    assert r.json()["status"] == "rejected"
    err(
        c.post(f"/v1/open-applications/{aid2}/review", json={"approve": True}, headers=env["renshe"]),
        409,
        "not_pending",
    )


def test_usage_declarations(env: dict[str, Any]) -> None:
    c: TestClient = env["client"]
    cid = effective_contract(env)
    first = int(access(env, env["GY-C-1"], cid).headers["X-Access-Event"])
    second = int(access(env, env["GY-C-2"], cid).headers["X-Access-Event"])
    other = int(c.get(f"/v1/data/{env['GY-O-1']}", headers=env["qiye"]).headers["X-Access-Event"])
    body = {
        "contract_id": cid,
        "name": "小微企业信用评分模型",
        "description": "以参保人数和缴费基数估算企业稳定性",
        "inputs": [first, second],
        "purpose": "credit_assessment",
        "release_mode": "customers",
    }
    err(
        c.post("/v1/declarations", json={**body, "inputs": [first, other]}, headers=env["qiye"]),
        422,
        "invalid_inputs",
    )
    err(
        c.post("/v1/declarations", json={**body, "inputs": [10**9]}, headers=env["qiye"]),
        422,
        "invalid_inputs",
    )
    err(c.post("/v1/declarations", json=body, headers=env["qiye2"]), 404, "contract_not_found")
    err(c.post("/v1/declarations", json=body, headers=env["renshe"]), 403, "forbidden_role")
    r = c.post("/v1/declarations", json=body, headers=env["qiye"])
    assert r.status_code == 201, r.text
    declared = r.json()
    assert declared["inputs"] == [first, second] and set(declared["resources"]) == {
        env["GY-C-1"],
        env["GY-C-2"],
    }
    ledger: Ledger = env["ledger"]
    logged = json.loads(ledger.log.log.entry(declared["log_index"]).entry)
    assert (
        logged["kind"] == "declaration" and logged["contract"] == cid and logged["inputs"] == [first, second]
    )
    assert [d["id"] for d in c.get("/v1/declarations", headers=env["jianguan"]).json()] == [declared["id"]]
    # The lineage: provider → contract → enterprise → derived product.
    graph = c.get(f"/v1/audit/lineage/{env['GY-C-1']}", headers=env["jianguan"]).json()
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    contract_node, product_node = f"contract:{cid}", f"derived_product:{declared['id']}"
    assert kinds[contract_node] == "contract" and kinds[product_node] == "derived_product"
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert edges[(f"provider:{env['renshe_id']}", contract_node)]["count"] == 1
    assert edges[(contract_node, f"accessor:{env['qiye_id']}")]["purposes"] == ["credit_assessment"]
    assert edges[(f"accessor:{env['qiye_id']}", product_node)]["count"] == 2
    assert not [e for e in graph["edges"] if e["source"].startswith("grant:")]
    alerts = c.get("/v1/audit/alerts", headers=env["jianguan"]).json()["alerts"]
    assert not [a for a in alerts if a["rule"] == "declared_use_mismatch"]
    # Data taken for credit assessment, declared as used for statistics: the regulator is told.
    r = c.post("/v1/declarations", json={**body, "purpose": "statistics"}, headers=env["qiye"])
    assert r.status_code == 201, r.text
    alerts = c.get("/v1/audit/alerts", headers=env["jianguan"]).json()["alerts"]
    found = [a for a in alerts if a["rule"] == "declared_use_mismatch"]
    assert [a["evidence"] for a in found] == [[r.json()["log_index"], first, second]]
    assert (
        found[0]["message"]
        == "derived product declared for statistics; its data was taken for credit_assessment"
    )
    assert c.get("/v1/declarations", headers=env["qiye2"]).json() == []


# ----------------------------------------------------------------------------------------- bundles
def verify_cli(bundle: dict[str, Any], rpc: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"bundle-{hashlib.sha256(json.dumps(bundle).encode()).hexdigest()[:8]}.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "verify-bundle", str(path), "--rpc", rpc],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.external_chain
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bundles_verified_with_the_server_stopped(
    evm_node: EvmNode,  # noqa: F811
    tmp_path: Path,
    db_url: str,
) -> None:
    """Bundles are taken while sharetrail runs; then the server is stopped and each is checked by
    ``sharetrail verify-bundle`` against the Hardhat node alone."""
    settings = Settings(
        data_dir=tmp_path / "d",
        db_url=db_url,
        chain=evm_node.url,
        bootstrap_token="st_boot-open",
        anchor_loop=False,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        env = _setup(client, settings, app.state.ledger)
        c = env["client"]
        cid = effective_contract(env)
        before = int(access(env, env["GY-C-1"], cid).headers["X-Access-Event"])
        # An exchange platform reports a use under the contract for a purpose the contract does not name.
        stray = {
            "event_id": "ext:stray-purpose",
            "accessor": env["qiye_id"],
            "resource": env["GY-C-1"],
            "contract": cid,
            "purpose": "law_enforcement",
            "time": datetime.now(UTC).isoformat(),
            "chain_time": env["ledger"].chain.latest_block()["timestamp"],
            "gateway": "exchange-platform-1",
        }
        r = c.post("/v1/access-events", json=[stray], headers=env["operator"])
        assert r.status_code == 201, r.text
        outside = r.json()[0]["index"]
        r = c.post(f"/v1/open-contracts/{cid}/terminate", json={"reason": "协议解除"}, headers=BOOT)
        assert r.json()["status"] == "terminated", r.text
        # An exchange platform reports an access under the contract after its termination: the log
        # records what happened, and the bundle must not pass as proof of authorized use.
        event = {
            "event_id": "ext:after-termination",
            "accessor": env["qiye_id"],
            "provider": env["renshe_id"],
            "resource": env["GY-C-1"],
            "contract": cid,
            "purpose": "credit_assessment",
            "fields": ["district"],
            "record_count": 3,
            "time": datetime.now(UTC).isoformat(),
            # The platform checked the contract on chain at the latest block, after the termination.
            "chain_time": env["ledger"].chain.latest_block()["timestamp"],
            "gateway": "exchange-platform-1",
        }
        r = c.post("/v1/access-events", json=[event], headers=env["operator"])
        assert r.status_code == 201, r.text
        after = r.json()[0]["index"]
        env["ledger"].anchorer.anchor_once()
        bundles = {
            i: c.get(f"/v1/proofs/access/{i}", headers=env["jianguan"]).json()
            for i in (before, after, outside)
        }
        # One more access, never anchored: its bundle can only be forged from an unanchored root.
        r = c.get(f"/v1/data/{env['GY-O-1']}", headers=env["qiye"])
        unanchored_index = int(r.headers["X-Access-Event"])
        ledger: Ledger = env["ledger"]
        size = ledger.log.log.size()
        unanchored_root = ledger.log.log.root(size)
        unanchored_proof = ledger.log.log.inclusion_proof(unanchored_index, size)
        unanchored_entry = json.loads(ledger.log.log.entry(unanchored_index).entry)
    # sharetrail is stopped: only the chain endpoint is left.
    good = bundles[before]
    assert good["grant"]["type"] == "open_contract" and len(good["grant"]["signatures"]) == 3
    ok = verify_cli(good, evm_node.url, tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr

    def refused(bundle: dict[str, Any], code: str) -> None:
        out = verify_cli(bundle, evm_node.url, tmp_path)
        assert out.returncode == 1 and out.stdout.startswith(f"FAILED {code}:"), out.stdout + out.stderr

    refused(bundles[after], "contract_terminated")
    refused(bundles[outside], "purpose_not_in_contract")
    # The third party's own verifier (web3.py and hashlib only) agrees.
    script = Path(__file__).resolve().parents[2] / "docs" / "verify_bundle_standalone.py"
    for bundle, expected in (
        (good, "OK"),
        (bundles[after], "FAILED contract_terminated: the contract did not authorize this access"),
    ):
        path = tmp_path / "standalone.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        out = subprocess.run(
            [sys.executable, "-I", str(script), str(path), evm_node.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.stdout.startswith(expected), out.stdout + out.stderr
    forged = copy.deepcopy(good)
    forged["grant"]["signatures"][0]["signature"] = "0x" + "11" * 65
    refused(forged, "forged_signature")
    stranger = Account.create()
    forged = copy.deepcopy(good)
    forged["grant"]["proposal"]["signature"] = stranger.sign_typed_data(
        full_message=good["grant"]["proposal"]["typed_data"]
    ).signature.to_0x_hex()
    refused(forged, "forged_signature")
    edited = copy.deepcopy(good)
    edited["entry"]["purpose"] = "law_enforcement"
    refused(edited, _inclusion_code())
    widened = copy.deepcopy(good)
    widened["grant"]["scope"]["resources"][env["GY-C-1"]]["mode"] = "raw"
    refused(widened, "scope_mismatch")
    unanchored = {
        **copy.deepcopy(good),
        "entry": unanchored_entry,
        "leaf_index": unanchored_index,
        "tree_size": size,
        "root": "0x" + unanchored_root.hex(),
        "inclusion_proof": ["0x" + p.hex() for p in unanchored_proof],
        "grant": None,
        "checkpoint_note": None,
    }
    refused(unanchored, "root_not_anchored")


def _inclusion_code() -> str:
    """What the log's verifier calls an entry that no longer hashes to its proven leaf."""
    from ledger.errors import VerificationError
    from ledger.log import merkle

    try:
        merkle.verify_inclusion(b"\0" * 32, 0, 2, [b"\1" * 32], b"\2" * 32)
    except VerificationError as exc:
        return exc.code
    raise AssertionError("verify_inclusion accepted a wrong root")

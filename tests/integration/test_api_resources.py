"""The catalog through the real app and the real chain, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.canonical import canonical_json
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.sharing.catalog import resource_id_bytes32

BOOT = {"Authorization": "Bearer st_boot-catalog"}


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp_path / "d", db_url=db_url, bootstrap_token="st_boot-catalog", anchor_loop=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        out: dict[str, Any] = {"client": client, "ledger": app.state.ledger}
        for n, (name, kind, extra) in enumerate(
            [
                ("minzheng", "department", {}),
                ("gongan", "department", {}),
                ("shulian", "enterprise", {}),
                ("own-key", "department", {"address": Account.create().address}),
            ]
        ):
            body = {"kind": kind, "name": name, "uscc": make_uscc(300 + n), **extra}
            r = client.post("/v1/parties", json=body, headers=BOOT)
            assert r.status_code == 201, r.text
            out[name] = {
                "Authorization": f"Bearer {r.json()['token']}",
                "id": r.json()["id"],
                "address": r.json()["address"],
            }
        yield out


def resource(**over: Any) -> dict[str, Any]:
    body = {
        "code": "GY-MZ-001",
        "name": "低保对象信息",
        "format": "table",
        "fields": [
            {"name": "name", "sensitive": True, "masking": "name"},
            {"name": "id_number", "sensitive": True, "masking": "id_number"},
            {"name": "district"},
        ],
        "share_type": "conditional",
        "open_type": "none",
        "level": 2,
        "update_frequency": "monthly",
        "legal_basis": "《社会救助暂行办法》",
    }
    return {**body, **over}


def auth(env: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": env[who]["Authorization"]}


def err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.json()


def test_publish_version_and_chain_record(env: dict[str, Any]) -> None:
    c, ledger = env["client"], env["ledger"]
    assert isinstance(ledger, Ledger)
    r = c.post("/v1/resources", json=resource(), headers=auth(env, "minzheng"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["version"] == 1 and created["provider_id"] == env["minzheng"]["id"]
    # custodial: published at once, nothing left to sign (client mode: test_api_sharing_client.py)
    assert (
        created["published"] is True and created["typed_data"] is None and created["pending_version"] is None
    )
    assert created["metadata_hash"] == "0x" + keccak(canonical_json(created["metadata"])).hex()
    share = ledger.contracts["ShareLedger"]
    rid = resource_id_bytes32(created["id"])
    on_chain = ledger.chain.call(share.functions.resourceOf(rid))
    assert on_chain[0] == env["minzheng"]["address"] and on_chain[1] == 2 and on_chain[4] == 1
    assert (
        "0x" + bytes(ledger.chain.call(share.functions.metadataHashAt(rid, 1))).hex()
        == created["metadata_hash"]
    )

    r = c.put(
        f"/v1/resources/{created['id']}",
        json=resource(level=3, name="低保对象信息（含家庭成员）"),
        headers=auth(env, "minzheng"),
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    versions = c.get(f"/v1/resources/{created['id']}/versions", headers=auth(env, "gongan")).json()
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["metadata_hash"] == created[
        "metadata_hash"
    ]
    assert (
        bytes(ledger.chain.call(share.functions.metadataHashAt(rid, 2))).hex()
        == r.json()["metadata_hash"][2:]
    )
    listed = c.get("/v1/resources?level=3", headers=auth(env, "shulian")).json()
    assert [x["id"] for x in listed] == [created["id"]]
    assert c.get("/v1/resources?level=1", headers=auth(env, "shulian")).json() == []


def test_one_resource_one_provider(env: dict[str, Any]) -> None:
    c = env["client"]
    assert c.post("/v1/resources", json=resource(), headers=auth(env, "minzheng")).status_code == 201
    err(c.post("/v1/resources", json=resource(), headers=auth(env, "gongan")), 409, "resource_code_taken")
    err(c.post("/v1/resources", json=resource(), headers=auth(env, "minzheng")), 409, "resource_exists")


def test_catalog_rejections(env: dict[str, Any]) -> None:
    c = env["client"]
    err(c.post("/v1/resources", json=resource(), headers=auth(env, "shulian")), 403, "forbidden_role")
    err(c.post("/v1/resources", json=resource(), headers=BOOT), 403, "forbidden_role")
    err(
        c.post("/v1/resources", json=resource(level=5), headers=auth(env, "minzheng")),
        422,
        "validation_failed",
    )
    err(
        c.post("/v1/resources", json=resource(share_type="sometimes"), headers=auth(env, "minzheng")),
        422,
        "validation_failed",
    )
    unmasked = resource(fields=[{"name": "id_number", "sensitive": True}])
    err(c.post("/v1/resources", json=unmasked, headers=auth(env, "minzheng")), 422, "invalid_field")
    twice = resource(fields=[{"name": "a"}, {"name": "a"}])
    err(c.post("/v1/resources", json=twice, headers=auth(env, "minzheng")), 422, "duplicate_field")
    # labels a reader must see as they are: not blank, nothing invisible or reordering
    for over in (
        {"name": "\u200b\u200b"},
        {"name": "低保\u202e息信"},
        {"format": "\u3000"},
        {"update_frequency": " "},
        {"legal_basis": " \n "},
    ):
        r = c.post("/v1/resources", json=resource(**over), headers=auth(env, "minzheng"))
        err(r, 422, "invalid_text")
        assert r.json()["error"]["message"].startswith(next(iter(over))), r.text
    err(c.get("/v1/resources/nope", headers=auth(env, "minzheng")), 404, "resource_not_found")
    created = c.post("/v1/resources", json=resource(), headers=auth(env, "minzheng")).json()
    err(
        c.put(f"/v1/resources/{created['id']}", json=resource(), headers=auth(env, "gongan")),
        403,
        "not_provider",
    )
    err(
        c.put(
            f"/v1/resources/{created['id']}", json=resource(code="GY-MZ-002"), headers=auth(env, "minzheng")
        ),
        422,
        "code_immutable",
    )
    # a department that keeps its own key must sign itself: custodial signing is refused
    err(
        c.post("/v1/resources", json=resource(code="GY-X-1"), headers=auth(env, "own-key")),
        409,
        "client_custody",
    )

"""Party registration and authentication through the real app, on SQLite and PostgreSQL, with the
real embedded chain. Every rejection asserts its exact status and error code."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from ledger.identity.uscc import make_uscc

VALID = make_uscc(500)


def _register(client: TestClient, headers: dict[str, str], **over: Any) -> Any:
    body = {"kind": "department", "name": "贵阳市民政局", "uscc": VALID, **over}
    return client.post("/v1/parties", json=body, headers=headers)


def _err(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_register_returns_token_once_and_party_is_on_chain(
    client: TestClient, registrar_headers: dict[str, str]
) -> None:
    r = _register(client, registrar_headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["kind"] == "department" and created["uscc"] == VALID
    assert created["token"].startswith("st_") and created["address"].startswith("0x")
    assert created["custody"] == "custodial" and created["registered_tx"].startswith("0x")
    assert "key_ciphertext" not in created and "private_key" not in r.text
    token = created["token"]
    me = client.get("/v1/parties/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == created["id"]
    assert "token" not in me.json()
    listed = client.get("/v1/parties", headers=registrar_headers).json()
    assert created["id"] in {p["id"] for p in listed}
    assert all("token" not in p for p in listed)
    # the party is on chain with the department role: read it back through the public /rpc endpoint
    registry = client.get("/healthz").json()["contracts"]["PartyRegistry"]
    from web3 import Web3

    w3 = Web3()
    data = w3.eth.contract(
        abi=[
            {
                "type": "function",
                "name": "isActive",
                "stateMutability": "view",
                "inputs": [{"name": "a", "type": "address"}],
                "outputs": [{"name": "", "type": "bool"}],
            }
        ]
    ).encode_abi("isActive", [created["address"]])
    rpc = client.post(
        "/rpc",
        json={
            "jsonrpc": "2.0",
            "id": 7,
            "method": "eth_call",
            "params": [{"to": registry, "data": data}, "latest"],
        },
    ).json()
    assert rpc["id"] == 7 and int(rpc["result"], 16) == 1


def test_client_custody_party_keeps_its_own_address(
    client: TestClient, registrar_headers: dict[str, str]
) -> None:
    own = Account.create()
    r = _register(client, registrar_headers, address=own.address.lower())
    assert r.status_code == 201, r.text
    assert r.json()["address"] == own.address and r.json()["custody"] == "client"


def test_registrar_only(client: TestClient, registrar_headers: dict[str, str]) -> None:
    token = _register(client, registrar_headers).json()["token"]
    r = _register(client, {"Authorization": f"Bearer {token}"}, uscc=make_uscc(501))
    _err(r, 403, "forbidden_role")


@pytest.mark.parametrize(
    ("uscc", "fragment"),
    [
        ("123", "18 characters"),
        ("11520100000000027I", "position 18"),
        ("11520100000000027K", "check character"),
    ],
)
def test_invalid_credit_code(
    client: TestClient, registrar_headers: dict[str, str], uscc: str, fragment: str
) -> None:
    err = _err(_register(client, registrar_headers, uscc=uscc), 422, "invalid_uscc")
    assert fragment in err["message"]


def test_duplicates_refused(client: TestClient, registrar_headers: dict[str, str]) -> None:
    own = Account.create().address
    assert _register(client, registrar_headers, address=own).status_code == 201
    _err(_register(client, registrar_headers), 409, "uscc_taken")
    _err(_register(client, registrar_headers, uscc=make_uscc(502), address=own), 409, "address_taken")


def test_bad_input_shapes(client: TestClient, registrar_headers: dict[str, str]) -> None:
    headers = {**registrar_headers, "Content-Type": "application/json"}
    _err(
        client.post("/v1/parties", content=b'{"kind": "department", "name": ', headers=headers),
        400,
        "malformed_json",
    )
    err = _err(_register(client, registrar_headers, kind="emperor"), 422, "validation_failed")
    assert err["message"].startswith("kind:")
    _err(_register(client, registrar_headers, name=["not", "a", "string"]), 422, "validation_failed")
    _err(_register(client, registrar_headers, unexpected="field"), 422, "validation_failed")
    _err(_register(client, registrar_headers, address="0x1234"), 422, "invalid_address")
    _err(_register(client, registrar_headers, name="   "), 422, "invalid_name")
    # no key signs for the zero address: refused as input, not as the registry's revert (409)
    err = _err(_register(client, registrar_headers, address="0x" + "0" * 40), 422, "invalid_address")
    assert err["message"] == "the zero address cannot be a party's address"
    # names a reader cannot see as they are: invisible, bidirectional overrides, private use
    for name, shown in (
        ("\u3000\u00a0", "must not be empty or only whitespace"),
        ("\u200b\u200b", "must not contain invisible formatting characters"),
        ("贵阳市\u202e局政民", "must not contain invisible formatting characters"),
        ("贵阳\ue000", "must not contain private-use characters"),
    ):
        err = _err(_register(client, registrar_headers, name=name), 422, "invalid_name")
        assert err["message"].startswith("name " + shown), err["message"]
    big = {"kind": "department", "name": "x" * 2_000_000, "uscc": VALID}
    _err(client.post("/v1/parties", json=big, headers=registrar_headers), 413, "body_too_large")


def test_authentication_errors(client: TestClient) -> None:
    _err(client.get("/v1/parties/me"), 401, "missing_token")
    r = client.get("/v1/parties/me", headers={"Authorization": "Bearer st_nope"})
    _err(r, 401, "invalid_token")
    assert r.headers["www-authenticate"] == "Bearer"
    _err(client.get("/v1/parties/me", headers={"Authorization": "Basic abc"}), 401, "missing_token")


def test_unknown_party_and_route(client: TestClient, registrar_headers: dict[str, str]) -> None:
    _err(client.get("/v1/parties/deadbeef", headers=registrar_headers), 404, "party_not_found")
    _err(client.get("/v1/nothing-here"), 404, "not_found")
    _err(client.delete("/v1/parties", headers=registrar_headers), 405, "method_not_allowed")


def test_suspended_on_chain_is_refused(client: TestClient, registrar_headers: dict[str, str]) -> None:
    created = _register(client, registrar_headers).json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/v1/parties/me", headers=auth).status_code == 200
    r = client.post(
        f"/v1/parties/{created['id']}/suspend",
        json={"reason": "data leak investigation"},
        headers=registrar_headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    _err(client.get("/v1/parties/me", headers=auth), 403, "party_suspended")
    # suspending twice is refused by the contract itself, with its custom error
    r = client.post(
        f"/v1/parties/{created['id']}/suspend", json={"reason": "again"}, headers=registrar_headers
    )
    _err(r, 409, "already_suspended")
    assert client.post(f"/v1/parties/{created['id']}/reinstate", headers=registrar_headers).status_code == 200
    assert client.get("/v1/parties/me", headers=auth).status_code == 200
    _err(
        client.post(f"/v1/parties/{created['id']}/reinstate", headers=registrar_headers), 409, "not_suspended"
    )


def test_health_docs_and_rpc(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["chain"] == "embedded"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/parties" in spec["paths"] and "/rpc" in spec["paths"]
    r = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).json()
    assert int(r["result"], 16) == health["chain_id"]
    r = client.post(
        "/rpc", json={"jsonrpc": "2.0", "id": 2, "method": "eth_sendRawTransaction", "params": ["0x00"]}
    ).json()
    assert r["error"]["code"] == -32601
    batch = client.post(
        "/rpc",
        json=[
            {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
            {"jsonrpc": "2.0", "id": 4, "method": "eth_getTransactionReceipt", "params": ["0x" + "00" * 32]},
        ],
    ).json()
    assert int(batch[0]["result"], 16) == health["block_number"] and batch[1]["result"] is None
    assert client.post("/rpc", content=b"{nope").json()["error"]["code"] == -32700
    code = client.post(
        "/rpc",
        json={
            "jsonrpc": "2.0",
            "id": 5,
            "method": "eth_getCode",
            "params": [health["contracts"]["PartyRegistry"], "latest"],
        },
    ).json()
    assert len(code["result"]) > 100


def test_times_are_utc_with_z(client: TestClient, registrar_headers: dict[str, str]) -> None:
    """One form for every time in a response: the registrar's row, read back from the store (on
    SQLite without a zone), used to come out without one, a party just registered with ``+00:00``."""
    assert _register(client, registrar_headers, uscc=make_uscc(777)).status_code == 201
    listed = client.get("/v1/parties", headers=registrar_headers).json()
    stamps = [p["created_at"] for p in (listed["items"] if isinstance(listed, dict) else listed)]
    assert len(stamps) >= 2 and all(s.endswith("Z") and "+" not in s for s in stamps), stamps


def test_rpc_get_logs_past_the_head_reads_to_the_head(client: TestClient) -> None:
    """A range ending past the head is answered up to the head (as Geth does), not with null: an
    outside checker would read null as "no anchors"; a range starting past it has no logs."""

    def logs(start: str, end: str) -> Any:
        query = {"fromBlock": start, "toBlock": end}
        r = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]})
        return r.json()["result"]

    everything = logs("0x0", "latest")
    assert everything  # the deployments and the registrar's registration emitted events
    assert logs("0x0", hex(10**9)) == everything
    assert logs(hex(10**9), hex(10**9 + 5)) == []
    # EIP-234: one block's logs by its hash
    first = everything[0]
    query = {"blockHash": first["blockHash"]}
    r = client.post("/rpc", json={"jsonrpc": "2.0", "id": 2, "method": "eth_getLogs", "params": [query]})
    by_hash = r.json()["result"]
    assert by_hash and all(entry["blockHash"] == first["blockHash"] for entry in by_hash)
    assert by_hash == [entry for entry in everything if entry["blockHash"] == first["blockHash"]]
    for bad, message in (
        ({**query, "fromBlock": "0x0"}, "blockHash cannot be combined with fromBlock or toBlock (EIP-234)"),
        ({"blockHash": "0x1234"}, "bad block hash '0x1234'"),
        ({"blockHash": "0x" + "00" * 32}, "unknown block 0x" + "00" * 32),
    ):
        r = client.post("/rpc", json={"jsonrpc": "2.0", "id": 3, "method": "eth_getLogs", "params": [bad]})
        assert r.json()["error"] == {"code": -32602, "message": "invalid params: " + message}, r.text


def test_rpc_node_failures_are_json_rpc_errors(client: TestClient) -> None:
    """eth_call from an account that cannot pay for its gas: the embedded node refuses it with its
    own exception type — once an HTTP 500, now a JSON-RPC error like any node's."""
    contract = client.get("/healthz").json()["contracts"]["PartyRegistry"]
    call = {"to": contract, "from": "0x" + "00" * 19 + "01", "data": "0x12345678"}
    r = client.post(
        "/rpc", json={"jsonrpc": "2.0", "id": 7, "method": "eth_call", "params": [call, "latest"]}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == 7 and body["error"]["code"] == -32000 and "result" not in body, body


def test_purposes_vocabulary_route(client: TestClient) -> None:
    body = client.get("/v1/purposes").json()
    assert {"code", "label_zh", "label_en", "dpv"} == set(body[0])
    assert any(p["code"] == "social_assistance" and p["label_zh"] == "社会救助资格审核" for p in body)

"""The external-chain path: SHARETRAIL_CHAIN=http://... against a real Hardhat node process,
through the same code as the embedded chain (deploy, register, suspend, restart, /rpc)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.runtime import Ledger
from ledger.settings import Settings
from ledger.types import PartyKind
from tests.support.evm_node import EvmNode, evm_node  # noqa: F401

pytestmark = pytest.mark.external_chain


def test_same_operations_on_an_external_node(evm_node: EvmNode, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(data_dir=tmp_path / "data", chain=evm_node.url, bootstrap_token="st_ext-registrar")
    with Ledger.open(settings) as ledger:
        assert ledger.chain.kind == "http" and ledger.chain.chain_id == 31337
        registrar = ledger.parties.get(ledger.bootstrap.registrar_id)
        party, token = ledger.parties.register(
            registrar, NewParty(PartyKind.REGULATOR, "监管", make_uscc(700))
        )
        assert ledger.parties.authenticate(token).id == party.id
        ledger.parties.set_suspended(registrar, party.id, True, "test")
        with pytest.raises(Exception) as info:
            ledger.parties.authenticate(token)
        assert getattr(info.value, "code", None) == "party_suspended"
        address = ledger.contracts["PartyRegistry"].address
        assert not (tmp_path / "data" / "chain.sqlite").exists(), "no embedded chain on the external path"
    with Ledger.open(settings) as again:
        assert again.contracts["PartyRegistry"].address == address
        assert again.chain.call(again.contracts["PartyRegistry"].functions.partyCount()) == 2


def test_api_and_rpc_over_external_node(evm_node: EvmNode, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(data_dir=tmp_path / "data", chain=evm_node.url, bootstrap_token="st_ext-api")
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": "Bearer st_ext-api"}
        r = client.post(
            "/v1/parties",
            json={"kind": "enterprise", "name": "数联", "uscc": make_uscc(701)},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        health = client.get("/healthz").json()
        assert health["chain"] == "http" and health["chain_id"] == 31337
        rpc = client.post(
            "/rpc",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_getTransactionReceipt",
                "params": [r.json()["registered_tx"]],
            },
        ).json()
        assert rpc["result"]["status"] == "0x1"


def test_two_processes_sending_from_one_account(evm_node: EvmNode) -> None:  # noqa: F811
    """The workers of one deployment share keys (the registrar's, the platform's) and each counts
    the account's nonce itself: after the other sent, a worker's count is stale and the node
    answers "nonce too low" — which failed the request (a flaky 2-worker test showed it). The
    client now reads the count again and sends once more; two clients stand for two processes."""
    from eth_account import Account
    from web3.types import Wei

    from ledger.chain.client import Chain

    first, second = Chain.http(evm_node.url), Chain.http(evm_node.url)
    shared = Account.create()
    dev = first.w3.eth.accounts[0]
    funded = first.w3.eth.send_transaction({"from": dev, "to": shared.address, "value": Wei(10**18)})
    first.wait(funded)
    target = Account.create().address
    for chain in (first, second, first, second, first):
        receipt = chain.send_value(shared, target, 1)
        assert receipt.raw["status"] == 1
    assert first.balance(target) == 5
    assert first.w3.eth.get_transaction_count(shared.address) == 5

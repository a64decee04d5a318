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

"""Contract artifacts and their deployments.

Artifacts are the committed outputs of ``ledger.chain.compile`` (no compiler at run time).
Each contract is deployed once per chain id and its address recorded in the store; on later starts
the recorded address is reused after checking that code is still there — a chain that lost our
contracts (a reset dev node, a deleted embedded chain file) is refused loudly rather than silently
redeployed, which would fork the history the database refers to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.errors import ChainError
from ledger.store.db import Store
from ledger.store.models import ChainContract

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@cache
def load_artifact(name: str) -> dict[str, Any]:
    path = ARTIFACTS / f"{name}.json"
    if not path.is_file():
        raise ChainError(
            f"contract artifact {name} is missing; run `python -m ledger.chain.compile`",
            code="artifact_missing",
        )
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def ensure_deployed(
    chain: Chain, store: Store, deployer: LocalAccount, name: str, args: Sequence[Any]
) -> Contract:
    """Return the contract ``name`` on this chain, deploying it on first use."""
    artifact = load_artifact(name)
    with store.session() as session:
        row = session.scalar(
            select(ChainContract).where(ChainContract.chain_id == chain.chain_id, ChainContract.name == name)
        )
        if row is not None:
            if not chain.code_at(row.address):
                raise ChainError(
                    f"{name} was deployed at {row.address} on chain {chain.chain_id} but the chain has no "
                    "code there: the chain was reset or is not the one this database belongs to",
                    code="contract_missing",
                )
            return chain.contract(row.address, artifact["abi"])
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    chain.register_errors(artifact["abi"])
    receipt = chain.transact(factory.constructor(*args), deployer)
    address = receipt.raw["contractAddress"]
    if address is None:
        raise ChainError(f"deploying {name} returned no contract address", code="deploy_failed")
    with store.session() as session:
        session.add(
            ChainContract(
                chain_id=chain.chain_id,
                name=name,
                address=str(address),
                tx_hash=receipt.tx_hash,
                block_number=receipt.block_number,
            )
        )
    return chain.contract(str(address), artifact["abi"])

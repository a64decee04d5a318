"""The gateway's view of an open contract, and the proof bundle's ``grant`` section for one.

Time: chain clocks run ahead of wall clocks (each block must be at least a second after its parent,
so a burst of transactions pushes block time forward). An access under a contract is therefore
judged at *chain* time: the gateway reads the contract as of the latest block and writes that
block's timestamp into the entry (``chain_time``); a verifier asks ``checkAuthorized`` at that time.

As for share grants (:mod:`ledger.gateway.grants`), the chain is the authority: the contract's
enterprise, window, status, resources, purposes and the keccak of its scope are read from
``OpenContracts`` (cached for ``SHARETRAIL_GRANT_CACHE_SECONDS``); the scope's terms come from the
store and are used only if they hash to the on-chain ``scopeHash``. The store's status — written in
the transaction that suspends or terminates — and the negative list are read on every access, so a
suspension, a termination or a listing is seen at once by every process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.gateway.grants import Denied
from ledger.gateway.query import Condition, parse_row_filter
from ledger.log.events import AccessMode
from ledger.opening import terms
from ledger.sharing.catalog import resource_id_bytes32
from ledger.store.db import Store
from ledger.store.models import NegativeListing, OpenContract
from ledger.types import ContractStatus

CHAIN_EFFECTIVE = 2
_STATUS_REASON = {
    ContractStatus.AWAITING_SIGNATURE: "contract_not_effective",
    ContractStatus.PROPOSED: "contract_not_effective",
    ContractStatus.SUSPENDED: "contract_suspended",
    ContractStatus.TERMINATED: "contract_terminated",
}


@dataclass(frozen=True)
class ContractView:
    contract_id: str
    resource_id: str
    enterprise_id: str
    purpose: str
    fields: list[str]
    row_filter: list[Condition]
    mode: AccessMode
    max_records: int
    chain_time: int


@dataclass
class _Cached:
    chain_time: int
    record: tuple[Any, ...]
    resources: frozenset[bytes]
    purposes: frozenset[bytes]
    at: float


class ContractChecker:
    def __init__(
        self,
        *,
        store: Store,
        chain: Chain,
        contract: Contract,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.chain = chain
        self.contract = contract
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def _on_chain(self, contract_id: str) -> _Cached:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(contract_id)
        if hit is not None and now - hit.at < self.cache_seconds:
            return hit
        raw = bytes.fromhex(contract_id[2:])
        fns = self.contract.functions
        # Read the contract as of one block and keep that block's time: the access is judged at it.
        block = self.chain.latest_block()
        number = int(block["number"])
        found = _Cached(
            chain_time=int(block["timestamp"]),
            record=tuple(self.chain.call(fns.contractOf(raw), block=number)),
            resources=frozenset(bytes(r) for r in self.chain.call(fns.resourcesOf(raw), block=number)),
            purposes=frozenset(bytes(p) for p in self.chain.call(fns.purposesOf(raw), block=number)),
            at=now,
        )
        with self._lock:
            self._cache[contract_id] = found
        return found

    def listed(self, resource_id: str) -> bool:
        """Is the resource on the negative list now (read on every access)?"""
        with self.store.read() as session:
            return bool(
                session.scalar(
                    select(NegativeListing.listed).where(NegativeListing.resource_id == resource_id)
                )
            )

    def check(
        self,
        contract_id: str,
        *,
        accessor_id: str,
        accessor_address: str,
        resource_id: str,
        purpose: str | None,
    ) -> ContractView:
        """The contract's terms for this access if it may be made now; raises ``Denied`` otherwise."""
        if not terms.is_contract_id(contract_id):
            raise Denied("unknown_contract", "contract must be 0x + 64 hex characters (a contract id)")
        contract_id = contract_id.lower()
        with self.store.read() as session:
            row = session.get(OpenContract, contract_id)
            listed = session.scalar(
                select(NegativeListing.listed).where(NegativeListing.resource_id == resource_id)
            )
        if row is None:
            raise Denied("unknown_contract", f"no open contract {contract_id}")
        if row.enterprise_id != accessor_id:
            raise Denied("not_contract_enterprise", "this contract was made with another enterprise")
        scope = json.loads(row.scope_json)
        if resource_id not in scope["resources"]:
            raise Denied("resource_not_in_contract", "this contract does not cover this resource")
        if not purpose:
            raise Denied("purpose_required", "name the purpose of this access (?purpose=code)")
        if purpose not in json.loads(row.purposes_json):
            raise Denied(
                "purpose_not_in_contract", f"purpose {purpose!r} is not among the contract's purposes"
            )
        reason = _STATUS_REASON.get(row.status)
        if reason is not None:
            raise Denied(reason, f"the contract is {row.status.value}")
        if listed:
            raise Denied("negative_listed", "the resource is on the negative list (负面清单)")
        cached = self._on_chain(contract_id)
        record = cached.record
        if int(record[1]) != CHAIN_EFFECTIVE:
            raise Denied("contract_not_effective", "the contract is not effective on chain")
        if str(record[6]).lower() != accessor_address.lower():
            raise Denied("not_contract_enterprise", "the contract's on-chain enterprise is another address")
        if resource_id_bytes32(resource_id) not in cached.resources:
            raise Denied(
                "resource_not_in_contract", "the contract's on-chain resources do not include this one"
            )
        if terms.purpose_hash(purpose) not in cached.purposes:
            raise Denied(
                "purpose_not_in_contract", "the contract's on-chain purposes do not include this one"
            )
        now = int(datetime.now(UTC).timestamp())
        if now < int(record[7]):
            raise Denied("contract_not_yet_valid", "the contract's validity window has not started")
        if now >= int(record[8]):
            raise Denied("contract_expired", "the contract has expired")
        if terms.scope_hash(scope) != bytes(record[13]):
            raise Denied(
                "scope_mismatch", "the stored scope does not match the contract's on-chain scope hash"
            )
        granted = scope["resources"][resource_id]
        return ContractView(
            contract_id=contract_id,
            resource_id=resource_id,
            enterprise_id=row.enterprise_id,
            purpose=purpose,
            fields=list(granted["fields"]),
            row_filter=parse_row_filter(granted.get("row_filter") or {}),
            mode=AccessMode(granted["mode"]),
            max_records=int(granted["max_records"]),
            chain_time=cached.chain_time,
        )


def contract_evidence(
    store: Store, *, chain_id: int, contract: str
) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """The bundle's ``grant`` section for an entry made under an open contract: the contract id, where
    it lives on chain, its scope (which hashes to the on-chain ``scopeHash``), its terms hash, and the
    EIP-712 documents and signatures of every party — the operator's proposal and each acceptance, or
    for an application-backed contract the enterprise's application and the two reviews."""

    def evidence(entry: dict[str, Any]) -> dict[str, Any] | None:
        contract_id = entry.get("contract")
        if not isinstance(contract_id, str) or not terms.is_contract_id(contract_id):
            return None
        with store.read() as session:
            row = session.get(OpenContract, contract_id.lower())
        if row is None or row.proposal_signature is None:
            return None
        signatures = json.loads(row.signatures_json)
        return {
            "type": "open_contract",
            "contract_id": row.id,
            "kind": row.kind.value,
            "chain_id": chain_id,
            "contract": contract,
            "scope": json.loads(row.scope_json),
            "purposes": json.loads(row.purposes_json),
            "terms_hash": row.terms_hash,
            "terms_uri": row.terms_uri,
            "proposal": {
                "typed_data": json.loads(row.proposal_typed_data),
                "signature": row.proposal_signature,
                "tx_hash": row.proposal_tx,
            },
            "signatures": [
                {
                    "party_id": party_id,
                    "address": s["address"],
                    "typed_data": s["typed_data"],
                    "signature": s["signature"],
                    "tx_hash": s["tx_hash"],
                }
                for party_id, s in sorted(signatures.items())
            ],
        }

    return evidence

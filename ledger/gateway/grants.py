"""The gateway's view of a grant: the scope from the store, proven against the chain.

The chain is the authority: a grant's grantee, resource, validity, access cap, status and the
keccak hash of its scope are read from ``ShareLedger.grantOf``; the scope's terms (fields, row filter,
mode, caps) come from the store and are used only if they hash to the on-chain ``scopeHash`` — an
operator who edits a scope in the database gets ``scope_mismatch``, not wider access.

Chain reads are cached for ``SHARETRAIL_GRANT_CACHE_SECONDS`` (a view call per access would cost
more than the access). A revocation is seen at once by every process all the same: the store's
``revoked_tx`` is read on each access (and drops the cached chain read).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import bindparam, select
from web3.contract.contract import Contract

from ledger.canonical import canonical_json
from ledger.chain.client import Chain
from ledger.gateway.query import Condition, parse_row_filter
from ledger.log.events import AccessMode
from ledger.sharing.catalog import resource_id_bytes32
from ledger.store.db import Store
from ledger.store.models import ShareRequest

GRANT_ACTIVE = 1
GRANT_REVOKED = 2


class Denied(Exception):
    """An access refused for ``reason`` (a stable code, also written in the ``denied`` event)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class GrantView:
    grant_id: str
    request_id: str
    resource_id: str
    grantee_id: str
    provider_id: str
    grantee_address: str
    purpose: str
    fields: list[str]
    row_filter: list[Condition]
    mode: AccessMode
    max_records: int
    max_accesses: int
    valid_from: int
    valid_until: int
    chain_time: int  # when the access is judged, on the chain's clock (see ``check``)


@dataclass
class _Cached:
    record: tuple[Any, ...]
    chain_time: int
    at: float


class GrantChecker:
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
        self._scopes: dict[tuple[str, bytes], _Scope] = {}
        self._lock = threading.Lock()

    def invalidate(self, grant_id: str) -> None:
        with self._lock:
            self._cache.pop(grant_id.lower(), None)

    def _on_chain(self, grant_id: str) -> _Cached:
        """The grant's on-chain record as of one block, with that block's time: the access is judged
        at it, and its entry carries it (``chain_time``), so a verifier judges it at the same time —
        a revocation in a later block does not make an earlier access look unauthorized, nor the
        other way round."""
        key = grant_id.lower()
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit.at < self.cache_seconds:
            return hit
        block = self.chain.latest_block()
        fn = self.contract.functions.grantOf(bytes.fromhex(grant_id[2:]))
        found = _Cached(tuple(self.chain.call(fn, block=block["number"])), block["timestamp"], now)
        with self._lock:
            self._cache[key] = found
        return found

    def check(self, grant_id: str, *, accessor_id: str, accessor_address: str, resource_id: str) -> GrantView:
        """The grant if ``accessor`` may use it for ``resource`` now; raises ``Denied`` otherwise.

        The access cap is not checked here: it is counted in the transaction that logs the access.
        """
        if not _is_grant_id(grant_id):
            raise Denied("unknown_grant", "grant must be 0x + 64 hex characters (a grant id)")
        with self.store.read_core() as conn:  # the columns the check needs, not the signed documents
            row = conn.execute(_GRANT_ROW, {"grant": grant_id.lower()}).one_or_none()
        if row is None:
            raise Denied("unknown_grant", f"no grant {grant_id}")
        if row.requester_id != accessor_id:
            raise Denied("not_grantee", "this grant was issued to another party")
        if row.resource_id != resource_id:
            raise Denied("wrong_resource", "this grant is for another resource")
        if row.revoked_tx:
            self.invalidate(grant_id)
            raise Denied("revoked", "the grant was revoked")
        read = self._on_chain(grant_id)
        resource_b32, grantee, _purpose, scope_hash, valid_from, valid_until, max_accesses, status = (
            read.record
        )
        if int(status) == GRANT_REVOKED:
            raise Denied("revoked", "the grant was revoked on chain")
        if int(status) != GRANT_ACTIVE:
            raise Denied("unknown_grant", f"grant {grant_id} is not on chain")
        if str(grantee).lower() != accessor_address.lower():
            raise Denied("not_grantee", "the grant's on-chain grantee is another address")
        if bytes(resource_b32) != resource_id_bytes32(resource_id):
            raise Denied("wrong_resource", "the grant's on-chain resource is another one")
        # The access happens at ``at`` on the chain's clock: no earlier than the block the record
        # was read at (the chain may run ahead of this server), nor than now (an idle chain mines no
        # block; the record holds until the next one, whose time will not be earlier than now). The
        # entry carries it as ``chain_time``; a verifier checks the window and revocation at it.
        now = int(datetime.now(UTC).timestamp())
        at = max(now, read.chain_time)
        if now < int(valid_from):
            raise Denied("not_yet_valid", "the grant's validity window has not started")
        if at >= int(valid_until):
            raise Denied("expired", "the grant has expired")
        scope = self._scope(row.scope_json, bytes(scope_hash))
        return GrantView(
            grant_id=grant_id.lower(),
            request_id=row.id,
            resource_id=row.resource_id,
            grantee_id=row.requester_id,
            provider_id=row.provider_id,
            grantee_address=str(grantee),
            purpose=row.purpose_code,
            fields=list(scope.fields),
            row_filter=list(scope.row_filter),
            mode=scope.mode,
            max_records=scope.max_records,
            max_accesses=int(max_accesses),
            valid_from=int(valid_from),
            valid_until=int(valid_until),
            chain_time=at,
        )

    def _scope(self, scope_json: str, scope_hash: bytes) -> _Scope:
        """The stored scope's terms, once it is shown to hash to the on-chain ``scopeHash`` — a check
        remembered per (stored text, on-chain hash): both are what it depends on."""
        key = (scope_json, scope_hash)
        with self._lock:
            known = self._scopes.get(key)
        if known is not None:
            return known
        scope = json.loads(scope_json)
        if keccak(canonical_json(scope)) != scope_hash:
            raise Denied("scope_mismatch", "the stored scope does not match the grant's on-chain scope hash")
        terms = _Scope(
            fields=tuple(scope["fields"]),
            row_filter=tuple(parse_row_filter(scope.get("row_filter") or {})),
            mode=AccessMode(scope.get("mode", "raw")),
            max_records=int(scope["max_records"]),
        )
        with self._lock:
            if len(self._scopes) >= 4096:
                self._scopes.clear()
            self._scopes[key] = terms
        return terms


_GRANT_ROW = select(
    ShareRequest.id,
    ShareRequest.requester_id,
    ShareRequest.resource_id,
    ShareRequest.provider_id,
    ShareRequest.purpose_code,
    ShareRequest.revoked_tx,
    ShareRequest.scope_json,
).where(ShareRequest.grant_id == bindparam("grant"))


@dataclass(frozen=True)
class _Scope:
    fields: tuple[str, ...]
    row_filter: tuple[Condition, ...]
    mode: AccessMode
    max_records: int


def _is_grant_id(value: str) -> bool:
    if len(value) != 66 or not value.startswith("0x"):
        return False
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        return False
    return True


def grant_evidence(
    store: Store, *, chain_id: int, contract: str
) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """The bundle's ``grant`` section for an entry made under a grant: the grant id, where it lives
    on chain, and the EIP-712 documents and signatures of the request and the decision that created
    it — so a verifier can recover each signer and read ``grantOf`` with nothing but a chain endpoint."""

    def evidence(entry: dict[str, Any]) -> dict[str, Any] | None:
        grant_id = entry.get("grant")
        if not isinstance(grant_id, str) or not _is_grant_id(grant_id):
            return None
        with store.read() as session:
            row = session.scalar(select(ShareRequest).where(ShareRequest.grant_id == grant_id.lower()))
        if row is None:
            return None
        return {
            "type": "share_grant",
            "grant_id": row.grant_id,
            "request_id": row.id,
            "chain_id": chain_id,
            "contract": contract,
            "scope": json.loads(row.scope_json),
            "request": {
                "typed_data": json.loads(row.request_typed_data),
                "signature": row.request_signature,
                "tx_hash": row.request_tx,
            },
            "decision": None
            if row.decision_typed_data is None
            else {
                "typed_data": json.loads(row.decision_typed_data),
                "signature": row.decision_signature,
                "tx_hash": row.decision_tx,
            },
            "cosign_txs": json.loads(row.cosign_txs),
        }

    return evidence

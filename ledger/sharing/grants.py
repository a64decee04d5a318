"""Grants (DESIGN.md "Grant"): what an approval, or an unconditional resource, creates on chain —
grantee, resource, purpose hash, scope hash, validity, access cap, status (active, revoked, expired).

The chain is the authority: ``grantOf`` for the terms and status, ``checkAuthorized`` for whether
a party may use a grant now (expiry is by time, without a transaction). Revocation is signed by the
resource's provider or a registrar, custodially or in client mode (:mod:`ledger.sharing.consent`),
and logged (kind ``revoke``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak
from sqlalchemy import select

from ledger.errors import Conflict, ContractRevert, Forbidden, InvalidInput, NotFound
from ledger.sharing.consent import Relayed, renonce
from ledger.store.models import Party, ShareRequest
from ledger.types import PartyKind, Signing

if TYPE_CHECKING:
    from ledger.sharing.requests import ShareService


def request_id_bytes32(request_id: str) -> bytes:
    return bytes(16) + bytes.fromhex(request_id)


def grant_id_of(request_id: str) -> str:
    """A grant's id is its request's (ShareLedger: grantId = requestId)."""
    return "0x" + request_id_bytes32(request_id).hex()


def per_signer(raw: str | None) -> dict[str, Any]:
    """A JSON column of documents pending per signer (party id)."""
    found: dict[str, Any] = json.loads(raw) if raw else {}
    return found


def pending_revocation(row: ShareRequest, viewer_id: str) -> dict[str, Any] | None:
    """The Revocation document ``viewer_id`` was given to sign (client mode), if any."""
    entry = per_signer(row.revoke_pending_json).get(viewer_id)
    return None if entry is None else dict(entry["typed_data"])


# ShareLedger.checkAuthorized's custom errors → the API's codes (403), the same words as the data
# gateway's refusals (ledger.gateway.grants), so a client meets one vocabulary.
_AUTHORIZATION_ERRORS = {
    "not_active": "unknown_grant",
    "grant_is_revoked": "revoked",
    "not_grantee": "not_grantee",
    "grant_not_yet_valid": "not_yet_valid",
    "grant_expired": "expired",
}


class GrantService:
    def __init__(self, sharing: ShareService) -> None:
        self.s = sharing

    # -- grants -------------------------------------------------------------------------------------
    def grant(self, caller: Party, grant_id: str) -> dict[str, Any]:
        row = self.by_grant(caller, grant_id)
        g = self.s.chain.call(self.s.contract.functions.grantOf(bytes.fromhex(grant_id[2:])))
        status = {1: "active", 2: "revoked"}.get(int(g[7]), "none")
        if status == "active" and int(g[5]) <= int(datetime.now(UTC).timestamp()):
            status = "expired"
        return {
            "grant_id": grant_id,
            "request_id": row.id,
            "resource_id": row.resource_id,
            "grantee": row.requester_id,
            "grantee_address": g[1],
            "purpose_hash": "0x" + bytes(g[2]).hex(),
            "scope_hash": "0x" + bytes(g[3]).hex(),
            "valid_from": int(g[4]),
            "valid_until": int(g[5]),
            "max_accesses": int(g[6]),
            "status": status,
            "scope": json.loads(row.scope_json),
            "revoked_tx": row.revoked_tx,
            "typed_data": pending_revocation(row, caller.id),
        }

    def by_grant(self, caller: Party, grant_id: str) -> ShareRequest:
        with self.s.store.read() as session:
            row = session.scalar(select(ShareRequest).where(ShareRequest.grant_id == grant_id))
        if row is None or not self.s._visible(caller, row):
            raise NotFound(f"no grant {grant_id}", code="grant_not_found")
        return row

    def authorize(self, caller: Party, grant_id: str, at: datetime | None = None) -> dict[str, Any]:
        """Return if ``caller`` may use the grant at ``at`` (default now), else raise Forbidden naming the
        cause — the on-chain ``checkAuthorized``. (The gateway reads ``grantOf`` instead: it also needs
        the scope hash, and caches the read.)"""
        row = self.by_grant(caller, grant_id)
        when = int((at or datetime.now(UTC)).timestamp())
        fn = self.s.contract.functions.checkAuthorized(bytes.fromhex(grant_id[2:]), caller.address, when)
        try:
            self.s.chain.call(fn)
        except ContractRevert as exc:
            code = _AUTHORIZATION_ERRORS.get(exc.code)
            if code is None:
                raise
            raise Forbidden(f"grant {grant_id} does not authorize you: {exc.message}", code=code) from exc
        return {
            "grant_id": grant_id,
            "request_id": row.id,
            "accessor": caller.id,
            "at": when,
            "authorized": True,
        }

    def revoke(
        self, caller: Party, grant_id: str, reason: str, signing: Signing = Signing.CUSTODIAL
    ) -> dict[str, Any]:
        row = self._revocable_by(caller, grant_id)
        if not reason.strip():
            raise InvalidInput("a revocation states its reason", code="reason_required")
        if int(self.s.chain.call(self.s.contract.functions.grantOf(bytes.fromhex(grant_id[2:])))[7]) != 1:
            raise Conflict(f"grant {grant_id} is not active (already revoked)", code="not_active")
        document = self.s.consent.typed(
            "Revocation",
            {
                "grantId": bytes.fromhex(grant_id[2:]),
                "reasonHash": keccak(text=reason),
                "nonce": self.s.consent.nonce(caller.address),
            },
        )
        signature = self.s.consent.sign(caller, document, signing)
        if signature is None:
            self._keep_revocation(row.id, caller.id, {"typed_data": document, "reason": reason})
            return self.grant(caller, grant_id)
        return self._revoke_on_chain(row, caller, document, signature, reason, custodial=True)

    def _revocable_by(self, caller: Party, grant_id: str) -> ShareRequest:
        row = self.by_grant(caller, grant_id)
        if caller.id != row.provider_id and caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden(
                "only the provider or the registrar revokes a grant", code="not_authorized_to_revoke"
            )
        return row

    def revoke_signature(self, caller: Party, grant_id: str, signature: str) -> dict[str, Any]:
        row = self._revocable_by(caller, grant_id)
        entry = per_signer(row.revoke_pending_json).get(caller.id)
        if entry is None:
            raise Conflict(
                f"no revocation of grant {grant_id} awaits your signature", code="not_awaiting_signature"
            )
        document = entry["typed_data"]
        raw = self.s.consent.check(document, signature, caller.address)
        return self._revoke_on_chain(row, caller, document, raw, entry["reason"], custodial=False)

    def _keep_revocation(self, request_id: str, party_id: str, entry: dict[str, Any]) -> None:
        def update(stored: ShareRequest) -> None:
            pending = per_signer(stored.revoke_pending_json)
            pending[party_id] = entry
            stored.revoke_pending_json = json.dumps(pending, ensure_ascii=False)

        self.s._store(request_id, update)

    def _revoke_on_chain(
        self,
        row: ShareRequest,
        caller: Party,
        document: dict[str, Any],
        signature: bytes,
        reason: str,
        *,
        custodial: bool,
    ) -> dict[str, Any]:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            if not custodial:
                self._keep_revocation(row.id, caller.id, {"typed_data": fresh, "reason": reason})
            return fresh

        relayed: Relayed = self.s.consent.relay(
            "revoke", document, signature, signer=caller, custodial=custodial, reissue=reissue
        )

        def update(stored: ShareRequest) -> None:
            stored.revoked_tx, stored.revoke_pending_json = relayed.receipt.tx_hash, None

        self.s._store(row.id, update)
        grant_id = grant_id_of(row.id)
        self.s._log(
            "revoke",
            f"revoke:{row.id}",
            caller.id,
            row.resource_id,
            {
                "grant": grant_id,
                "request": row.id,
                "reason_hash": "0x" + keccak(text=reason).hex(),
                "tx_hash": relayed.receipt.tx_hash,
            },
        )
        return self.grant(caller, grant_id)

"""Share requests, decisions, co-signatures, grants and revocations (筑府发〔2017〕6号).

- A department requests data for a stated purpose (a code from the vocabulary plus free text; only
  hashes go on chain) and scope, signing the EIP-712 ``Request`` itself: custodially (the server
  holds its key) or in client mode (the response carries ``typed_data``; ``POST …/signature``).
- Unconditional resources are granted by the contract in the same transaction (智能合约自动共享).
- The provider answers conditional requests within 10 working days from the application date with
  a reason (自申请之日起10个工作日内反馈意见并说明理由); a late answer is accepted and marked late;
  an unanswered request past ``respond_by`` lists as ``overdue``.
- Level ≥ 3 resources also need the registrar's co-signature(s) (多签), counted on chain.
- Every state change is also an entry of the access log, so the regulator's trail is one sequence.
The API only relays: the contract checks each signature with ecrecover.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import or_, select
from web3.contract.contract import Contract

from ledger import purposes, workdays
from ledger.canonical import canonical_json
from ledger.chain.client import Chain
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.identity.parties import PartyService
from ledger.log.events import AccessMode
from ledger.log.store import LogStore, NewEntry
from ledger.sharing import eip712
from ledger.sharing.catalog import CatalogService, resource_id_bytes32
from ledger.store.db import Store
from ledger.store.models import Party, ShareRequest
from ledger.types import Custody, PartyKind, RequestStatus, ShareType, Signing

CHINA = ZoneInfo("Asia/Shanghai")
_CHAIN_STATUS = {
    1: RequestStatus.PENDING,
    2: RequestStatus.AWAITING_COSIGN,
    3: RequestStatus.GRANTED,
    4: RequestStatus.REJECTED,
}
AUDITORS = (PartyKind.REGISTRAR, PartyKind.REGULATOR)


@dataclass(frozen=True)
class Scope:
    fields: list[str]
    valid_from: datetime
    valid_until: datetime
    mode: AccessMode = AccessMode.RAW
    max_records: int = 1000
    max_accesses: int = 100
    row_filter: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "fields": sorted(self.fields),
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
            "mode": self.mode.value,
            "max_records": self.max_records,
            "max_accesses": self.max_accesses,
            "row_filter": self.row_filter,
        }

    def digest(self) -> bytes:
        return keccak(canonical_json(self.as_json()))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def today_in_china() -> date:
    return datetime.now(CHINA).date()


def request_overdue(row: ShareRequest) -> bool:
    """Unanswered past ``respond_by`` (10 working days from the application date)."""
    return row.status is RequestStatus.PENDING and today_in_china() > row.respond_by


def request_id_bytes32(request_id: str) -> bytes:
    return bytes(16) + bytes.fromhex(request_id)


def grant_id_of(request_id: str) -> str:
    return "0x" + request_id_bytes32(request_id).hex()


class ShareService:
    def __init__(
        self,
        *,
        store: Store,
        chain: Chain,
        contract: Contract,
        parties: PartyService,
        catalog: CatalogService,
        log: LogStore,
        relayer: LocalAccount,
    ) -> None:
        self.store = store
        self.chain = chain
        self.contract = contract
        self.parties = parties
        self.catalog = catalog
        self.log = log
        self.relayer = relayer

    # -- helpers ------------------------------------------------------------------------------------
    def _typed(self, primary: str, message: dict[str, Any]) -> dict[str, Any]:
        return eip712.typed_data(
            primary, message, chain_id=self.chain.chain_id, contract=self.contract.address
        )

    def _nonce(self, address: str) -> int:
        return int(self.chain.call(self.contract.functions.nonces(address)))

    def _signature_of(self, signer: Party, document: dict[str, Any], signing: Signing) -> bytes | None:
        if signing is Signing.CLIENT:
            return None
        if signer.custody is Custody.CLIENT:
            raise Conflict(
                f'party {signer.id} keeps its own key: use "signing": "client"', code="client_custody"
            )
        return eip712.sign(self.parties.signer(signer), document)

    @staticmethod
    def _check_signature(document: dict[str, Any], signature: str, expected: str) -> bytes:
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
            signer = eip712.recover(document, raw)
        except Exception as exc:
            raise InvalidInput(
                "the signature is not a valid secp256k1 signature", code="invalid_signature"
            ) from exc
        if signer.lower() != expected.lower():
            raise InvalidInput(f"the signature is by {signer}, not by {expected}", code="wrong_signer")
        return raw

    def _log(self, kind: str, event_id: str, accessor: str, resource: str, body: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        event = {
            "v": 1,
            "kind": kind,
            "event_id": event_id,
            "accessor": accessor,
            "resource": resource,
            "time": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            **body,
        }
        self.log.append(
            [
                NewEntry(
                    event_id=event_id, kind=kind, time=now, event=event, accessor=accessor, resource=resource
                )
            ]
        )

    def _settle(
        self, row: ShareRequest, update: Callable[[ShareRequest], None]
    ) -> tuple[ShareRequest, RequestStatus]:
        """After a transaction: store the request's status as the chain now has it (and the grant
        id once granted), together with the step's own fields set by ``update``."""
        status = self._chain_status(row.id)
        with self.store.session() as session:
            stored = session.get(ShareRequest, row.id)
            assert stored is not None
            stored.status = status
            if status is RequestStatus.GRANTED:
                stored.grant_id = grant_id_of(row.id)
            update(stored)
        return stored, status

    def _log_grant(self, row: ShareRequest, status: RequestStatus, tx_hash: str, **extra: Any) -> None:
        if status is RequestStatus.GRANTED:
            body = {"grant": row.grant_id, "request": row.id, **extra, "tx_hash": tx_hash}
            self._log("grant", f"grant:{row.id}", row.requester_id, row.resource_id, body)

    def _chain_status(self, request_id: str) -> RequestStatus:
        record = self.chain.call(self.contract.functions.requestOf(request_id_bytes32(request_id)))
        return _CHAIN_STATUS.get(int(record[3]), RequestStatus.PENDING)

    def get(self, caller: Party, request_id: str) -> ShareRequest:
        with self.store.read() as session:
            row = session.get(ShareRequest, request_id)
        if row is None or not self._visible(caller, row):
            raise NotFound(f"no share request {request_id}", code="request_not_found")
        return row

    @staticmethod
    def _visible(caller: Party, row: ShareRequest) -> bool:
        return caller.kind in AUDITORS or caller.id in (row.requester_id, row.provider_id)

    # -- requests -----------------------------------------------------------------------------------
    def submit(
        self,
        caller: Party,
        *,
        resource_id: str,
        purpose_code: str,
        purpose_text: str,
        legal_basis: str,
        scope: Scope,
        signing: Signing,
    ) -> ShareRequest:
        if caller.kind is not PartyKind.DEPARTMENT:
            raise Forbidden("only a department requests shared data", code="forbidden_role")
        resource = self.catalog.get(resource_id)
        if resource.share_type is ShareType.NONE:
            raise Conflict(f"resource {resource.code} is not shared (不予共享)", code="not_shareable")
        if resource.provider_id == caller.id:
            raise Conflict("a department does not request its own data", code="own_resource")
        purposes.get(purpose_code)
        known = {f["name"] for f in json.loads(resource.metadata_json)["fields"]}
        unknown = sorted(set(scope.fields) - known)
        if unknown:
            raise InvalidInput(f"fields not in the resource: {', '.join(unknown)}", code="unknown_field")
        if scope.valid_from >= scope.valid_until:
            raise InvalidInput("valid_from must be before valid_until", code="invalid_window")
        request_id = uuid.uuid4().hex
        applied = today_in_china()
        document = self._typed(
            "Request",
            {
                "requestId": request_id_bytes32(request_id),
                "resourceId": resource_id_bytes32(resource.id),
                "requester": caller.address,
                "purposeHash": purposes.purpose_hash(purpose_code, purpose_text),
                "scopeHash": scope.digest(),
                "validFrom": _epoch(scope.valid_from),
                "validUntil": _epoch(scope.valid_until),
                "maxAccesses": scope.max_accesses,
                "nonce": self._nonce(caller.address),
            },
        )
        row = ShareRequest(
            id=request_id,
            resource_id=resource.id,
            requester_id=caller.id,
            provider_id=resource.provider_id,
            purpose_code=purpose_code,
            purpose_text=purpose_text,
            legal_basis=legal_basis,
            scope_json=json.dumps(scope.as_json(), ensure_ascii=False),
            status=RequestStatus.AWAITING_SIGNATURE,
            applied_on=applied,
            respond_by=workdays.respond_by(applied),
            request_typed_data=json.dumps(document),
            late=False,
            cosign_txs="[]",
        )
        signature = self._signature_of(caller, document, signing)
        with self.store.session() as session:
            session.add(row)
        if signature is None:
            return row
        return self._submit_on_chain(row, document, signature)

    def submit_signature(self, caller: Party, request_id: str, signature: str) -> ShareRequest:
        row = self.get(caller, request_id)
        if row.requester_id != caller.id:
            raise Forbidden("only the requester signs its request", code="not_requester")
        if row.status is not RequestStatus.AWAITING_SIGNATURE:
            raise Conflict(
                f"request {request_id} is {row.status.value}, not awaiting a signature",
                code="not_awaiting_signature",
            )
        document = json.loads(row.request_typed_data)
        raw = self._check_signature(document, signature, caller.address)
        return self._submit_on_chain(row, document, raw)

    def _submit_on_chain(self, row: ShareRequest, document: dict[str, Any], signature: bytes) -> ShareRequest:
        fn = self.contract.functions.submitRequest(eip712.as_tuple(document), signature)
        receipt = self.chain.transact(fn, self.relayer)

        def update(stored: ShareRequest) -> None:
            stored.request_tx, stored.request_signature = receipt.tx_hash, "0x" + signature.hex()

        row, status = self._settle(row, update)
        body = {
            "request": row.id,
            "requester": row.requester_id,
            "provider": row.provider_id,
            "purpose": row.purpose_code,
            "scope_hash": "0x" + keccak(canonical_json(json.loads(row.scope_json))).hex(),
            "respond_by": row.respond_by.isoformat(),
            "tx_hash": receipt.tx_hash,
        }
        self._log("request", f"request:{row.id}", row.requester_id, row.resource_id, body)
        self._log_grant(row, status, receipt.tx_hash, automatic=True)
        return row

    # -- decisions ----------------------------------------------------------------------------------
    def decide(
        self,
        caller: Party,
        request_id: str,
        *,
        approve: bool,
        reason: str,
        conditions: Scope | None,
        signing: Signing,
    ) -> ShareRequest:
        row = self.get(caller, request_id)
        if row.provider_id != caller.id:
            raise Forbidden("only the resource's provider decides", code="not_provider")
        if row.status is not RequestStatus.PENDING:
            raise Conflict(f"request {request_id} is {row.status.value}, not pending", code="not_pending")
        if not approve and not reason.strip():
            raise InvalidInput("a rejection states its reason (说明理由)", code="reason_required")
        scope = json.loads(row.scope_json)
        terms = conditions.as_json() if conditions is not None else scope
        valid_from = datetime.fromisoformat(terms["valid_from"].replace("Z", "+00:00"))
        valid_until = datetime.fromisoformat(terms["valid_until"].replace("Z", "+00:00"))
        document = self._typed(
            "Decision",
            {
                "requestId": request_id_bytes32(row.id),
                "approve": approve,
                "conditionsHash": keccak(canonical_json(terms)),
                "reasonHash": keccak(text=reason),
                "validFrom": _epoch(valid_from),
                "validUntil": _epoch(valid_until),
                "maxAccesses": int(terms["max_accesses"]),
                "nonce": self._nonce(caller.address),
            },
        )
        signature = self._signature_of(caller, document, signing)
        with self.store.session() as session:
            stored = session.get(ShareRequest, row.id)
            assert stored is not None
            stored.decision_typed_data, stored.reason = json.dumps(document), reason
            stored.scope_json = json.dumps(terms, ensure_ascii=False)
            if signature is None:
                stored.status = RequestStatus.AWAITING_DECISION_SIGNATURE
            row = stored
        if signature is None:
            return row
        return self._decide_on_chain(row, document, signature)

    def decision_signature(self, caller: Party, request_id: str, signature: str) -> ShareRequest:
        row = self.get(caller, request_id)
        if row.provider_id != caller.id:
            raise Forbidden("only the resource's provider signs the decision", code="not_provider")
        if row.status is not RequestStatus.AWAITING_DECISION_SIGNATURE or row.decision_typed_data is None:
            raise Conflict(
                f"request {request_id} has no decision awaiting a signature", code="not_awaiting_signature"
            )
        document = json.loads(row.decision_typed_data)
        return self._decide_on_chain(
            row, document, self._check_signature(document, signature, caller.address)
        )

    def _decide_on_chain(self, row: ShareRequest, document: dict[str, Any], signature: bytes) -> ShareRequest:
        receipt = self.chain.transact(
            self.contract.functions.decide(eip712.as_tuple(document), signature), self.relayer
        )
        decided = today_in_china()

        def update(stored: ShareRequest) -> None:
            stored.decision_tx, stored.decided_on = receipt.tx_hash, decided
            stored.decision_signature = "0x" + signature.hex()
            stored.late = decided > stored.respond_by

        row, status = self._settle(row, update)
        approve = bool(document["message"]["approve"])
        self._log(
            "decision",
            f"decision:{row.id}",
            row.provider_id,
            row.resource_id,
            {
                "request": row.id,
                "approve": approve,
                "late": row.late,
                "reason_hash": document["message"]["reasonHash"],
                "tx_hash": receipt.tx_hash,
            },
        )
        self._log_grant(row, status, receipt.tx_hash)
        return row

    def cosign(self, caller: Party, request_id: str) -> ShareRequest:
        row = self.get(caller, request_id)
        if caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the registrar co-signs (多签)", code="not_registrar")
        if row.status is not RequestStatus.AWAITING_COSIGN or row.decision_typed_data is None:
            raise Conflict(
                f"request {request_id} is {row.status.value}, not awaiting a co-signature",
                code="not_awaiting_cosign",
            )
        decision = json.loads(row.decision_typed_data)
        decision_hash = bytes(
            self.chain.call(self.contract.functions.decisionStructHash(eip712.as_tuple(decision)))
        )
        document = self._typed(
            "Cosign",
            {
                "requestId": request_id_bytes32(row.id),
                "decisionHash": decision_hash,
                "nonce": self._nonce(caller.address),
            },
        )
        signature = self._signature_of(caller, document, Signing.CUSTODIAL)
        assert signature is not None
        receipt = self.chain.transact(
            self.contract.functions.cosign(eip712.as_tuple(document), signature), self.relayer
        )

        def update(stored: ShareRequest) -> None:
            stored.cosign_txs = json.dumps([*json.loads(stored.cosign_txs), receipt.tx_hash])

        row, status = self._settle(row, update)
        self._log_grant(row, status, receipt.tx_hash, cosigned_by=caller.id)
        return row

    # -- grants -------------------------------------------------------------------------------------
    def grant(self, caller: Party, grant_id: str) -> dict[str, Any]:
        row = self._by_grant(caller, grant_id)
        g = self.chain.call(self.contract.functions.grantOf(bytes.fromhex(grant_id[2:])))
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
        }

    def _by_grant(self, caller: Party, grant_id: str) -> ShareRequest:
        with self.store.read() as session:
            row = session.scalar(select(ShareRequest).where(ShareRequest.grant_id == grant_id))
        if row is None or not self._visible(caller, row):
            raise NotFound(f"no grant {grant_id}", code="grant_not_found")
        return row

    def revoke(self, caller: Party, grant_id: str, reason: str) -> dict[str, Any]:
        row = self._by_grant(caller, grant_id)
        if caller.id != row.provider_id and caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden(
                "only the provider or the registrar revokes a grant", code="not_authorized_to_revoke"
            )
        if not reason.strip():
            raise InvalidInput("a revocation states its reason", code="reason_required")
        document = self._typed(
            "Revocation",
            {
                "grantId": bytes.fromhex(grant_id[2:]),
                "reasonHash": keccak(text=reason),
                "nonce": self._nonce(caller.address),
            },
        )
        signature = self._signature_of(caller, document, Signing.CUSTODIAL)
        assert signature is not None
        receipt = self.chain.transact(
            self.contract.functions.revoke(eip712.as_tuple(document), signature), self.relayer
        )
        with self.store.session() as session:
            stored = session.get(ShareRequest, row.id)
            assert stored is not None
            stored.revoked_tx = receipt.tx_hash
        self._log(
            "revoke",
            f"revoke:{row.id}",
            caller.id,
            row.resource_id,
            {
                "grant": grant_id,
                "request": row.id,
                "reason_hash": "0x" + keccak(text=reason).hex(),
                "tx_hash": receipt.tx_hash,
            },
        )
        return self.grant(caller, grant_id)

    # -- listing ------------------------------------------------------------------------------------
    def find(self, caller: Party, status: str | None = None) -> list[ShareRequest]:
        query = select(ShareRequest).order_by(ShareRequest.created_at)
        if caller.kind not in AUDITORS:
            query = query.where(
                or_(ShareRequest.requester_id == caller.id, ShareRequest.provider_id == caller.id)
            )
        if status == "overdue":
            query = query.where(
                ShareRequest.status == RequestStatus.PENDING, ShareRequest.respond_by < today_in_china()
            )
        elif status is not None:
            try:
                query = query.where(ShareRequest.status == RequestStatus(status))
            except ValueError as exc:
                allowed = ", ".join([*(s.value for s in RequestStatus), "overdue"])
                raise InvalidInput(f"status must be one of {allowed}", code="invalid_status") from exc
        with self.store.read() as session:
            return list(session.scalars(query))

"""Share requests, decisions, co-signatures, grants and revocations (筑府发〔2017〕6号).

- A department requests data for a stated purpose (a code from the vocabulary plus free text; only
  hashes go on chain) and scope, signing the EIP-712 ``Request`` itself: custodially (the server
  holds its key) or in client mode (the response carries ``typed_data``; ``POST …/signature``).
- Unconditional resources are granted by the contract in the same transaction (智能合约自动共享).
- The provider answers conditional requests within 10 working days from the application date with
  a reason (自申请之日起10个工作日内反馈意见并说明理由); a late answer is accepted and marked late;
  an unanswered request past ``respond_by`` lists as ``overdue``.
- A request's scope and a decision's conditions are checked before anything is stored or signed
  (:mod:`ledger.sharing.conditions`): conditions may only narrow what the requester signed. The
  request's scope and reason become the decision's only once the chain confirms it; of decisions
  racing on one request the contract takes one, the others answer 409 ``not_pending``.
- Level ≥ 3 resources also need the registrar's co-signature(s) (多签), counted on chain.
- The share type is checked again when the provider approves and when a registrar co-signs: a version
  published since the request may have made the resource 不予共享, and then nothing is granted.
- Every signature (request, decision, co-signature, revocation) is custodial or client-mode; see
  :mod:`ledger.sharing.consent`, which also re-issues a document whose nonce went stale.
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
from ledger.errors import Conflict, ContractRevert, Forbidden, InvalidInput, NotFound
from ledger.identity.parties import PartyService
from ledger.log.events import AccessMode
from ledger.log.store import LogStore, NewEntry
from ledger.sharing import eip712
from ledger.sharing.catalog import CatalogService, resource_id_bytes32
from ledger.sharing.conditions import (
    Conditions,
    check_instant,
    check_request,
    check_window,
    decision_terms,
    iso,
    parse_iso,
)
from ledger.sharing.consent import Consent, renonce
from ledger.sharing.grants import GrantService, grant_id_of, per_signer, request_id_bytes32
from ledger.sharing.pending import PendingDecision, unpack
from ledger.store.db import Store
from ledger.store.models import Party, Resource, ShareRequest
from ledger.types import PartyKind, RequestStatus, ShareType, Signing

CHINA = ZoneInfo("Asia/Shanghai")
_CHAIN_STATUS = {
    1: RequestStatus.PENDING,
    2: RequestStatus.AWAITING_COSIGN,
    3: RequestStatus.GRANTED,
    4: RequestStatus.REJECTED,
}
AUDITORS = (PartyKind.REGISTRAR, PartyKind.REGULATOR)
# Not yet decided on chain: a client-mode decision awaiting its signature may still be replaced.
_UNDECIDED = (RequestStatus.PENDING, RequestStatus.AWAITING_DECISION_SIGNATURE)


@dataclass(frozen=True)
class Scope:
    fields: list[str]
    valid_from: datetime
    valid_until: datetime
    mode: AccessMode = AccessMode.RAW
    max_records: int = 1000
    max_accesses: int = 100
    row_filter: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in (("valid_from", self.valid_from), ("valid_until", self.valid_until)):
            check_instant(name, value)

    def as_json(self) -> dict[str, Any]:
        return {
            "fields": sorted(self.fields),
            "valid_from": iso(self.valid_from),
            "valid_until": iso(self.valid_until),
            "mode": self.mode.value,
            "max_records": self.max_records,
            "max_accesses": self.max_accesses,
            "row_filter": self.row_filter,
        }

    def digest(self) -> bytes:
        return keccak(canonical_json(self.as_json()))


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _field_names(resource: Resource) -> set[str]:
    """The fields of the resource's current catalog version."""
    return {f["name"] for f in json.loads(resource.metadata_json)["fields"]}


def today_in_china() -> date:
    return datetime.now(CHINA).date()


def request_overdue(row: ShareRequest) -> bool:
    """Unanswered past ``respond_by`` (10 working days from the application date)."""
    return row.status is RequestStatus.PENDING and today_in_china() > row.respond_by


def pending_document(row: ShareRequest, viewer_id: str) -> dict[str, Any] | None:
    """The EIP-712 document ``viewer_id`` is to sign next on this request (client mode), if any."""
    if row.status is RequestStatus.AWAITING_SIGNATURE and viewer_id == row.requester_id:
        document: dict[str, Any] = json.loads(row.request_typed_data)
        return document
    if row.status is RequestStatus.AWAITING_DECISION_SIGNATURE and viewer_id == row.provider_id:
        pending = unpack(row)
        return None if pending is None else pending.typed_data
    if row.status is RequestStatus.AWAITING_COSIGN:
        cosign: dict[str, Any] | None = per_signer(row.cosign_pending_json).get(viewer_id)
        return cosign
    return None


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
        self.consent = Consent(chain=chain, contract=contract, parties=parties, relayer=relayer)
        self.grants = GrantService(self)

    # -- helpers ------------------------------------------------------------------------------------
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
            stored = session.get(ShareRequest, row.id, with_for_update=True)
            assert stored is not None
            stored.status = status
            if status is RequestStatus.GRANTED:
                stored.grant_id = grant_id_of(row.id)
                stored.cosign_pending_json = None  # co-signatures still being prepared are moot
            update(stored)
        return stored, status

    def _store(self, request_id: str, update: Callable[[ShareRequest], None]) -> ShareRequest:
        with self.store.session() as session:
            stored = session.get(ShareRequest, request_id, with_for_update=True)
            assert stored is not None
            update(stored)
        return stored

    def _log_grant(self, row: ShareRequest, status: RequestStatus, tx_hash: str, **extra: Any) -> None:
        if status is RequestStatus.GRANTED:
            body = {"grant": row.grant_id, "request": row.id, **extra, "tx_hash": tx_hash}
            self._log("grant", f"grant:{row.id}", row.requester_id, row.resource_id, body)

    def _chain_status(self, request_id: str) -> RequestStatus:
        record = self.chain.call(self.contract.functions.requestOf(request_id_bytes32(request_id)))
        return _CHAIN_STATUS.get(int(record[3]), RequestStatus.PENDING)

    def _still_shareable(self, row: ShareRequest) -> Resource:
        """The share type as it is now: an approval or co-signature of a request made before a version
        that made the resource 不予共享 grants nothing (the contract refuses it too)."""
        resource = self.catalog.get(row.resource_id)
        if resource.share_type is ShareType.NONE:
            raise Conflict(
                f"resource {resource.code} is not shared (不予共享) since version {resource.version}, "
                "published after this request: it cannot be approved; reject it with a reason",
                code="not_shareable",
            )
        return resource

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
        resource = self.catalog.get_published(resource_id)
        if resource.share_type is ShareType.NONE:
            raise Conflict(f"resource {resource.code} is not shared (不予共享)", code="not_shareable")
        if resource.provider_id == caller.id:
            raise Conflict("a department does not request its own data", code="own_resource")
        purposes.get(purpose_code)
        check_request(scope.as_json(), _field_names(resource), datetime.now(UTC))
        request_id = uuid.uuid4().hex
        applied = today_in_china()
        document = self.consent.typed(
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
                "nonce": self.consent.nonce(caller.address),
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
        signature = self.consent.sign(caller, document, signing)
        with self.store.session() as session:
            session.add(row)
        if signature is None:
            return row
        return self._submit_on_chain(row, caller, document, signature, custodial=True)

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
        raw = self.consent.check(document, signature, caller.address)
        return self._submit_on_chain(row, caller, document, raw, custodial=False)

    def _submit_on_chain(
        self, row: ShareRequest, caller: Party, document: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> ShareRequest:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)

            def update(stored: ShareRequest) -> None:
                stored.request_typed_data = json.dumps(fresh)

            self._store(row.id, update)
            return fresh

        relayed = self.consent.relay(
            "submitRequest", document, signature, signer=caller, custodial=custodial, reissue=reissue
        )

        def update(stored: ShareRequest) -> None:
            stored.request_tx, stored.request_signature = relayed.receipt.tx_hash, relayed.signature_hex
            stored.request_typed_data = json.dumps(relayed.document)

        row, status = self._settle(row, update)
        body = {
            "request": row.id,
            "requester": row.requester_id,
            "provider": row.provider_id,
            "purpose": row.purpose_code,
            "scope_hash": "0x" + keccak(canonical_json(json.loads(row.scope_json))).hex(),
            "respond_by": row.respond_by.isoformat(),
            "tx_hash": relayed.receipt.tx_hash,
        }
        self._log("request", f"request:{row.id}", row.requester_id, row.resource_id, body)
        self._log_grant(row, status, relayed.receipt.tx_hash, automatic=True)
        return row

    # -- decisions ----------------------------------------------------------------------------------
    def decide(
        self,
        caller: Party,
        request_id: str,
        *,
        approve: bool,
        reason: str,
        conditions: Conditions | None,
        signing: Signing,
    ) -> ShareRequest:
        """Approve (with ``conditions``, which may only narrow the request — :mod:`.conditions`) or reject
        (with a reason). Nothing of the request changes until the chain confirms the decision: the
        custodial decision is relayed at once; a client-mode one is kept, with its terms, until signed
        (:mod:`.pending`) and may be replaced by another decision until then. Of decisions racing on
        one request the chain takes one; the others get 409 ``not_pending`` and change nothing."""
        row = self.get(caller, request_id)
        if row.provider_id != caller.id:
            raise Forbidden("only the resource's provider decides", code="not_provider")
        if row.status not in _UNDECIDED:
            raise Conflict(f"request {request_id} is {row.status.value}, not pending", code="not_pending")
        if not approve and not reason.strip():
            raise InvalidInput("a rejection states its reason (说明理由)", code="reason_required")
        requested: dict[str, Any] = json.loads(row.scope_json)
        if approve:
            resource = self._still_shareable(row)
            terms = decision_terms(requested, conditions, _field_names(resource), datetime.now(UTC))
        elif conditions is not None:
            raise InvalidInput(
                "a rejection grants nothing: it takes a reason, not conditions",
                code="conditions_on_rejection",
            )
        else:
            terms = requested
        document = self.consent.typed(
            "Decision",
            {
                "requestId": request_id_bytes32(row.id),
                "approve": approve,
                "conditionsHash": keccak(canonical_json(terms)),
                "reasonHash": keccak(text=reason),
                "validFrom": _epoch(parse_iso(terms["valid_from"])),
                "validUntil": _epoch(parse_iso(terms["valid_until"])),
                "maxAccesses": int(terms["max_accesses"]),
                "nonce": self.consent.nonce(caller.address),
            },
        )
        pending = PendingDecision(document, terms, reason)
        signature = self.consent.sign(caller, document, signing)
        if signature is not None:
            return self._decide_on_chain(row, caller, pending, signature, custodial=True)

        def keep(stored: ShareRequest) -> None:
            if stored.status not in _UNDECIDED:  # another decision got there first
                raise self._decided_meanwhile(request_id, stored.status)
            stored.status = RequestStatus.AWAITING_DECISION_SIGNATURE
            stored.decision_typed_data = pending.pack()

        return self._store(row.id, keep)

    def decision_signature(self, caller: Party, request_id: str, signature: str) -> ShareRequest:
        row = self.get(caller, request_id)
        if row.provider_id != caller.id:
            raise Forbidden("only the resource's provider signs the decision", code="not_provider")
        pending = unpack(row) if row.status is RequestStatus.AWAITING_DECISION_SIGNATURE else None
        if pending is None:
            raise Conflict(
                f"request {request_id} has no decision awaiting a signature", code="not_awaiting_signature"
            )
        raw = self.consent.check(pending.typed_data, signature, caller.address)
        if pending.typed_data["message"]["approve"]:
            self._still_shareable(row)
            # prepared while the window was open; a grant born expired could never be used
            check_window(pending.terms["valid_from"], pending.terms["valid_until"], datetime.now(UTC))
        return self._decide_on_chain(row, caller, pending, raw, custodial=False)

    def _decided_meanwhile(self, request_id: str, status: RequestStatus) -> Conflict:
        return Conflict(
            f"request {request_id} was decided meanwhile by another decision (now {status.value}); "
            "only that one counts",
            code="not_pending",
        )

    def _decide_on_chain(
        self, row: ShareRequest, caller: Party, pending: PendingDecision, signature: bytes, *, custodial: bool
    ) -> ShareRequest:
        def reissue(nonce: int) -> dict[str, Any]:
            # The nonce may have been spent by a racing decision on this very request: then it is decided.
            status = self._chain_status(row.id)
            if status is not RequestStatus.PENDING:
                raise self._decided_meanwhile(row.id, status)
            fresh = renonce(pending.typed_data, nonce)
            if not custodial:
                kept = PendingDecision(fresh, pending.terms, pending.reason).pack()

                def update(stored: ShareRequest) -> None:
                    if stored.status is RequestStatus.AWAITING_DECISION_SIGNATURE:
                        stored.decision_typed_data = kept

                self._store(row.id, update)
            return fresh

        try:
            relayed = self.consent.relay(
                "decide", pending.typed_data, signature, signer=caller, custodial=custodial, reissue=reissue
            )
        except ContractRevert as exc:
            # Lost a race: another decision was confirmed between our checks and our transaction.
            status = self._chain_status(row.id)
            if status is not RequestStatus.PENDING:
                raise self._decided_meanwhile(row.id, status) from exc
            raise
        decided = today_in_china()
        approve = bool(relayed.document["message"]["approve"])

        def update(stored: ShareRequest) -> None:
            # Only now, confirmed on chain, do the request's terms become the decision's.
            stored.decision_tx, stored.decided_on = relayed.receipt.tx_hash, decided
            stored.decision_signature = relayed.signature_hex
            stored.decision_typed_data = json.dumps(relayed.document)
            stored.reason = pending.reason
            if approve:
                stored.scope_json = json.dumps(pending.terms, ensure_ascii=False)
            stored.late = decided > stored.respond_by

        row, status = self._settle(row, update)
        self._log(
            "decision",
            f"decision:{row.id}",
            row.provider_id,
            row.resource_id,
            {
                "request": row.id,
                "approve": approve,
                "late": row.late,
                "reason_hash": relayed.document["message"]["reasonHash"],
                "tx_hash": relayed.receipt.tx_hash,
            },
        )
        self._log_grant(row, status, relayed.receipt.tx_hash)
        return row

    # -- co-signatures (多签) -------------------------------------------------------------------------
    def _awaiting_cosign(self, caller: Party, request_id: str) -> ShareRequest:
        row = self.get(caller, request_id)
        if caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the registrar co-signs (多签)", code="not_registrar")
        if row.status is not RequestStatus.AWAITING_COSIGN or row.decision_typed_data is None:
            raise Conflict(
                f"request {request_id} is {row.status.value}, not awaiting a co-signature",
                code="not_awaiting_cosign",
            )
        return row

    def cosign(self, caller: Party, request_id: str, signing: Signing = Signing.CUSTODIAL) -> ShareRequest:
        """A registrar endorses the provider's approving decision (its EIP-712 struct hash)."""
        row = self._awaiting_cosign(caller, request_id)
        rid = request_id_bytes32(row.id)
        if self.chain.call(self.contract.functions.hasCosigned(rid, caller.address)):
            raise Conflict(f"you already co-signed request {request_id}", code="already_cosigned")
        self._still_shareable(row)
        decision = json.loads(row.decision_typed_data or "{}")
        decision_hash = bytes(
            self.chain.call(self.contract.functions.decisionStructHash(eip712.as_tuple(decision)))
        )
        document = self.consent.typed(
            "Cosign",
            {"requestId": rid, "decisionHash": decision_hash, "nonce": self.consent.nonce(caller.address)},
        )
        signature = self.consent.sign(caller, document, signing)
        if signature is None:
            self._keep_cosign(row.id, caller.id, document)
            return self.get(caller, request_id)
        return self._cosign_on_chain(row, caller, document, signature, custodial=True)

    def cosign_signature(self, caller: Party, request_id: str, signature: str) -> ShareRequest:
        row = self._awaiting_cosign(caller, request_id)
        document = per_signer(row.cosign_pending_json).get(caller.id)
        if document is None:
            raise Conflict(
                f"no co-signature of request {request_id} awaits your signature",
                code="not_awaiting_signature",
            )
        raw = self.consent.check(document, signature, caller.address)
        self._still_shareable(row)
        return self._cosign_on_chain(row, caller, document, raw, custodial=False)

    def _keep_cosign(self, request_id: str, registrar_id: str, document: dict[str, Any] | None) -> None:
        def update(stored: ShareRequest) -> None:
            pending = per_signer(stored.cosign_pending_json)
            if document is None:
                pending.pop(registrar_id, None)
            else:
                pending[registrar_id] = document
            stored.cosign_pending_json = json.dumps(pending) if pending else None

        self._store(request_id, update)

    def _cosign_on_chain(
        self, row: ShareRequest, caller: Party, document: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> ShareRequest:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            if not custodial:
                self._keep_cosign(row.id, caller.id, fresh)
            return fresh

        relayed = self.consent.relay(
            "cosign", document, signature, signer=caller, custodial=custodial, reissue=reissue
        )
        self._keep_cosign(row.id, caller.id, None)
        tx_hash = relayed.receipt.tx_hash

        def update(stored: ShareRequest) -> None:
            stored.cosign_txs = json.dumps([*json.loads(stored.cosign_txs), tx_hash])

        row, status = self._settle(row, update)
        self._log_grant(row, status, tx_hash, cosigned_by=caller.id)
        return row

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

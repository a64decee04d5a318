"""Open contracts (契约式开放): three parties — operator, enterprise, provider(s) — each sign on chain.

The plan asks to "确立契约式开放三方主体的职责和义务": the platform operator proposes a contract naming the
enterprise, the resources (each a 契约式开放 catalog entry, none on the negative list), the purposes,
the validity window, the obligations (no re-identification, no onward transfer, derived products
declared, public-interest release of derived products) and the hash of the terms document; the
operator's EIP-712 signature is the proposal itself. The enterprise and every provider of a named
resource then sign an ``Acceptance`` of its struct hash; the last signature makes the contract
effective on chain. Every signature is custodial or client-mode (:mod:`ledger.sharing.consent`). The
operator or the registrar suspends, resumes or terminates a contract with a reason; the chain keeps
every status change with its time, so an access can be judged against the contract as it stood then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import or_, select

from ledger import purposes
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.gateway.service import catalog_fields
from ledger.opening import terms
from ledger.opening.base import Opening, dumps, hash32, iso, loads, window
from ledger.sharing import eip712
from ledger.sharing.catalog import resource_id_bytes32
from ledger.sharing.consent import renonce
from ledger.store.models import NegativeListing, OpenContract, Party
from ledger.types import (
    ContractAction,
    ContractKind,
    ContractStatus,
    Obligation,
    OpenType,
    PartyKind,
    Signing,
)

AUDITORS = (PartyKind.REGISTRAR, PartyKind.REGULATOR)
_CHAIN_STATUS = {
    1: ContractStatus.PROPOSED,
    2: ContractStatus.EFFECTIVE,
    3: ContractStatus.SUSPENDED,
    4: ContractStatus.TERMINATED,
}
_ACTION_FROM = {
    ContractAction.SUSPEND: (ContractStatus.EFFECTIVE,),
    ContractAction.RESUME: (ContractStatus.SUSPENDED,),
    ContractAction.TERMINATE: (ContractStatus.PROPOSED, ContractStatus.EFFECTIVE, ContractStatus.SUSPENDED),
}
_ACTION_WORD = {
    ContractAction.SUSPEND: "suspended",
    ContractAction.RESUME: "resumed",
    ContractAction.TERMINATE: "terminated",
}


class OpenContractService:
    def __init__(self, opening: Opening) -> None:
        self.o = opening

    # -- reading ------------------------------------------------------------------------------------
    def get(self, caller: Party, contract_id: str) -> OpenContract:
        row = self._row(contract_id)
        if row is None or not visible(caller, row):
            raise NotFound(f"no open contract {contract_id}", code="contract_not_found")
        return row

    def _row(self, contract_id: str) -> OpenContract | None:
        if not terms.is_contract_id(contract_id):
            return None
        with self.o.store.read() as session:
            return session.get(OpenContract, contract_id.lower())

    def visible_to(self, caller: Party, status: ContractStatus | None = None) -> list[OpenContract]:
        query = select(OpenContract).order_by(OpenContract.created_at.desc()).limit(500)
        if status is not None:
            query = query.where(OpenContract.status == status)
        if caller.kind not in AUDITORS:
            query = query.where(
                or_(
                    OpenContract.operator_id == caller.id,
                    OpenContract.enterprise_id == caller.id,
                    OpenContract.providers_json.contains(f'"{caller.id}"'),
                )
            )
        with self.o.store.read() as session:
            return list(session.scalars(query))

    def view(self, row: OpenContract, caller: Party) -> dict[str, Any]:
        signatures = loads(row.signatures_json)
        pending = loads(row.pending_json).get(caller.id)
        document = pending["typed_data"] if pending else None
        if row.status is ContractStatus.AWAITING_SIGNATURE and caller.id == row.operator_id:
            document = json.loads(row.proposal_typed_data)
        return {
            "id": row.id,
            "kind": row.kind.value,
            "status": row.status.value,
            "operator_id": row.operator_id,
            "enterprise_id": row.enterprise_id,
            "provider_ids": json.loads(row.providers_json),
            "resources": json.loads(row.resources_json),
            "purposes": json.loads(row.purposes_json),
            "scope": json.loads(row.scope_json),
            "obligations": json.loads(row.obligations_json),
            "terms_hash": row.terms_hash,
            "terms_uri": row.terms_uri,
            "valid_from": iso(row.valid_from),
            "valid_until": iso(row.valid_until),
            "contract_hash": "0x" + eip712.struct_hash(json.loads(row.proposal_typed_data)).hex(),
            "proposal_tx": row.proposal_tx,
            "signed_by": sorted(signatures),
            "awaiting": [p for p in self.required(row) if p not in signatures],
            "effective_at": iso(row.effective_at),
            "terminated_at": iso(row.terminated_at),
            "history": json.loads(row.history_json),
            "application_id": row.application_id,
            "typed_data": document,
        }

    @staticmethod
    def required(row: OpenContract) -> list[str]:
        """Who signs after the operator's proposal: the enterprise, then each provider."""
        return [row.enterprise_id, *json.loads(row.providers_json)]

    # -- proposing ----------------------------------------------------------------------------------
    def propose(
        self,
        caller: Party,
        *,
        enterprise_id: str,
        resources: Sequence[str],
        purpose_codes: Sequence[str],
        scope: Mapping[str, Any],
        valid_from: datetime,
        valid_until: datetime,
        obligations: Sequence[Obligation] | None,
        terms_hash: str,
        terms_uri: str | None,
        signing: Signing,
    ) -> OpenContract:
        if caller.kind is not PartyKind.OPERATOR:
            raise Forbidden("only the platform operator proposes an open contract", code="forbidden_role")
        enterprise = self.o.parties.get(enterprise_id)
        if enterprise.kind is not PartyKind.ENTERPRISE:
            raise InvalidInput(f"party {enterprise_id} is not an enterprise", code="not_enterprise")
        if not 1 <= len(resources) <= terms.MAX_ITEMS or len(set(resources)) != len(resources):
            raise InvalidInput(f"name 1 to {terms.MAX_ITEMS} distinct resources", code="invalid_resources")
        if not 1 <= len(purpose_codes) <= terms.MAX_ITEMS or len(set(purpose_codes)) != len(purpose_codes):
            raise InvalidInput(f"name 1 to {terms.MAX_ITEMS} distinct purposes", code="invalid_purposes")
        for code in purpose_codes:
            purposes.get(code)
        start, end = window(valid_from, valid_until)
        terms_b32 = hash32(terms_hash, "terms_hash")
        rows = [self.o.openable(rid, OpenType.CONTRACT) for rid in resources]
        if set(scope) != set(resources):
            raise InvalidInput(
                "scope must give the terms of exactly the contract's resources (scope: {resource_id: …})",
                code="invalid_scope",
            )
        full_scope = {
            "resources": {
                r.id: terms.resource_scope(
                    scope[r.id], [f.name for f in catalog_fields(r)], what=f"scope of {r.code}"
                )
                for r in rows
            }
        }
        chosen = list(Obligation) if obligations is None else list(dict.fromkeys(obligations))
        providers = list(dict.fromkeys(r.provider_id for r in rows))
        contract_id = terms.new_contract_id()
        document = self.o.consent.typed(
            "OpenContract",
            {
                "contractId": bytes.fromhex(contract_id[2:]),
                "operator": caller.address,
                "enterprise": enterprise.address,
                "resources": [resource_id_bytes32(r.id) for r in rows],
                "purposes": [terms.purpose_hash(c) for c in purpose_codes],
                "scopeHash": terms.scope_hash(full_scope),
                "validFrom": start,
                "validUntil": end,
                "obligations": terms.obligations_mask(chosen),
                "termsHash": terms_b32,
                "nonce": self.o.consent.nonce(caller.address),
            },
        )
        row = OpenContract(
            id=contract_id,
            kind=ContractKind.CONTRACT,
            operator_id=caller.id,
            enterprise_id=enterprise.id,
            resources_json=json.dumps([r.id for r in rows]),
            providers_json=json.dumps(providers),
            purposes_json=json.dumps(list(purpose_codes)),
            scope_json=dumps(full_scope),
            obligations_json=json.dumps([o.value for o in chosen]),
            terms_hash="0x" + terms_b32.hex(),
            terms_uri=terms_uri,
            valid_from=datetime.fromtimestamp(start, UTC),
            valid_until=datetime.fromtimestamp(end, UTC),
            status=ContractStatus.AWAITING_SIGNATURE,
            proposal_typed_data=json.dumps(document),
            signatures_json="{}",
            history_json="[]",
        )
        signature = self.o.consent.sign(caller, document, signing)
        with self.o.store.session() as session:
            session.add(row)
        if signature is None:
            return row
        return self._propose_on_chain(row, caller, document, signature, custodial=True)

    def _propose_on_chain(
        self, row: OpenContract, caller: Party, document: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> OpenContract:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            self._update(row.id, lambda s: setattr(s, "proposal_typed_data", json.dumps(fresh)))
            return fresh

        message = document["message"]
        relayed = self.o.consent.relay(
            "propose",
            document,
            signature,
            signer=caller,
            custodial=custodial,
            reissue=reissue,
            gas=proposal_gas(len(message["resources"]), len(message["purposes"])),
        )

        def update(stored: OpenContract) -> None:
            stored.proposal_typed_data = json.dumps(relayed.document)
            stored.proposal_signature = relayed.signature_hex
            stored.proposal_tx = relayed.receipt.tx_hash
            stored.status = ContractStatus.PROPOSED
            _history(stored, "proposed", caller.id, relayed.receipt.tx_hash)

        row = self._update(row.id, update)
        self._log(row, caller, "proposed", relayed.receipt.tx_hash)
        return row

    # -- signing ------------------------------------------------------------------------------------
    def sign(self, caller: Party, contract_id: str, signing: Signing) -> OpenContract:
        row = self.get(caller, contract_id)
        if caller.id not in self.required(row):
            raise Forbidden(
                "only the contract's enterprise and the providers of its resources sign it",
                code="not_a_party",
            )
        if caller.id in loads(row.signatures_json):
            raise Conflict(f"you have signed contract {row.id} already", code="already_signed")
        if row.status is not ContractStatus.PROPOSED:
            raise Conflict(f"contract {row.id} is {row.status.value}, not proposed", code="not_proposed")
        document = self.o.consent.typed(
            "Acceptance",
            {
                "contractId": bytes.fromhex(row.id[2:]),
                "contractHash": eip712.struct_hash(json.loads(row.proposal_typed_data)),
                "signer": caller.address,
                "nonce": self.o.consent.nonce(caller.address),
            },
        )
        signature = self.o.consent.sign(caller, document, signing)
        if signature is None:
            self._keep_pending(row.id, caller.id, {"action": "sign", "typed_data": document})
            return self.get(caller, contract_id)
        return self._sign_on_chain(row, caller, document, signature, custodial=True)

    def _sign_on_chain(
        self, row: OpenContract, caller: Party, document: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> OpenContract:
        relayed = self.o.consent.relay(
            "sign",
            document,
            signature,
            signer=caller,
            custodial=custodial,
            reissue=self._reissuer(row.id, caller.id, document, "sign", custodial),
        )
        record = self._on_chain(row.id)
        status = _CHAIN_STATUS.get(int(record[1]), ContractStatus.PROPOSED)

        def update(stored: OpenContract) -> None:
            signatures = loads(stored.signatures_json)
            signatures[caller.id] = {
                "address": caller.address,
                "typed_data": relayed.document,
                "signature": relayed.signature_hex,
                "tx_hash": relayed.receipt.tx_hash,
            }
            stored.signatures_json = dumps(signatures)
            _drop_pending(stored, caller.id)
            _history(stored, "signed", caller.id, relayed.receipt.tx_hash)
            if status is ContractStatus.EFFECTIVE:
                stored.status = status
                stored.effective_at = datetime.fromtimestamp(int(record[10]), UTC)
                _history(stored, "effective", caller.id, relayed.receipt.tx_hash)

        row = self._update(row.id, update)
        self._log(row, caller, "signed", relayed.receipt.tx_hash)
        if status is ContractStatus.EFFECTIVE:
            self._log(row, caller, "effective", relayed.receipt.tx_hash)
        return row

    # -- suspension, resumption, termination --------------------------------------------------------
    def change_status(
        self, caller: Party, contract_id: str, action: ContractAction, reason: str, signing: Signing
    ) -> OpenContract:
        row = self.get(caller, contract_id)
        if caller.id != row.operator_id and caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden(
                "only the contract's operator or the registrar suspends, resumes or terminates it",
                code="not_authorized_to_change",
            )
        if not reason.strip():
            raise InvalidInput("a status change states its reason", code="reason_required")
        if row.status not in _ACTION_FROM[action]:
            raise Conflict(
                f"contract {row.id} is {row.status.value}: it cannot be {_ACTION_WORD[action]}",
                code="invalid_transition",
            )
        document = self.o.consent.typed(
            "StatusChange",
            {
                "contractId": bytes.fromhex(row.id[2:]),
                "action": int(action),
                "reasonHash": keccak(text=reason),
                "nonce": self.o.consent.nonce(caller.address),
            },
        )
        signature = self.o.consent.sign(caller, document, signing)
        pending = {"action": "status", "typed_data": document, "reason": reason}
        if signature is None:
            self._keep_pending(row.id, caller.id, pending)
            return self.get(caller, contract_id)
        return self._status_on_chain(row, caller, pending, signature, custodial=True)

    def _status_on_chain(
        self, row: OpenContract, caller: Party, pending: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> OpenContract:
        document = pending["typed_data"]
        relayed = self.o.consent.relay(
            "changeStatus",
            document,
            signature,
            signer=caller,
            custodial=custodial,
            reissue=self._reissuer(
                row.id, caller.id, document, "status", custodial, reason=pending["reason"]
            ),
        )
        record = self._on_chain(row.id)
        status = _CHAIN_STATUS.get(int(record[1]), row.status)
        word = _ACTION_WORD[ContractAction(int(document["message"]["action"]))]
        reason_hash = "0x" + keccak(text=pending["reason"]).hex()

        def update(stored: OpenContract) -> None:
            stored.status = status
            if status is ContractStatus.TERMINATED:
                stored.terminated_at = datetime.fromtimestamp(int(record[11]), UTC)
            _drop_pending(stored, caller.id)
            _history(stored, word, caller.id, relayed.receipt.tx_hash, reason=pending["reason"])

        row = self._update(row.id, update)
        self._log(row, caller, word, relayed.receipt.tx_hash, reason_hash=reason_hash)
        return row

    # -- client-mode signatures ---------------------------------------------------------------------
    def submit_signature(self, caller: Party, contract_id: str, signature: str) -> OpenContract:
        row = self.get(caller, contract_id)
        signers = (row.operator_id, *self.required(row))
        if caller.id not in signers and caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the contract's parties and the registrar sign for it", code="not_a_party")
        if row.status is ContractStatus.AWAITING_SIGNATURE and caller.id == row.operator_id:
            document = json.loads(row.proposal_typed_data)
            raw = self.o.consent.check(document, signature, caller.address)
            return self._propose_on_chain(row, caller, document, raw, custodial=False)
        pending = loads(row.pending_json).get(caller.id)
        if pending is None:
            raise Conflict(
                f"nothing of contract {row.id} awaits your signature", code="not_awaiting_signature"
            )
        raw = self.o.consent.check(pending["typed_data"], signature, caller.address)
        if pending["action"] == "sign":
            return self._sign_on_chain(row, caller, pending["typed_data"], raw, custodial=False)
        return self._status_on_chain(row, caller, pending, raw, custodial=False)

    # -- helpers ------------------------------------------------------------------------------------
    def _on_chain(self, contract_id: str) -> tuple[Any, ...]:
        return tuple(self.o.chain.call(self.o.contract.functions.contractOf(bytes.fromhex(contract_id[2:]))))

    def _update(self, contract_id: str, update: Callable[[OpenContract], None]) -> OpenContract:
        with self.o.store.session() as session:
            stored = session.get(OpenContract, contract_id, with_for_update=True)
            assert stored is not None
            update(stored)
        return stored

    def _keep_pending(self, contract_id: str, party_id: str, entry: dict[str, Any]) -> None:
        def update(stored: OpenContract) -> None:
            pending = loads(stored.pending_json)
            pending[party_id] = entry
            stored.pending_json = dumps(pending)

        self._update(contract_id, update)

    def _reissuer(
        self,
        contract_id: str,
        party_id: str,
        document: dict[str, Any],
        action: str,
        custodial: bool,
        **extra: Any,
    ) -> Callable[[int], dict[str, Any]]:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            if not custodial:
                self._keep_pending(contract_id, party_id, {"action": action, "typed_data": fresh, **extra})
            return fresh

        return reissue

    def _log(self, row: OpenContract, caller: Party, action: str, tx_hash: str, **extra: Any) -> None:
        resources = json.loads(row.resources_json)
        self.o.record(
            "contract",
            f"contract:{row.id[2:18]}:{action}:{len(json.loads(row.history_json))}",
            caller.id,
            resources[0],
            {
                "contract": row.id,
                "contract_kind": row.kind.value,
                "action": action,
                "by": caller.id,
                "operator": row.operator_id,
                "enterprise": row.enterprise_id,
                "resources": resources,
                "purposes": json.loads(row.purposes_json),
                "terms_hash": row.terms_hash,
                "tx_hash": tx_hash,
                **extra,
            },
        )


class NegativeListService:
    """The negative list (负面清单): resources never opened, kept on chain by the registrar."""

    def __init__(self, opening: Opening) -> None:
        self.o = opening

    def entries(self) -> list[NegativeListing]:
        with self.o.store.read() as session:
            return list(session.scalars(select(NegativeListing).where(NegativeListing.listed.is_(True))))

    def set(self, caller: Party, resource_id: str, listed: bool, reason: str) -> NegativeListing:
        if caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the registrar keeps the negative list", code="forbidden_role")
        if not reason.strip():
            raise InvalidInput("a listing states its reason", code="reason_required")
        resource = self.o.catalog.get_published(resource_id)
        if self.o.negative_listed(resource.id) == listed:
            raise Conflict(
                f"resource {resource.code} is {'already' if listed else 'not'} on the negative list",
                code="listing_unchanged",
            )
        document = self.o.consent.typed(
            "Listing",
            {
                "resourceId": resource_id_bytes32(resource.id),
                "listed": listed,
                "reasonHash": keccak(text=reason),
                "nonce": self.o.consent.nonce(caller.address),
            },
        )
        signature = self.o.consent.sign(caller, document, Signing.CUSTODIAL)
        assert signature is not None
        relayed = self.o.consent.relay(
            "setListing",
            document,
            signature,
            signer=caller,
            custodial=True,
            reissue=lambda nonce: renonce(document, nonce),
        )
        now = datetime.now(UTC)
        with self.o.store.session() as session:
            row = session.get(NegativeListing, resource.id)
            if row is None:
                row = NegativeListing(resource_id=resource.id)
                session.add(row)
            row.listed, row.reason, row.by_id = listed, reason, caller.id
            row.tx_hash, row.updated_at = relayed.receipt.tx_hash, now
        self.o.record(
            "negative_list",
            f"negative_list:{resource.id}:{relayed.receipt.tx_hash[2:18]}",
            caller.id,
            resource.id,
            {
                "listed": listed,
                "provider": resource.provider_id,
                "reason_hash": "0x" + keccak(text=reason).hex(),
                "tx_hash": relayed.receipt.tx_hash,
            },
        )
        return row


def proposal_gas(resources: int, purposes: int) -> int:
    """A gas limit for ``propose``: its storage grows with the lists (each resource ~5 slots, each
    purpose ~2), so the consent relay's fixed limit does not fit; unused gas is not charged."""
    return 400_000 + 160_000 * resources + 70_000 * purposes


def visible(caller: Party, row: OpenContract) -> bool:
    return (
        caller.kind in AUDITORS
        or caller.id in (row.operator_id, row.enterprise_id)
        or caller.id in json.loads(row.providers_json)
    )


def _history(stored: OpenContract, what: str, by: str, tx_hash: str, **extra: Any) -> None:
    history = json.loads(stored.history_json)
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    history.append({"event": what, "by": by, "at": at, "tx_hash": tx_hash, **extra})
    stored.history_json = dumps(history)


def _drop_pending(stored: OpenContract, party_id: str) -> None:
    pending = loads(stored.pending_json)
    pending.pop(party_id, None)
    stored.pending_json = dumps(pending) if pending else None

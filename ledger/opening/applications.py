"""On-application opening (依申请开放): an enterprise applies, the provider and an operator review.

The enterprise signs an ``Application`` naming one on-application resource, its purpose, the scope it
asks for and the hash of its qualification documents (each document's SHA-256, so the documents stay
with the parties and the chain keeps only their fingerprint). The resource's provider and a platform
operator each sign a ``Review`` within the deadline — 10 Chinese working days from the application
date, the same statutory clock as share requests (:func:`ledger.workdays.respond_by`); a late review
is accepted and marked late, an unanswered application past the deadline lists as ``overdue``. A
rejection by either is final; the second approval creates, in the same transaction, an effective
contract (kind ``application``, id = the application's) that the data gateway accepts like any
open contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import select

from ledger import purposes, workdays
from ledger.canonical import canonical_json
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.gateway.service import catalog_fields
from ledger.opening import terms
from ledger.opening.base import Opening, dumps, iso, loads, window
from ledger.sharing.catalog import resource_id_bytes32
from ledger.sharing.consent import renonce
from ledger.sharing.requests import today_in_china
from ledger.store.models import OpenApplication, OpenContract, Party
from ledger.types import (
    ApplicationStatus,
    ContractKind,
    ContractStatus,
    Obligation,
    OpenType,
    PartyKind,
    Signing,
)

AUDITORS = (PartyKind.REGISTRAR, PartyKind.REGULATOR)
MAX_QUALIFICATIONS = 20
# The approving review that completes an application writes the whole contract record (~25 slots).
REVIEW_GAS = 1_000_000
_SHA256 = re.compile(r"^0x[0-9a-f]{64}$")
_CHAIN_STATUS = {1: ApplicationStatus.PENDING, 2: ApplicationStatus.APPROVED, 3: ApplicationStatus.REJECTED}


def qualifications_of(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The qualification documents as ``[{"name", "sha256"}]``, validated; their hash goes on chain."""
    if not 1 <= len(raw) <= MAX_QUALIFICATIONS:
        raise InvalidInput(
            f"name 1 to {MAX_QUALIFICATIONS} qualification documents (营业执照, 资质证书…)",
            code="invalid_qualifications",
        )
    out = []
    for item in raw:
        name, digest = item.get("name"), item.get("sha256")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            raise InvalidInput(
                "each qualification needs a name (1-200 characters)", code="invalid_qualifications"
            )
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise InvalidInput(
                "each qualification needs the SHA-256 of its document as 0x + 64 lower-case hex",
                code="invalid_qualifications",
            )
        out.append({"name": name.strip(), "sha256": digest})
    return out


class ApplicationService:
    def __init__(self, opening: Opening) -> None:
        self.o = opening

    # -- reading ------------------------------------------------------------------------------------
    def get(self, caller: Party, application_id: str) -> OpenApplication:
        row = None
        if terms.is_contract_id(application_id):
            with self.o.store.read() as session:
                row = session.get(OpenApplication, application_id.lower())
        if row is None or not _visible(caller, row):
            raise NotFound(f"no application {application_id}", code="application_not_found")
        return row

    def visible_to(self, caller: Party, status: str | None = None) -> list[OpenApplication]:
        query = select(OpenApplication).order_by(OpenApplication.created_at.desc()).limit(500)
        if status == "overdue":
            query = query.where(
                OpenApplication.status == ApplicationStatus.PENDING,
                OpenApplication.review_by < today_in_china(),
            )
        elif status is not None:
            try:
                query = query.where(OpenApplication.status == ApplicationStatus(status))
            except ValueError:
                raise InvalidInput(
                    f"status must be one of {', '.join([*ApplicationStatus, 'overdue'])}",
                    code="invalid_status",
                ) from None
        if caller.kind is PartyKind.DEPARTMENT:
            query = query.where(OpenApplication.provider_id == caller.id)
        elif caller.kind not in (*AUDITORS, PartyKind.OPERATOR):
            query = query.where(OpenApplication.enterprise_id == caller.id)
        with self.o.store.read() as session:
            return list(session.scalars(query))

    def view(self, row: OpenApplication, caller: Party) -> dict[str, Any]:
        pending = loads(row.pending_json).get(caller.id)
        document = pending["typed_data"] if pending else None
        if row.status is ApplicationStatus.AWAITING_SIGNATURE and caller.id == row.enterprise_id:
            document = json.loads(row.typed_data)
        reviews = loads(row.reviews_json)
        return {
            "id": row.id,
            "status": row.status.value,
            "overdue": row.status is ApplicationStatus.PENDING and today_in_china() > row.review_by,
            "enterprise_id": row.enterprise_id,
            "resource_id": row.resource_id,
            "provider_id": row.provider_id,
            "purpose": {"code": row.purpose_code, "text": row.purpose_text},
            "scope": json.loads(row.scope_json),
            "qualifications": json.loads(row.qualifications_json),
            "qualifications_hash": row.qualifications_hash,
            "valid_from": iso(row.valid_from),
            "valid_until": iso(row.valid_until),
            "applied_on": row.applied_on.isoformat(),
            "review_by": row.review_by.isoformat(),
            "tx_hash": row.tx_hash,
            "reviews": {
                role: {k: v for k, v in r.items() if k not in ("typed_data", "signature")}
                for role, r in reviews.items()
            },
            "contract_id": row.contract_id,
            "typed_data": document,
        }

    # -- applying -----------------------------------------------------------------------------------
    def submit(
        self,
        caller: Party,
        *,
        resource_id: str,
        purpose_code: str,
        purpose_text: str,
        scope: Mapping[str, Any],
        qualifications: Sequence[Mapping[str, Any]],
        valid_from: datetime,
        valid_until: datetime,
        signing: Signing,
    ) -> OpenApplication:
        if caller.kind is not PartyKind.ENTERPRISE:
            raise Forbidden("only an enterprise applies for on-application data", code="forbidden_role")
        resource = self.o.openable(resource_id, OpenType.ON_APPLICATION)
        purposes.get(purpose_code)
        start, end = window(valid_from, valid_until)
        docs = qualifications_of(qualifications)
        full_scope = {
            "resources": {
                resource.id: terms.resource_scope(
                    scope, [f.name for f in catalog_fields(resource)], what=f"scope of {resource.code}"
                )
            }
        }
        application_id = terms.new_contract_id()
        qualifications_hash = keccak(canonical_json(docs))
        document = self.o.consent.typed(
            "Application",
            {
                "applicationId": bytes.fromhex(application_id[2:]),
                "enterprise": caller.address,
                "resourceId": resource_id_bytes32(resource.id),
                "purpose": terms.purpose_hash(purpose_code),
                "scopeHash": terms.scope_hash(full_scope),
                "qualificationsHash": qualifications_hash,
                "validFrom": start,
                "validUntil": end,
                "nonce": self.o.consent.nonce(caller.address),
            },
        )
        applied = today_in_china()
        row = OpenApplication(
            id=application_id,
            enterprise_id=caller.id,
            resource_id=resource.id,
            provider_id=resource.provider_id,
            purpose_code=purpose_code,
            purpose_text=purpose_text,
            scope_json=dumps(full_scope),
            qualifications_json=dumps(docs),
            qualifications_hash="0x" + qualifications_hash.hex(),
            valid_from=datetime.fromtimestamp(start, UTC),
            valid_until=datetime.fromtimestamp(end, UTC),
            applied_on=applied,
            review_by=workdays.respond_by(applied),
            status=ApplicationStatus.AWAITING_SIGNATURE,
            typed_data=json.dumps(document),
            reviews_json="{}",
        )
        signature = self.o.consent.sign(caller, document, signing)
        with self.o.store.session() as session:
            session.add(row)
        if signature is None:
            return row
        return self._submit_on_chain(row, caller, document, signature, custodial=True)

    def _submit_on_chain(
        self,
        row: OpenApplication,
        caller: Party,
        document: dict[str, Any],
        signature: bytes,
        *,
        custodial: bool,
    ) -> OpenApplication:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            self._update(row.id, lambda s: setattr(s, "typed_data", json.dumps(fresh)))
            return fresh

        relayed = self.o.consent.relay(
            "submitApplication", document, signature, signer=caller, custodial=custodial, reissue=reissue
        )

        def update(stored: OpenApplication) -> None:
            stored.typed_data = json.dumps(relayed.document)
            stored.signature = relayed.signature_hex
            stored.tx_hash = relayed.receipt.tx_hash
            stored.status = ApplicationStatus.PENDING

        row = self._update(row.id, update)
        self._log(row, caller, "submitted", relayed.receipt.tx_hash, review_by=row.review_by.isoformat())
        return row

    # -- reviewing ----------------------------------------------------------------------------------
    def review(
        self, caller: Party, application_id: str, *, approve: bool, reason: str, signing: Signing
    ) -> OpenApplication:
        row = self.get(caller, application_id)
        role = self._role(caller, row)
        if row.status is not ApplicationStatus.PENDING:
            raise Conflict(
                f"application {row.id} is {row.status.value}, not pending review", code="not_pending"
            )
        if role in loads(row.reviews_json):
            raise Conflict(f"the {role} has reviewed application {row.id} already", code="already_reviewed")
        if not approve and not reason.strip():
            raise InvalidInput("a rejection states its reason (说明理由)", code="reason_required")
        if approve:
            self.o.openable(row.resource_id, OpenType.ON_APPLICATION)  # listed or retyped since?
        document = self.o.consent.typed(
            "Review",
            {
                "applicationId": bytes.fromhex(row.id[2:]),
                "approve": approve,
                "reasonHash": keccak(text=reason),
                "nonce": self.o.consent.nonce(caller.address),
            },
        )
        signature = self.o.consent.sign(caller, document, signing)
        pending = {"role": role, "typed_data": document, "reason": reason}
        if signature is None:
            self._keep_pending(row.id, caller.id, pending)
            return self.get(caller, application_id)
        return self._review_on_chain(row, caller, pending, signature, custodial=True)

    @staticmethod
    def _role(caller: Party, row: OpenApplication) -> str:
        if caller.id == row.provider_id:
            return "provider"
        if caller.kind is PartyKind.OPERATOR:
            return "operator"
        raise Forbidden("only the resource's provider and the platform operator review", code="not_reviewer")

    def _review_on_chain(
        self,
        row: OpenApplication,
        caller: Party,
        pending: dict[str, Any],
        signature: bytes,
        *,
        custodial: bool,
    ) -> OpenApplication:
        document = pending["typed_data"]

        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            if not custodial:
                self._keep_pending(row.id, caller.id, {**pending, "typed_data": fresh})
            return fresh

        relayed = self.o.consent.relay(
            "review", document, signature, signer=caller, custodial=custodial, reissue=reissue, gas=REVIEW_GAS
        )
        record = self.o.chain.call(self.o.contract.functions.applicationOf(bytes.fromhex(row.id[2:])))
        status = _CHAIN_STATUS.get(int(record[3]), ApplicationStatus.PENDING)
        today = today_in_china()
        approve = bool(document["message"]["approve"])

        def update(stored: OpenApplication) -> None:
            reviews = loads(stored.reviews_json)
            reviews[pending["role"]] = {
                "party_id": caller.id,
                "address": caller.address,
                "approve": approve,
                "reason": pending["reason"],
                "on": today.isoformat(),
                "late": today > stored.review_by,
                "typed_data": relayed.document,
                "signature": relayed.signature_hex,
                "tx_hash": relayed.receipt.tx_hash,
            }
            stored.reviews_json = dumps(reviews)
            stored.status = status
            pending_all = loads(stored.pending_json)
            pending_all.pop(caller.id, None)
            stored.pending_json = dumps(pending_all) if pending_all else None
            if status is ApplicationStatus.APPROVED:
                stored.contract_id = stored.id

        row = self._update(row.id, update)
        self._log(
            row,
            caller,
            "approved" if approve else "rejected",
            relayed.receipt.tx_hash,
            role=pending["role"],
            reason_hash="0x" + keccak(text=pending["reason"]).hex(),
            late=today > row.review_by,
        )
        if status is ApplicationStatus.APPROVED:
            self._open(row, relayed.receipt.tx_hash)
        return row

    def _open(self, row: OpenApplication, tx_hash: str) -> None:
        """Store the contract the final approval created on chain (id = the application's)."""
        record = self.o.chain.call(self.o.contract.functions.contractOf(bytes.fromhex(row.id[2:])))
        reviews = loads(row.reviews_json)
        operator_id = reviews["operator"]["party_id"]
        now = datetime.now(UTC)
        contract = OpenContract(
            id=row.id,
            kind=ContractKind.APPLICATION,
            operator_id=operator_id,
            enterprise_id=row.enterprise_id,
            resources_json=json.dumps([row.resource_id]),
            providers_json=json.dumps([row.provider_id]),
            purposes_json=json.dumps([row.purpose_code]),
            scope_json=row.scope_json,
            obligations_json=json.dumps(
                [
                    o.value
                    for o in (
                        Obligation.NO_REIDENTIFICATION,
                        Obligation.NO_ONWARD_TRANSFER,
                        Obligation.DECLARE_DERIVED,
                    )
                ]
            ),
            terms_hash="0x" + bytes(record[14]).hex(),
            terms_uri=None,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            status=ContractStatus.EFFECTIVE,
            proposal_typed_data=row.typed_data,
            proposal_signature=row.signature,
            proposal_tx=row.tx_hash,
            signatures_json=dumps({r["party_id"]: r for r in reviews.values()}),
            history_json=dumps(
                [{"event": "effective", "by": operator_id, "at": iso(now), "tx_hash": tx_hash}]
            ),
            application_id=row.id,
            effective_at=datetime.fromtimestamp(int(record[10]), UTC),
        )
        with self.o.store.session() as session:
            session.add(contract)
        self.o.record(
            "contract",
            f"contract:{row.id[2:18]}:effective:0",
            operator_id,
            row.resource_id,
            {
                "contract": row.id,
                "contract_kind": ContractKind.APPLICATION.value,
                "action": "effective",
                "by": operator_id,
                "operator": operator_id,
                "enterprise": row.enterprise_id,
                "resources": [row.resource_id],
                "purposes": [row.purpose_code],
                "terms_hash": contract.terms_hash,
                "tx_hash": tx_hash,
            },
        )

    # -- client-mode signatures ---------------------------------------------------------------------
    def submit_signature(self, caller: Party, application_id: str, signature: str) -> OpenApplication:
        row = self.get(caller, application_id)
        if caller.id not in (row.enterprise_id, row.provider_id) and caller.kind is not PartyKind.OPERATOR:
            raise Forbidden(
                "only the applicant and the reviewers sign for an application", code="not_a_party"
            )
        if row.status is ApplicationStatus.AWAITING_SIGNATURE and caller.id == row.enterprise_id:
            document = json.loads(row.typed_data)
            raw = self.o.consent.check(document, signature, caller.address)
            return self._submit_on_chain(row, caller, document, raw, custodial=False)
        pending = loads(row.pending_json).get(caller.id)
        if pending is None:
            raise Conflict(
                f"nothing of application {row.id} awaits your signature", code="not_awaiting_signature"
            )
        raw = self.o.consent.check(pending["typed_data"], signature, caller.address)
        return self._review_on_chain(row, caller, pending, raw, custodial=False)

    # -- helpers ------------------------------------------------------------------------------------
    def _update(self, application_id: str, update: Any) -> OpenApplication:
        with self.o.store.session() as session:
            stored = session.get(OpenApplication, application_id, with_for_update=True)
            assert stored is not None
            update(stored)
        return stored

    def _keep_pending(self, application_id: str, party_id: str, entry: dict[str, Any]) -> None:
        def update(stored: OpenApplication) -> None:
            pending = loads(stored.pending_json)
            pending[party_id] = entry
            stored.pending_json = dumps(pending)

        self._update(application_id, update)

    def _log(self, row: OpenApplication, caller: Party, action: str, tx_hash: str, **extra: Any) -> None:
        self.o.record(
            "application",
            f"application:{row.id[2:18]}:{action}:{caller.id[:8]}",
            caller.id,
            row.resource_id,
            {
                "application": row.id,
                "action": action,
                "by": caller.id,
                "enterprise": row.enterprise_id,
                "provider": row.provider_id,
                "purpose": row.purpose_code,
                "qualifications_hash": row.qualifications_hash,
                "tx_hash": tx_hash,
                **extra,
            },
        )


def _visible(caller: Party, row: OpenApplication) -> bool:
    return caller.kind in (*AUDITORS, PartyKind.OPERATOR) or caller.id in (row.enterprise_id, row.provider_id)

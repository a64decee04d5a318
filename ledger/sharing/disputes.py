"""Disputed data (疑义数据校核): a department using shared data disputes a resource version; the
provider must answer — confirm, or correct with a new version whose metadata hash goes on chain in
the same transaction. The deadline is 10 working days from the filing, like share requests; both
steps are signed (EIP-712) by the acting department — custodially or in client mode, see
:mod:`ledger.sharing.consent` — checked on chain, and logged (kind ``dispute``)."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import or_, select

from ledger import workdays
from ledger.canonical import canonical_json
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.sharing.catalog import ResourceSpec, resource_id_bytes32
from ledger.sharing.consent import renonce
from ledger.sharing.requests import AUDITORS, ShareService, today_in_china
from ledger.store.models import Dispute, Party, Resource, ResourceVersion
from ledger.types import OpenType, PartyKind, ShareType, Signing


class DisputeStatus(enum.StrEnum):
    AWAITING_SIGNATURE = "awaiting_signature"  # client mode: the filer has not signed yet
    OPEN = "open"  # on chain, waiting for the provider's answer (which may itself await a signature)
    ANSWERED = "answered"


def dispute_overdue(dispute: Dispute) -> bool:
    """Unanswered past its ``respond_by``."""
    return dispute.status == DisputeStatus.OPEN and today_in_china() > dispute.respond_by


def pending_dispute_document(dispute: Dispute, viewer_id: str) -> dict[str, Any] | None:
    """The EIP-712 document ``viewer_id`` is to sign next on this dispute (client mode), if any."""
    if dispute.status == DisputeStatus.AWAITING_SIGNATURE and viewer_id == dispute.filer_id:
        document: dict[str, Any] = json.loads(dispute.file_typed_data or "null")
        return document
    if (
        dispute.status == DisputeStatus.OPEN
        and viewer_id == dispute.provider_id
        and dispute.answer_pending_json
    ):
        answer: dict[str, Any] = json.loads(dispute.answer_pending_json)["typed_data"]
        return answer
    return None


def _dispute_id_bytes32(dispute_id: str) -> bytes:
    return bytes(16) + bytes.fromhex(dispute_id)


class DisputeService:
    def __init__(self, sharing: ShareService) -> None:
        self.s = sharing

    # -- filing -------------------------------------------------------------------------------------
    def file(
        self,
        caller: Party,
        resource_id: str,
        reason: str,
        version: int | None = None,
        signing: Signing = Signing.CUSTODIAL,
    ) -> Dispute:
        if caller.kind is not PartyKind.DEPARTMENT:
            raise Forbidden("only a department files a data dispute", code="forbidden_role")
        resource = self.s.catalog.get_published(resource_id)
        if resource.provider_id == caller.id:
            raise Conflict(
                "a provider corrects its own data with a new version, not a dispute", code="own_resource"
            )
        if not reason.strip():
            raise InvalidInput("a dispute states what is wrong", code="reason_required")
        version = version or resource.version
        if not 1 <= version <= resource.version:
            raise InvalidInput(f"resource {resource.code} has no version {version}", code="unknown_version")
        dispute_id = uuid.uuid4().hex
        document = self.s.consent.typed(
            "Dispute",
            {
                "disputeId": _dispute_id_bytes32(dispute_id),
                "resourceId": resource_id_bytes32(resource.id),
                "version": version,
                "filer": caller.address,
                "reasonHash": keccak(text=reason),
                "nonce": self.s.consent.nonce(caller.address),
            },
        )
        signature = self.s.consent.sign(caller, document, signing)
        filed = today_in_china()
        row = Dispute(
            id=dispute_id,
            resource_id=resource.id,
            version=version,
            filer_id=caller.id,
            provider_id=resource.provider_id,
            reason=reason,
            status=DisputeStatus.AWAITING_SIGNATURE,
            filed_on=filed,
            respond_by=workdays.respond_by(filed),
            file_tx=None,
            corrected=False,
            late=False,
            file_typed_data=json.dumps(document),
        )
        with self.s.store.session() as session:
            session.add(row)
        if signature is None:
            return row
        return self._file_on_chain(row, caller, document, signature, custodial=True)

    def file_signature(self, caller: Party, dispute_id: str, signature: str) -> Dispute:
        row = self.get(caller, dispute_id)
        if row.filer_id != caller.id:
            raise Forbidden("only the filer signs its dispute", code="not_filer")
        if row.status != DisputeStatus.AWAITING_SIGNATURE or row.file_typed_data is None:
            raise Conflict(f"dispute {dispute_id} is not awaiting a signature", code="not_awaiting_signature")
        document = json.loads(row.file_typed_data)
        raw = self.s.consent.check(document, signature, caller.address)
        return self._file_on_chain(row, caller, document, raw, custodial=False)

    def _file_on_chain(
        self, row: Dispute, caller: Party, document: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> Dispute:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(document, nonce)
            with self.s.store.session() as session:
                stored = session.get(Dispute, row.id)
                assert stored is not None
                stored.file_typed_data = json.dumps(fresh)
            return fresh

        relayed = self.s.consent.relay(
            "fileDispute", document, signature, signer=caller, custodial=custodial, reissue=reissue
        )
        filed = today_in_china()  # the deadline runs from the filing on chain, not from a draft
        with self.s.store.session() as session:
            stored = session.get(Dispute, row.id)
            assert stored is not None
            stored.status, stored.file_tx = DisputeStatus.OPEN, relayed.receipt.tx_hash
            stored.file_typed_data = json.dumps(relayed.document)
            stored.filed_on, stored.respond_by = filed, workdays.respond_by(filed)
            row = stored
        self.s._log(
            "dispute",
            f"dispute:{row.id}",
            caller.id,
            row.resource_id,
            {
                "dispute": row.id,
                "step": "filed",
                "version": row.version,
                "reason_hash": "0x" + keccak(text=row.reason).hex(),
                "tx_hash": relayed.receipt.tx_hash,
            },
        )
        return row

    def get(self, caller: Party, dispute_id: str) -> Dispute:
        with self.s.store.read() as session:
            row = session.get(Dispute, dispute_id)
        if row is None or not (caller.kind in AUDITORS or caller.id in (row.filer_id, row.provider_id)):
            raise NotFound(f"no dispute {dispute_id}", code="dispute_not_found")
        return row

    # -- answering ----------------------------------------------------------------------------------
    def _open_for_provider(self, caller: Party, dispute_id: str) -> Dispute:
        row = self.get(caller, dispute_id)
        if row.provider_id != caller.id:
            raise Forbidden("only the resource's provider answers a dispute", code="not_provider")
        if row.status != DisputeStatus.OPEN:
            raise Conflict(f"dispute {dispute_id} is {row.status}, not open", code="dispute_not_open")
        return row

    def answer(
        self,
        caller: Party,
        dispute_id: str,
        answer: str,
        correction: ResourceSpec | None,
        signing: Signing = Signing.CUSTODIAL,
    ) -> Dispute:
        row = self._open_for_provider(caller, dispute_id)
        if not answer.strip():
            raise InvalidInput("an answer states the result of the check (校核结果)", code="reason_required")
        resource = self.s.catalog.get(row.resource_id)
        new_hash = bytes(32)
        metadata: dict[str, Any] | None = None
        if correction is not None:
            if correction.code != resource.code:
                raise InvalidInput("a correction keeps the resource's code", code="code_immutable")
            correction.validate()
            metadata = correction.metadata()
            new_hash = keccak(canonical_json(metadata))
        document = self.s.consent.typed(
            "DisputeAnswer",
            {
                "disputeId": _dispute_id_bytes32(row.id),
                "corrected": correction is not None,
                "newMetadataHash": new_hash,
                "answerHash": keccak(text=answer),
                "nonce": self.s.consent.nonce(caller.address),
            },
        )
        signature = self.s.consent.sign(caller, document, signing)
        pending = {"typed_data": document, "answer": answer, "metadata": metadata}
        if signature is None:
            with self.s.store.session() as session:
                stored = session.get(Dispute, row.id)
                assert stored is not None
                stored.answer_pending_json = json.dumps(pending, ensure_ascii=False)
                row = stored
            return row
        return self._answer_on_chain(row, caller, pending, signature, custodial=True)

    def answer_signature(self, caller: Party, dispute_id: str, signature: str) -> Dispute:
        row = self._open_for_provider(caller, dispute_id)
        if row.answer_pending_json is None:
            raise Conflict(
                f"dispute {dispute_id} has no answer awaiting a signature", code="not_awaiting_signature"
            )
        pending = json.loads(row.answer_pending_json)
        raw = self.s.consent.check(pending["typed_data"], signature, caller.address)
        return self._answer_on_chain(row, caller, pending, raw, custodial=False)

    def _answer_on_chain(
        self, row: Dispute, caller: Party, pending: dict[str, Any], signature: bytes, *, custodial: bool
    ) -> Dispute:
        def reissue(nonce: int) -> dict[str, Any]:
            fresh = renonce(pending["typed_data"], nonce)
            with self.s.store.session() as session:
                stored = session.get(Dispute, row.id)
                assert stored is not None
                stored.answer_pending_json = json.dumps({**pending, "typed_data": fresh}, ensure_ascii=False)
            return fresh

        relayed = self.s.consent.relay(
            "answerDispute",
            pending["typed_data"],
            signature,
            signer=caller,
            custodial=custodial,
            reissue=reissue,
        )
        tx_hash = relayed.receipt.tx_hash
        metadata: dict[str, Any] | None = pending["metadata"]
        answered = today_in_china()
        now = datetime.now(UTC)
        with self.s.store.session() as session:
            stored = session.get(Dispute, row.id)
            assert stored is not None
            stored.status, stored.answer, stored.answer_tx = (
                DisputeStatus.ANSWERED,
                pending["answer"],
                tx_hash,
            )
            stored.answered_on, stored.answer_pending_json = answered, None
            stored.late = answered > stored.respond_by
            if metadata is not None:
                res = session.get(Resource, row.resource_id)
                assert res is not None
                metadata_json = json.dumps(metadata, ensure_ascii=False)
                new_hash = keccak(canonical_json(metadata))
                res.version += 1
                res.name, res.level = metadata["name"], int(metadata["level"])
                res.share_type = ShareType(metadata["share_type"])
                res.open_type = OpenType(metadata["open_type"])
                res.metadata_json, res.metadata_hash, res.tx_hash, res.updated_at = (
                    metadata_json,
                    new_hash,
                    tx_hash,
                    now,
                )
                session.add(
                    ResourceVersion(
                        resource_id=res.id,
                        version=res.version,
                        metadata_json=metadata_json,
                        metadata_hash=new_hash,
                        tx_hash=tx_hash,
                        created_at=now,
                    )
                )
                stored.corrected, stored.new_version = True, res.version
            row = stored
        self.s._log(
            "dispute",
            f"dispute-answer:{row.id}",
            caller.id,
            row.resource_id,
            {
                "dispute": row.id,
                "step": "answered",
                "corrected": row.corrected,
                "new_version": row.new_version,
                "late": row.late,
                "tx_hash": tx_hash,
            },
        )
        return row

    def find(self, caller: Party, status: str | None = None) -> list[Dispute]:
        query = select(Dispute).order_by(Dispute.created_at)
        if caller.kind not in AUDITORS:
            query = query.where(or_(Dispute.filer_id == caller.id, Dispute.provider_id == caller.id))
        if status == "overdue":
            query = query.where(Dispute.status == DisputeStatus.OPEN, Dispute.respond_by < today_in_china())
        elif status is not None:
            try:
                query = query.where(Dispute.status == DisputeStatus(status).value)
            except ValueError as exc:
                allowed = ", ".join([*(s.value for s in DisputeStatus), "overdue"])
                raise InvalidInput(f"status must be one of {allowed}", code="invalid_status") from exc
        with self.s.store.read() as session:
            return list(session.scalars(query))

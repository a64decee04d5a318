"""Disputed data (疑义数据校核): a department using shared data disputes a resource version; the
provider must answer — confirm, or correct with a new version whose metadata hash goes on chain in
the same transaction. The deadline is 10 working days, like share requests; both steps are signed
(EIP-712), checked on chain, and logged (kind ``dispute``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from eth_utils.crypto import keccak
from sqlalchemy import or_, select

from ledger import workdays
from ledger.canonical import canonical_json
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.sharing import eip712
from ledger.sharing.catalog import ResourceSpec, resource_id_bytes32
from ledger.sharing.requests import AUDITORS, ShareService, today_in_china
from ledger.store.models import Dispute, Party, Resource, ResourceVersion
from ledger.types import PartyKind, Signing


def dispute_overdue(dispute: Dispute) -> bool:
    """Unanswered past its ``respond_by``."""
    return dispute.status == "open" and today_in_china() > dispute.respond_by


class DisputeService:
    def __init__(self, sharing: ShareService) -> None:
        self.s = sharing

    def file(self, caller: Party, resource_id: str, reason: str, version: int | None = None) -> Dispute:
        if caller.kind is not PartyKind.DEPARTMENT:
            raise Forbidden("only a department files a data dispute", code="forbidden_role")
        resource = self.s.catalog.get(resource_id)
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
        document = self.s._typed(
            "Dispute",
            {
                "disputeId": bytes(16) + bytes.fromhex(dispute_id),
                "resourceId": resource_id_bytes32(resource.id),
                "version": version,
                "filer": caller.address,
                "reasonHash": keccak(text=reason),
                "nonce": self.s._nonce(caller.address),
            },
        )
        signature = self.s._signature_of(caller, document, Signing.CUSTODIAL)
        assert signature is not None
        receipt = self.s.chain.transact(
            self.s.contract.functions.fileDispute(eip712.as_tuple(document), signature), self.s.relayer
        )
        filed = today_in_china()
        row = Dispute(
            id=dispute_id,
            resource_id=resource.id,
            version=version,
            filer_id=caller.id,
            provider_id=resource.provider_id,
            reason=reason,
            status="open",
            filed_on=filed,
            respond_by=workdays.respond_by(filed),
            file_tx=receipt.tx_hash,
            corrected=False,
            late=False,
        )
        with self.s.store.session() as session:
            session.add(row)
        self.s._log(
            "dispute",
            f"dispute:{dispute_id}",
            caller.id,
            resource.id,
            {
                "dispute": dispute_id,
                "step": "filed",
                "version": version,
                "reason_hash": "0x" + keccak(text=reason).hex(),
                "tx_hash": receipt.tx_hash,
            },
        )
        return row

    def get(self, caller: Party, dispute_id: str) -> Dispute:
        with self.s.store.read() as session:
            row = session.get(Dispute, dispute_id)
        if row is None or not (caller.kind in AUDITORS or caller.id in (row.filer_id, row.provider_id)):
            raise NotFound(f"no dispute {dispute_id}", code="dispute_not_found")
        return row

    def answer(self, caller: Party, dispute_id: str, answer: str, correction: ResourceSpec | None) -> Dispute:
        row = self.get(caller, dispute_id)
        if row.provider_id != caller.id:
            raise Forbidden("only the resource's provider answers a dispute", code="not_provider")
        if row.status != "open":
            raise Conflict(f"dispute {dispute_id} is already answered", code="dispute_not_open")
        if not answer.strip():
            raise InvalidInput("an answer states the result of the check (校核结果)", code="reason_required")
        resource = self.s.catalog.get(row.resource_id)
        new_hash = bytes(32)
        metadata_json: str | None = None
        if correction is not None:
            if correction.code != resource.code:
                raise InvalidInput("a correction keeps the resource's code", code="code_immutable")
            correction.validate()
            metadata = correction.metadata()
            metadata_json = json.dumps(metadata, ensure_ascii=False)
            new_hash = keccak(canonical_json(metadata))
        document = self.s._typed(
            "DisputeAnswer",
            {
                "disputeId": bytes(16) + bytes.fromhex(row.id),
                "corrected": correction is not None,
                "newMetadataHash": new_hash,
                "answerHash": keccak(text=answer),
                "nonce": self.s._nonce(caller.address),
            },
        )
        signature = self.s._signature_of(caller, document, Signing.CUSTODIAL)
        assert signature is not None
        receipt = self.s.chain.transact(
            self.s.contract.functions.answerDispute(eip712.as_tuple(document), signature), self.s.relayer
        )
        answered = today_in_china()
        now = datetime.now(UTC)
        with self.s.store.session() as session:
            stored = session.get(Dispute, row.id)
            assert stored is not None
            stored.status, stored.answer, stored.answer_tx, stored.answered_on = (
                "answered",
                answer,
                receipt.tx_hash,
                answered,
            )
            stored.late = answered > stored.respond_by
            if correction is not None and metadata_json is not None:
                res = session.get(Resource, resource.id)
                assert res is not None
                res.version += 1
                res.name, res.share_type, res.open_type, res.level = (
                    correction.name,
                    correction.share_type,
                    correction.open_type,
                    correction.level,
                )
                res.metadata_json, res.metadata_hash, res.tx_hash, res.updated_at = (
                    metadata_json,
                    new_hash,
                    receipt.tx_hash,
                    now,
                )
                session.add(
                    ResourceVersion(
                        resource_id=res.id,
                        version=res.version,
                        metadata_json=metadata_json,
                        metadata_hash=new_hash,
                        tx_hash=receipt.tx_hash,
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
                "tx_hash": receipt.tx_hash,
            },
        )
        return row

    def find(self, caller: Party, status: str | None = None) -> list[Dispute]:
        query = select(Dispute).order_by(Dispute.created_at)
        if caller.kind not in AUDITORS:
            query = query.where(or_(Dispute.filer_id == caller.id, Dispute.provider_id == caller.id))
        if status == "overdue":
            query = query.where(Dispute.status == "open", Dispute.respond_by < today_in_china())
        elif status in ("open", "answered"):
            query = query.where(Dispute.status == status)
        elif status is not None:
            raise InvalidInput("status must be open, answered or overdue", code="invalid_status")
        with self.s.store.read() as session:
            return list(session.scalars(query))
